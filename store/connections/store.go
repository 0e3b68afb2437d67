// Package connections holds a workspace's connections to outside services
// (table integration_connections): OAuth and Outlook connections with
// their sealed tokens, token version and refresh lease, their status and
// last error, and the mailbox sync state of those that are mailboxes
// (cursor, lease, next run, failures). integrations/ connects, refreshes
// and disconnects them, appending the workspace's connection events in
// the same transaction (Tx); mailsync/ claims mailboxes and records sync
// runs; the API and the linked-profile lookups read them.
package connections

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads and writes connections. It is safe for concurrent use.
type Store struct {
	db     *pg.DB
	pool   *pgxpool.Pool
	events *eventstore.Store
}

// New returns the connections kept in db, whose transactions append
// through events.
func New(db *pg.DB, events *eventstore.Store) *Store {
	return &Store{db: db, pool: db.Pool(), events: events}
}

// Tx is one transaction over the connections and the event store: a
// connection changes with the workspace's event that records it. It is
// used by one goroutine only and is valid only inside the function given
// to Transact.
type Tx struct {
	tx     *pg.Tx
	events *eventstore.Tx
}

// Transact runs fn in one short transaction (see eventstore.Store.Transact
// for its errors and metrics) and commits if fn returns nil; otherwise it
// rolls back and returns fn's error unchanged.
func (s *Store) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	return s.db.Transact(ctx, func(tx *pg.Tx) error { return fn(&Tx{tx: tx, events: s.events.In(tx)}) })
}

// LockStream is eventstore.Tx.LockStream in this transaction.
func (t *Tx) LockStream(ctx context.Context, ref helpdeskflow.StreamRef) (int64, error) {
	return t.events.LockStream(ctx, ref)
}

// Append is eventstore.Tx.Append in this transaction.
func (t *Tx) Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error) {
	return t.events.Append(ctx, ref, expectedVersion, md, events)
}

// LockSlackIntegration is outbound.Tx.LockSlackIntegration in this
// transaction: a Slack connection installed through OAuth becomes the
// workspace's Slack integration in the transaction that stores its token.
func (t *Tx) LockSlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error) {
	return outbound.In(t.tx).LockSlackIntegration(ctx, workspaceID)
}

// PutSlackIntegration is outbound.Tx.PutSlackIntegration in this
// transaction.
func (t *Tx) PutSlackIntegration(ctx context.Context, in helpdeskflow.SlackIntegration, sealedToken []byte) error {
	return outbound.In(t.tx).PutSlackIntegration(ctx, in, sealedToken)
}
