package pg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey is the advisory lock that serialises migrations across
// processes starting at once.
const migrationLockKey = 0x4844465f4d494752 // "HDF_MIGR"

// Migrate applies every embedded migration not yet recorded in
// schema_migrations, in file-name order, each in its own transaction. It
// holds a session advisory lock while it runs, so concurrent callers (every
// process migrates at start-up) wait for each other and apply nothing twice.
// Errors are EUnavailable when Postgres cannot be reached and EInternal when
// a migration fails.
func Migrate(ctx context.Context, db *DB) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return Unavailable("acquire connection for migrations", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockKey)); err != nil {
		return Internal("take migration lock", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLockKey)) //nolint:errcheck // the lock also ends with the session

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return Internal("create schema_migrations", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return Internal("list migrations", err)
	}
	sort.Strings(names)
	for _, name := range names {
		var applied bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&applied); err != nil {
			return Internal("read schema_migrations", err)
		}
		if applied {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return Internal("read "+name, err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return Internal("begin migration", err)
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			tx.Rollback(ctx) //nolint:errcheck // the exec error is the one to report
			return Internal(fmt.Sprintf("apply migration %s", name), err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name); err != nil {
			tx.Rollback(ctx) //nolint:errcheck // the exec error is the one to report
			return Internal("record migration", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return Internal(fmt.Sprintf("commit migration %s", name), err)
		}
	}
	return nil
}
