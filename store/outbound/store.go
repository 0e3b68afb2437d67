// Package outbound holds a workspace's outbound configuration and what
// it sent (tables webhooks, slack_integrations, slack_notifications):
// webhook subscriptions with their sealed signing secrets, the Slack
// connection with its sealed token, and the log of Slack notification
// decisions. Commands change the webhooks and the Slack connection in
// their transactions (Tx); the dispatcher's webhook handler and Slack
// notifier, and the API, read them (Store).
package outbound

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads the outbound configuration and records Slack
// notifications, outside a command's transaction. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the outbound configuration kept in db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

// Tx is the outbound room's view of one transaction: a command's changes
// to webhooks and the Slack connection, committed with its events.
type Tx struct {
	tx *pg.Tx
}

// In returns the outbound room's view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }
