package projections

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// consumer is what the package's Kafka consumers (Projector,
// RequestLogProjector) share: the consume loop they plug their batches
// into, their logger, error counter (by kind) and retry backoffs, and the
// retry built on them.
type consumer struct {
	name    string // "projector", "request log projector": starts log messages
	log     *slog.Logger
	errors  *prometheus.CounterVec
	backoff kafka.Backoff
	loop    *kafka.Consumer
}

// newConsumer is the consumer part of a projector named name (its log
// component is name with dashes) configured by cfg, flushing batches made
// by newBatch once they hold maxBatchBytes (0: no byte bound); watermarks
// gives the batches the relay's watermark records (kafka.ConsumerConfig).
func newConsumer(name string, cfg Config, maxBatchBytes int, errs *prometheus.CounterVec, lag *prometheus.GaugeVec,
	newBatch func() kafka.Batch, partitionsGone func(), watermarks bool) consumer {
	return consumer{
		name:    name,
		log:     cfg.Logger.With("component", strings.ReplaceAll(name, " ", "-"), "group", cfg.Group, "topic", cfg.Topic),
		errors:  errs,
		backoff: kafka.Backoff{First: cfg.RetryBackoff, Max: cfg.MaxRetryBackoff},
		loop: kafka.NewConsumer(kafka.ConsumerConfig{
			Name: name, Brokers: cfg.Brokers, Group: cfg.Group, Topic: cfg.Topic,
			BatchSize: cfg.BatchSize, MaxBatchBytes: maxBatchBytes, FlushInterval: cfg.FlushInterval,
			RetryBackoff: cfg.RetryBackoff, MaxRetryBackoff: cfg.MaxRetryBackoff, ShutdownTimeout: cfg.ShutdownTimeout,
			NewBatch: newBatch, Logger: cfg.Logger, Errors: errs, Lag: lag, OnPartitionsGone: partitionsGone,
			Watermarks: watermarks, Membership: cfg.Membership, Options: cfg.KafkaOptions,
		}),
	}
}

// run runs the consume loop until ctx is cancelled. When records were left
// uncommitted it returns an EUnavailable error with message notCommitted.
func (c *consumer) run(ctx context.Context, notCommitted string) error {
	err := c.loop.Run(ctx)
	switch {
	case errors.Is(err, kafka.ErrNotCommitted):
		err = &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: notCommitted, Err: err}
		c.log.Error(c.name+" stopped", "err", err)
	case err == nil:
		c.log.Info(c.name + " stopped")
	}
	return err
}

// retry calls fn until it succeeds or ctx is done, counting failures as
// kind, logging and backing off (doubling up to MaxRetryBackoff) between
// them. Cancelled mid-operation, it returns fn's error joined with ctx's:
// a shutdown, not a ClickHouse failure; the loop decides what happens to
// the batch.
func (c *consumer) retry(ctx context.Context, kind string, fn func() error) error {
	return kafka.Retry(ctx, nil, c.backoff, fn, func(attempt int, wait time.Duration, err error) {
		c.errors.WithLabelValues(kind).Inc()
		c.log.Error(c.name+": "+kind+" failed; batch kept, retrying", "attempt", attempt, "backoff", wait, "err", err)
	})
}
