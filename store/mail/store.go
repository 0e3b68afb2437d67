// Package mail holds what mail sync and mail replies record (tables
// mail_messages and mail_replies): every message read from or sent
// through a connected mailbox, with the ticket it made or joined and its
// thread keys, so imports are idempotent and later mail finds its ticket;
// and the queue of agents' replies to send by mail. Commands record
// imported mail and queue replies in their transactions (Tx); mailsync/
// asks which messages it already has, claims replies and records their
// outcome (Store).
package mail

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads and writes mail records and replies outside a command's
// transaction. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the mail records and replies kept in db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

// Tx is the mail room's view of one transaction: the records and replies
// a command writes with its events.
type Tx struct {
	tx *pg.Tx
}

// In returns the mail room's view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }
