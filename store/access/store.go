// Package access holds who may use the API (tables workspaces, api_keys,
// workspace_settings, and access_generation and access_cache_members for
// the cache's cluster-wide invalidation): workspaces, API keys (their
// hashes, roles, last use), each workspace's IP blocklist and rate-limit
// overrides, and the in-memory Cache in front of key lookups. Commands
// create workspaces and keys, revoke keys and change settings in their
// transactions (Tx), which return only once every API process dropped its
// cached access; the API authenticates every request through the Cache
// and lists keys (Store).
package access

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads workspaces' keys and settings outside a transaction. It is
// safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the access data kept in db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

// Tx is the access room's view of one transaction: a command's changes to
// workspaces, keys and settings, committed with its events.
type Tx struct {
	tx *pg.Tx
}

// In returns the access room's view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }
