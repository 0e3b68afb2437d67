package pg

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// HotTables are the tables the write path reads by key on every command
// or event: their statistics must follow them as they grow (see
// KeepStatistics).
var HotTables = []string{"streams", "events", "snapshots", "customer_emails", "customer_tickets",
	"dispatch_progress", "idempotency_keys", "sla_timers", "webhook_deliveries"}

// KeepStatistics analyzes each of tables whenever it has changed by at
// least as many rows as it had at its last ANALYZE (and by at least
// minChanges), checking every interval until ctx ends. It returns nil
// when ctx ends.
//
// Why: every connection prepares its statements, and after a few runs
// Postgres keeps a generic plan for each. A plan made while a table was
// tiny reads the whole table (a sequential scan is cheapest on a page or
// two), and it is kept until the table is analyzed again, which autovacuum
// does only after it wakes (autovacuum_naptime, a minute by default) and
// the table grew by a tenth. A new deployment thus spends its first
// minute scanning tables of thousands of rows on every command. Analyzing
// a table each time it doubles bounds that to a few pages: it costs a
// handful of quick ANALYZEs while the tables are young and nothing after
// (a table of a million rows is analyzed again only after a million
// changes, by which time autovacuum has long done it).
//
// Several processes may run it: a table another one is analyzing is
// skipped (ANALYZE waits for no lock here: lock_timeout).
func KeepStatistics(ctx context.Context, db *DB, tables []string, interval time.Duration, logger *slog.Logger) error {
	const minChanges = 200
	return poll.Every(ctx, interval, logger, "keep table statistics", func(ctx context.Context) (int, error) {
		rows, err := db.pool.Query(ctx, `SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
			WHERE s.relname = ANY($1) AND s.schemaname = current_schema()
			  AND s.n_mod_since_analyze >= $2 AND s.n_mod_since_analyze >= greatest(c.reltuples, 0)`, tables, minChanges)
		if err != nil {
			return 0, Internal("read table statistics", err)
		}
		due, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return 0, Internal("read table statistics", err)
		}
		analyzed := 0
		for _, table := range due {
			if err := analyze(ctx, db, table); err != nil {
				return analyzed, err
			}
			analyzed++
		}
		return analyzed, nil
	})
}

// analyze runs ANALYZE on table, unless another session holds a lock that
// would make it wait.
func analyze(ctx context.Context, db *DB, table string) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return Unavailable("analyze "+table, err)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue(`SET lock_timeout = '100ms'`)
	b.Queue(`ANALYZE ` + pgx.Identifier{table}.Sanitize())
	b.Queue(`RESET lock_timeout`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil && !isLockTimeout(err) {
		return Internal("analyze "+table, err)
	}
	return nil
}
