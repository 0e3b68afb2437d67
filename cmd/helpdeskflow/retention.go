package main

import (
	"context"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow/dispatch/retention"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
)

// Kind names of the retention job, in metrics and logs.
const (
	retainWebhookDeliveries = "webhook_deliveries"
	retainWebhookAttempts   = "webhook_attempts"
	retainIdempotencyKeys   = "idempotency_keys"
	retainMailRecords       = "mail_records"
	retainRequestLog        = "request_log"
)

// newRetentionJob builds the dispatcher's retention job over the process's
// rooms (docs/retention.md): finished webhook deliveries with their
// attempts, expired Idempotency-Keys (always after idempotency.Retention,
// the API's replay window), skipped mail records, and the request log's
// old ClickHouse partitions. closeJob closes the ClickHouse connection the
// job may have opened; call it after the job stopped.
func newRetentionJob(p *process) (job *retention.Job, closeJob func(), err error) {
	r, _ := p.cfg.retention() // validated with the config
	keys := idempotency.New(p.db)
	requestLog := &requestLogPartitions{p: p}
	job, err = retention.New(retention.Config{
		Lock: p.db, Interval: r.Interval, Logger: p.logger, Registerer: p.reg,
		Kinds: []retention.Kind{
			{Name: retainWebhookDeliveries, Keep: r.Deliveries, Purge: func(ctx context.Context, before time.Time, limit int) (retention.Deleted, error) {
				d, a, err := p.rooms.queues.PurgeDeliveries(ctx, before, limit)
				return retention.Deleted{retainWebhookDeliveries: d, retainWebhookAttempts: a}, err
			}},
			// Begin deletes expired keys now and then too; the job
			// keeps the table small when few keys arrive.
			{Name: retainIdempotencyKeys, Keep: idempotency.Retention, Purge: func(ctx context.Context, _ time.Time, limit int) (retention.Deleted, error) {
				n, err := keys.DeleteExpired(ctx, limit)
				return retention.Deleted{retainIdempotencyKeys: n}, err
			}},
			{Name: retainMailRecords, Keep: r.Mail, Purge: func(ctx context.Context, before time.Time, limit int) (retention.Deleted, error) {
				n, err := p.rooms.mail.PurgeSkippedMail(ctx, before, limit)
				return retention.Deleted{retainMailRecords: n}, err
			}},
			{Name: retainRequestLog, Keep: r.RequestLog, Purge: requestLog.purge},
		},
	})
	return job, requestLog.Close, err
}

// requestLogPartitions drops the request log's old partitions on the
// process's ClickHouse connection, or, in a process whose roles need no
// ClickHouse (a dispatcher alone), on one it opens at its first run and
// keeps: so a dispatcher starts, and dispatches, while ClickHouse is away.
type requestLogPartitions struct {
	p    *process
	mu   sync.Mutex
	conn driver.Conn
}

func (r *requestLogPartitions) purge(ctx context.Context, before time.Time, _ int) (retention.Deleted, error) {
	conn, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	n, err := projections.DropMonthsBefore(ctx, conn, projections.TableRequestLog, before)
	return retention.Deleted{retainRequestLog: n}, err
}

func (r *requestLogPartitions) open(ctx context.Context) (driver.Conn, error) {
	if r.p.ch != nil {
		return r.p.ch, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		conn, err := projections.OpenClickHouse(ctx, r.p.cfg.ClickHouseAddr, r.p.cfg.ClickHouseDatabase)
		if err != nil {
			return nil, err
		}
		r.conn = conn
	}
	return r.conn, nil
}

// Close closes the connection it opened, if any.
func (r *requestLogPartitions) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close() //nolint:errcheck // closing at shutdown
	}
}
