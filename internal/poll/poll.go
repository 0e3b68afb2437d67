// Package poll runs the background workers' polling loops.
package poll

import (
	"context"
	"log/slog"
	"time"
)

// Every calls pass at once and then every interval until ctx ends, and
// returns nil then. A pass's error is logged with what (unless ctx ended)
// and the loop goes on: the next pass retries.
func Every(ctx context.Context, interval time.Duration, logger *slog.Logger, what string, pass func(context.Context) (int, error)) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if _, err := pass(ctx); err != nil && ctx.Err() == nil {
			logger.Warn(what+" failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Sleep waits for d or until ctx ends; it reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool { return Wait(ctx, nil, d) }

// Wait waits for d and returns true, or returns false as soon as ctx ends or
// interrupt closes (a nil interrupt never does).
func Wait(ctx context.Context, interrupt <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-interrupt:
		return false
	case <-t.C:
		return true
	}
}
