// Package queues holds the Postgres queues that the dispatcher's pollers
// lease work from: webhook deliveries and their attempts
// (webhook_deliveries, webhook_attempts), integration jobs
// (integration_jobs: Slack notifications, linked-profile lookups) and the
// SLA timers' due times (sla_timers; commands schedule them in their
// transactions, Tx). dispatch's webhook handler and job producers
// enqueue, its delivery, job and SLA workers claim and finish, and the
// API reads a webhook's delivery log and a connection's job queue.
package queues

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads and writes the queues, each call in a statement or a
// transaction of its own. It is safe for concurrent use; many workers in
// many processes share one queue.
type Store struct {
	pool *pgxpool.Pool
	// cursors are where this process's delivery claims start.
	cursors *claimCursors
	// heldCap is how many pending deliveries a paused webhook keeps.
	heldCap int
}

// Option configures a Store.
type Option func(*Store)

// WithHeldCap makes a paused webhook keep up to n pending deliveries
// instead of helpdeskflow.MaxHeldDeliveries (tests use a small cap).
func WithHeldCap(n int) Option { return func(s *Store) { s.heldCap = max(n, 1) } }

// New returns the queues kept in db.
func New(db *pg.DB, opts ...Option) *Store {
	s := &Store{pool: db.Pool(), cursors: newClaimCursors(), heldCap: helpdeskflow.MaxHeldDeliveries}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Tx is the queues' view of one transaction: the SLA timers a command
// schedules with its events.
type Tx struct {
	tx *pg.Tx
}

// In returns the queues' view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }
