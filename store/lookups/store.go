// Package lookups holds the write side's indexes of customers (tables
// customer_emails, customer_tickets, customer_profiles): which customer
// holds each normalized email and each linked profile (Shopify, Stripe) of
// a workspace, and which tickets belong to a customer. Commands reserve,
// move and merge them in their transactions (Tx) and find customers by
// them (Store). Reserving an email also reads the holder's stream in the
// same round trip, with the event store's tail statement.
package lookups

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads customer lookups outside a command's transaction. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the customer lookups kept in db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

// Tx is the lookups room's view of one transaction: a command's changes to
// the customer lookups, committed with its events.
type Tx struct {
	tx *pg.Tx
}

// In returns the lookups room's view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }
