package projections

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// consumer is what the package's Kafka consumers (Projector,
// RequestLogProjector) share: their logger, error counter (by kind), lag
// tracker and retry backoffs, and the retry, commit and fetch-error
// handling built on them.
type consumer struct {
	name            string // "projector", "request log projector": starts log messages
	log             *slog.Logger
	errors          *prometheus.CounterVec
	lag             *kafka.LagTracker // also used by the rebalance callbacks, on the client's goroutines
	retryBackoff    time.Duration
	maxRetryBackoff time.Duration
}

// newConsumer is the consumer part of a projector named name (its log
// component is name with dashes) configured by cfg.
func newConsumer(name string, cfg Config, errs *prometheus.CounterVec, lag *prometheus.GaugeVec) consumer {
	return consumer{
		name:            name,
		log:             cfg.Logger.With("component", strings.ReplaceAll(name, " ", "-"), "group", cfg.Group, "topic", cfg.Topic),
		errors:          errs,
		lag:             kafka.NewLagTracker(cfg.Topic, lag),
		retryBackoff:    cfg.RetryBackoff,
		maxRetryBackoff: cfg.MaxRetryBackoff,
	}
}

// retry calls fn until it succeeds or ctx is done, counting failures as
// kind, logging and backing off (doubling up to maxRetryBackoff) between
// them.
func (c *consumer) retry(ctx context.Context, kind string, fn func() error) error {
	backoff := c.retryBackoff
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// Cancelled mid-operation: a shutdown, not a ClickHouse
			// failure; the caller decides what happens to the batch.
			return errors.Join(err, ctx.Err())
		}
		c.errors.WithLabelValues(kind).Inc()
		c.log.Error(c.name+": "+kind+" failed; batch kept, retrying", "attempt", attempt, "backoff", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, c.maxRetryBackoff)
	}
}

// commit commits the offsets of what was polled and updates the lag; it
// returns EUnavailable when the commit fails.
func (c *consumer) commit(ctx context.Context, cl *kgo.Client) error {
	err := cl.CommitUncommittedOffsets(ctx)
	if err != nil {
		c.errors.WithLabelValues(errKindCommit).Inc()
		err = &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "commit " + c.name + " offsets", Err: err}
	}
	c.lag.Update(cl)
	return err
}

// noteFetches counts and logs fetch errors (not those of shutting down)
// and notes the partitions' high watermarks for the lag.
func (c *consumer) noteFetches(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		c.errors.WithLabelValues(errKindFetch).Inc()
		c.log.Warn(c.name+": fetch error", "fetch_topic", topic, "partition", partition, "err", err)
	})
	c.lag.Note(fetches)
}
