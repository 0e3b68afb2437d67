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
	retainWebhookFacts      = "webhook_facts"
	retainMailFacts         = "mail_facts"
	retainAuditLog          = "audit_log"
)

// newRetentionJob builds the dispatcher's retention job over the process's
// rooms (docs/retention.md): finished webhook deliveries with their
// attempts, expired Idempotency-Keys (always after idempotency.Retention,
// the API's replay window), skipped mail records, and the old monthly
// partitions of ClickHouse's request log, service facts and (when asked)
// audit log. closeJob closes the ClickHouse connection the job may have
// opened; call it after the job stopped.
func newRetentionJob(p *process) (job *retention.Job, closeJob func(), err error) {
	r, _ := p.cfg.retention() // validated with the config
	keys := idempotency.New(p.db)
	months := &clickHouseMonths{p: p}
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
			{Name: retainRequestLog, Keep: r.RequestLog, Purge: months.purge(retainRequestLog, projections.TableRequestLog)},
			{Name: retainWebhookFacts, Keep: r.WebhookFacts, Purge: months.purge(retainWebhookFacts, projections.TableWebhookAttempts)},
			{Name: retainMailFacts, Keep: r.MailFacts, Purge: months.purge(retainMailFacts, projections.TableMailSyncs)},
			{Name: retainAuditLog, Keep: r.AuditLog, Purge: months.purge(retainAuditLog, projections.TableAuditLog)},
		},
	})
	return job, months.Close, err
}

// clickHouseMonths drops old monthly partitions of ClickHouse tables on the
// process's ClickHouse connection, or, in a process whose roles need no
// ClickHouse (a dispatcher alone), on one it opens at its first run and
// keeps: so a dispatcher starts, and dispatches, while ClickHouse is away.
type clickHouseMonths struct {
	p    *process
	mu   sync.Mutex
	conn driver.Conn
}

// purge is the retention kind's Purge that drops table's months wholly
// before the cutoff, counting their rows as kind.
func (r *clickHouseMonths) purge(kind, table string) func(context.Context, time.Time, int) (retention.Deleted, error) {
	return func(ctx context.Context, before time.Time, _ int) (retention.Deleted, error) {
		conn, err := r.open(ctx)
		if err != nil {
			return nil, err
		}
		n, err := projections.DropMonthsBefore(ctx, conn, table, before)
		return retention.Deleted{kind: n}, err
	}
}

func (r *clickHouseMonths) open(ctx context.Context) (driver.Conn, error) {
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
func (r *clickHouseMonths) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close() //nolint:errcheck // closing at shutdown
	}
}
