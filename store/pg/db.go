// Package pg is the plumbing every Postgres room shares: the connection
// pool (DB, Connect), the embedded migrations of every room's tables
// (Migrate), the one transaction type (Tx) whose deferred statements, row
// locks and after-commit hooks the event store and the rooms under store/
// write through, so one commit spans an append and the rows beside it, and
// the mapping of driver errors to helpdeskflow errors (Internal,
// Unavailable, IsUniqueViolation), so no pgx error leaves a room.
package pg

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
)

// DB is the Postgres database of HelpDeskFlow: one connection pool that
// every room reads and writes through. It is safe for concurrent use.
type DB struct {
	pool  *pgxpool.Pool
	group *group // nil until EnableGroupCommit
}

// Querier runs a statement and returns its rows: a *Tx, or a DB's pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Connect opens a connection pool to the Postgres database at url and
// checks that it answers. uuids travel in binary (RegisterUUID). Every
// session gets idle_in_transaction_session_timeout of 10 s, because an
// open transaction holds back the commit horizon the relay reads below. It returns EUnavailable when Postgres cannot be reached.
func Connect(ctx context.Context, url string, maxConns int32) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "parse Postgres URL", Err: err}
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "10s"
	cfg.ConnConfig.RuntimeParams["application_name"] = "helpdeskflow"
	cfg.AfterConnect = AfterConnect
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, Unavailable("connect", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, Unavailable("ping", err)
	}
	return &DB{pool: pool}, nil
}

// AfterConnect prepares every new connection of Connect's pools: uuids
// travel in binary (see RegisterUUID). A pool its caller configures for
// Open (tests that trace statements) should run it too.
func AfterConnect(_ context.Context, c *pgx.Conn) error {
	RegisterUUID(c.TypeMap())
	return nil
}

// Open returns a DB on a pool its caller configured (tests that trace
// statements); Connect's session settings are then the caller's to apply.
func Open(pool *pgxpool.Pool) *DB { return &DB{pool: pool} }

// Pool returns the connection pool, for the rooms' statements outside a
// transaction and their dedicated sessions.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that Postgres answers; it returns EUnavailable when not.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return Unavailable("ping", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to come back.
func (db *DB) Close() { db.pool.Close() }
