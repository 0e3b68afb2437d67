// Package rules holds each workspace's current automation rules and SLA
// policies (tables workspace_rules and rule_set_versions): the rule
// records and the rule set's version, which moves forward with every
// change so a cached compiled rule set is checked with one cheap
// statement. Commands change rules under the rule set's lock in their
// transactions (Tx) and read the set (Store).
package rules

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads rule sets outside a command's transaction. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the rule sets kept in db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

// Tx is the rules room's view of one transaction: a command's changes to
// the rule sets, committed with its events.
type Tx struct {
	tx *pg.Tx
}

// In returns the rules room's view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }
