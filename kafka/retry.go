package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// ErrInterrupted is the cause Sleep and Retry return when their interrupt
// channel closed (for a Batch's Flush: a rebalance waits).
var ErrInterrupted = errors.New("interrupted: a rebalance waits")

// Backoff is how long Retry waits after a failure: First after the first,
// doubling after each further one up to Max.
type Backoff struct {
	First, Max time.Duration
}

// Retry calls fn until it returns nil, then returns nil. It stops early when
// ctx ends or interrupt closes (a nil interrupt never does), returning fn's
// last error, if any, joined with ctx.Err() or ErrInterrupted. Every failure
// that is not ctx's end is reported to failed, with its attempt number and
// the wait that follows, before that wait.
func Retry(ctx context.Context, interrupt <-chan struct{}, b Backoff, fn func() error, failed func(attempt int, wait time.Duration, err error)) error {
	wait := b.First
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// Cancelled mid-operation: a shutdown, not a failure of fn.
			return errors.Join(err, ctx.Err())
		}
		failed(attempt, wait, err)
		if cause := Sleep(ctx, interrupt, wait); cause != nil {
			return errors.Join(err, cause)
		}
		wait = min(2*wait, b.Max)
	}
}

// Sleep waits for d and returns nil, or returns ctx.Err() or ErrInterrupted
// as soon as ctx ends or interrupt closes (a nil interrupt never does).
func Sleep(ctx context.Context, interrupt <-chan struct{}, d time.Duration) error {
	if poll.Wait(ctx, interrupt, d) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrInterrupted
}
