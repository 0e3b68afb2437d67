package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// The rebuild phase's event store: a Postgres database of its own on the
// bench server, seeded by SQL once and kept across runs (its name carries
// the seed's version: change the seed, bump it).
const (
	rebuildStoreDB      = "bench_rebuild_store_v1"
	rebuildTickets      = 200_000 // and as many customers
	rebuildTicketEvents = 9       // per ticket: created, 4 messages, 4 updates
	rebuildEvents       = rebuildTickets * (1 + rebuildTicketEvents)
	targetRebuildRatio  = 0.5 // rebuild events/s ÷ ClickHouse's bulk insert of the same rows, in events/s
	rebuildSampleRows   = 100_000
)

// rebuildRounds is how many times the phase rebuilds the store, each time
// into a fresh ClickHouse database followed by its bulk-insert baseline; the
// round with the median ratio is the phase's result, so one round disturbed
// by the machine (the baseline alone swung from 91,000 to 137,000 events/s
// between runs) does not decide it.
const rebuildRounds = 3

// rebuildRound is one rebuild and its baseline, measured back to back.
type rebuildRound struct {
	RebuildSeconds  float64          `json:"rebuild_seconds"`
	RebuildPerSec   float64          `json:"rebuild_events_per_second"`
	Inserted        map[string]int64 `json:"rows_inserted"`
	BaselineSeconds float64          `json:"bulk_insert_seconds"`
	BaselinePerSec  float64          `json:"bulk_insert_events_per_second"`
	Ratio           float64          `json:"ratio"`
	CPU             cpuSplit         `json:"cpu_rebuild"`
	BaselineCPU     cpuSplit         `json:"cpu_bulk_insert"`
}

// rebuildResult is the rebuild phase: the round with the median ratio
// (embedded) and every round.
type rebuildResult struct {
	StoreDatabase string  `json:"store_database"`
	Events        int64   `json:"events"`
	SeedReused    bool    `json:"seed_reused"`
	SeedSeconds   float64 `json:"seed_seconds"`
	BatchSize     int     `json:"batch_size"`
	rebuildRound
	Rounds []rebuildRound `json:"rounds"`
	Error  string         `json:"error,omitempty"`
}

// runRebuild is the rebuild phase: rebuildRounds times `projections
// rebuild` of a store of rebuildEvents events into a fresh ClickHouse
// database, each against ClickHouse's own bulk insert of the same rows.
func (b *bench) runRebuild(ctx context.Context) error {
	res := &rebuildResult{StoreDatabase: rebuildStoreDB, BatchSize: projections.DefaultRebuildBatchSize}
	b.res.Rebuild = res
	if err := b.rebuild(ctx, res); err != nil {
		res.Error = err.Error()
		b.res.note("rebuild phase: %v", err)
	}
	return ctx.Err()
}

func (b *bench) rebuild(ctx context.Context, res *rebuildResult) error {
	start := time.Now()
	storeURL, reused, err := seedStore(ctx, b.cfg.postgresURL, rebuildStoreDB, rebuildEvents, rebuildSeedSQL())
	if err != nil {
		return err
	}
	res.SeedReused, res.SeedSeconds = reused, round3(time.Since(start).Seconds())
	db, err := pg.Connect(ctx, storeURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := eventstore.New(db, nil)
	if err != nil {
		return err
	}
	// The collector as `helpdeskflow projections rebuild` sets it (the
	// bench process has no memory limit, and the command's 2 GiB is not
	// reached).
	defer debug.SetGCPercent(debug.SetGCPercent(projections.RebuildGCPercent))
	for i := range rebuildRounds {
		round, events, err := b.rebuildRound(ctx, store, i+1)
		if err != nil {
			return err
		}
		res.Events = events
		res.Rounds = append(res.Rounds, round)
	}
	byRatio := slices.Clone(res.Rounds)
	slices.SortFunc(byRatio, func(a, b rebuildRound) int { return cmp.Compare(a.Ratio, b.Ratio) })
	res.rebuildRound = byRatio[len(byRatio)/2]
	logf("rebuild: median ratio of %d rounds %.2f", len(res.Rounds), res.Ratio)
	return nil
}

// rebuildRound rebuilds store into a fresh ClickHouse database, then bulk
// inserts the same rows; it returns the round and the events rebuilt.
func (b *bench) rebuildRound(ctx context.Context, store *eventstore.Store, n int) (rebuildRound, int64, error) {
	var round rebuildRound
	chDB := fmt.Sprintf("%s_rebuild%d", b.chDB, n)
	conn, err := projections.OpenClickHouse(ctx, b.chOpts.Addr[0], chDB)
	if err != nil {
		return round, 0, err
	}
	defer func() {
		if !b.o.keep {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chDB)
		}
		conn.Close()
	}()
	if err := projections.Migrate(ctx, conn); err != nil {
		return round, 0, err
	}

	logf("rebuild %d/%d: %d events from %s into ClickHouse %s", n, rebuildRounds, rebuildEvents, rebuildStoreDB, chDB)
	cpu0 := b.procs.snap()
	startRebuild := time.Now()
	report, err := projections.Rebuild(ctx, projections.RebuildConfig{ClickHouse: conn, Events: store})
	elapsed := time.Since(startRebuild)
	round.CPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	if err != nil {
		return round, 0, err
	}
	round.Inserted = report.Inserted
	round.RebuildSeconds = round3(elapsed.Seconds())
	round.RebuildPerSec = round1(float64(report.Events) / elapsed.Seconds())
	logf("rebuild %d/%d: %d events in %.1f s (%.0f/s); rows %v", n, rebuildRounds, report.Events, elapsed.Seconds(), round.RebuildPerSec, report.Inserted)

	waitMerges(ctx, conn, chDB, 2*time.Minute)
	batches := (report.Events + int64(projections.DefaultRebuildBatchSize) - 1) / int64(projections.DefaultRebuildBatchSize)
	cpu0 = b.procs.snap()
	secs, err := bulkInsert(ctx, conn, report.Inserted, batches)
	round.BaselineCPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	if err != nil {
		return round, 0, fmt.Errorf("bulk insert baseline: %w", err)
	}
	round.BaselineSeconds = round3(secs)
	round.BaselinePerSec = round1(float64(report.Events) / secs)
	if round.BaselinePerSec > 0 {
		round.Ratio = round3(round.RebuildPerSec / round.BaselinePerSec)
	}
	logf("rebuild %d/%d: bulk insert of the same rows in %.1f s (%.0f events/s); ratio %.2f", n, rebuildRounds, secs, round.BaselinePerSec, round.Ratio)
	return round, report.Events, nil
}

// seedStore makes sure the store database name holds the events seeded
// by the statements seed (the last of which records their number, events,
// in bench_seed): reused when a complete seed is there, else (re)created,
// migrated and seeded by SQL. It returns the database's URL and whether it
// was reused. The rebuild and analytics phases seed their stores with it.
func seedStore(ctx context.Context, serverURL, name string, events int64, seed []string) (string, bool, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", false, err
	}
	admin, store := *u, *u
	admin.Path, store.Path = "/postgres", "/"+name
	adminDB, err := pg.Connect(ctx, admin.String(), 1)
	if err != nil {
		return "", false, err
	}
	defer adminDB.Close()
	var exists bool
	if err := adminDB.Pool().QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", false, err
	}
	if exists {
		db, err := pg.Connect(ctx, store.String(), 1)
		if err != nil {
			return "", false, err
		}
		var n int64
		err = db.Pool().QueryRow(ctx, "SELECT events FROM bench_seed").Scan(&n)
		db.Close()
		if err == nil && n == events {
			logf("reusing the seeded store %s (%d events)", name, n)
			return store.String(), true, nil
		}
		if _, err := adminDB.Pool().Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return "", false, err
		}
	}
	if _, err := adminDB.Pool().Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", false, err
	}
	db, err := pg.Connect(ctx, store.String(), 1)
	if err != nil {
		return "", false, err
	}
	defer db.Close()
	if err := pg.Migrate(ctx, db); err != nil {
		return "", false, err
	}
	logf("seeding %s with %d events by SQL", name, events)
	start := time.Now()
	for _, stmt := range seed {
		if _, err := db.Pool().Exec(ctx, stmt); err != nil {
			return "", false, fmt.Errorf("seed %s: %w", name, err)
		}
	}
	logf("seeded %s in %.0f s", name, time.Since(start).Seconds())
	return store.String(), false, nil
}

// rebuildSeedSQL seeds rebuildTickets customers (customer.created) and as
// many tickets in 10 workspaces, then, round by round, each ticket's
// created, message and update events: one transaction per statement, so
// commit order is customers, then every ticket's version 1, then every
// ticket's version 2, and so on (a ticket changes in every batch of a
// rebuild, as tickets spread over time do). The JSON is what the commands
// write.
func rebuildSeedSQL() []string {
	ws := "md5('ws' || (i % 10))::uuid"
	md := func(request string) string {
		return "jsonb_build_object('actor', jsonb_build_object('type', 'api_key', 'id', md5('key' || (i % 10))::uuid::text), " +
			"'channel', 'api', 'request_id', " + request + ")"
	}
	return []string{
		"SET synchronous_commit = off",
		fmt.Sprintf(`INSERT INTO streams (id, workspace_id, type, version)
			SELECT md5('c' || i)::uuid, %s, 'customer', 1 FROM generate_series(1, %d) i`, ws, rebuildTickets),
		fmt.Sprintf(`INSERT INTO streams (id, workspace_id, type, version)
			SELECT md5('t' || i)::uuid, %s, 'ticket', %d FROM generate_series(1, %d) i`, ws, rebuildTicketEvents, rebuildTickets),
		fmt.Sprintf(`INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata, occurred_at)
			SELECT md5('ce' || i)::uuid, md5('c' || i)::uuid, 'customer', 1, %s, 'customer.created', %d,
				json_build_object('email', 'customer' || i || '@example.test', 'name', 'Customer ' || i,
					'tags', json_build_array('vip'), 'custom_fields', json_build_object('plan', 'pro')),
				%s, timestamptz '2025-01-01' + i * interval '30 second'
			FROM generate_series(1, %d) i ORDER BY i`, ws, helpdeskflow.CurrentEventSchemaVersion, md("'req_c' || i"), rebuildTickets),
		fmt.Sprintf(`INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata, occurred_at)
			SELECT md5('te' || i || '-' || v)::uuid, md5('t' || i)::uuid, 'ticket', v, %s,
				CASE WHEN v = 1 THEN 'ticket.created' WHEN v %% 2 = 0 THEN 'ticket.message_added' ELSE 'ticket.updated' END, %d,
				CASE WHEN v = 1 THEN json_build_object('subject', 'Order ' || i || ' has not arrived', 'status', 'new', 'priority', 'normal',
						'type', 'question', 'channel', 'email', 'tags', json_build_array('billing', 'order'), 'customer_id', md5('c' || i)::uuid,
						'custom_fields', json_build_object('order_id', i),
						'message', json_build_object('id', md5('m' || i || '-1')::uuid, 'author_type', 'customer',
							'body', '<p>Hello, my order ' || i || ' has not arrived yet. Could you check with the carrier?</p>',
							'body_text', 'Hello, my order ' || i || ' has not arrived yet. Could you check with the carrier?'))
					WHEN v %% 2 = 0 THEN json_build_object('id', md5('m' || i || '-' || v)::uuid,
						'author_type', CASE WHEN v %% 4 = 0 THEN 'customer' ELSE 'agent' END,
						'body', '<p>Message ' || v || ' about order ' || i || ': we asked the carrier and will write again soon.</p>',
						'body_text', 'Message ' || v || ' about order ' || i || ': we asked the carrier and will write again soon.', 'internal', false)
					WHEN v = 3 THEN '{"status":{"old":"new","new":"open"}}'::json
					WHEN v = 5 THEN '{"priority":{"old":"normal","new":"high"}}'::json
					WHEN v = 7 THEN '{"tags":{"old":["billing","order"],"new":["billing","order","vip"]}}'::json
					ELSE '{"status":{"old":"open","new":"solved"}}'::json END,
				%s, timestamptz '2025-01-01' + i * interval '30 second' + v * interval '1 hour'
			FROM generate_series(1, %d) v, generate_series(1, %d) i ORDER BY v, i`,
			ws, helpdeskflow.CurrentEventSchemaVersion, md("'req_t' || i || '_' || v"), rebuildTicketEvents, rebuildTickets),
		"ANALYZE events",
		"CREATE TABLE bench_seed (events bigint NOT NULL)",
		fmt.Sprintf("INSERT INTO bench_seed VALUES (%d)", rebuildEvents),
	}
}

// waitMerges waits (up to max) until ClickHouse runs no merge in database.
func waitMerges(ctx context.Context, conn driver.Conn, database string, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", database).Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// bulkInsert is ClickHouse's own bulk insert of the rows a rebuild
// inserted: for each table, up to rebuildSampleRows of its rows (read into
// memory first, not timed) inserted, over and over, into a fresh table of
// the same definition (feeding copies of the materialized views the table
// feeds, as the rebuilt tables do) until as many rows as the rebuild inserted are in,
// in blocks of the rebuild's size (its rows ÷ its batches), with the
// projector's clickhouse-go column inserts, the tables concurrently. It
// returns the seconds the inserts took.
func bulkInsert(ctx context.Context, conn driver.Conn, inserted map[string]int64, batches int64) (float64, error) {
	type table struct {
		name, columns string
		values        []reflect.Value
		n             int
		total, block  int64
	}
	var tables []*table
	for name, total := range inserted {
		if total == 0 {
			continue
		}
		t := &table{name: name, total: total, block: max(1, total/max(1, batches))}
		fresh := "bulk_" + name
		if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+fresh); err != nil {
			return 0, err
		}
		if err := conn.Exec(ctx, "CREATE TABLE "+fresh+" AS "+name); err != nil {
			return 0, err
		}
		// The views the table feeds (ticket_history's analytics views)
		// feed copies of their targets from the copy, as in the rebuilt
		// schema.
		if err := projections.CopyFedViews(ctx, conn, name, "bulk_"); err != nil {
			return 0, err
		}
		var err error
		if t.columns, t.values, t.n, err = readColumns(ctx, conn, name, rebuildSampleRows); err != nil {
			return 0, err
		}
		if t.n == 0 {
			continue
		}
		t.name = fresh
		tables = append(tables, t)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(tables))
	for i, t := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done, from := int64(0), 0; done < t.total; {
				n := int(min(t.block, t.total-done, int64(t.n-from)))
				batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+t.name+" ("+t.columns+")")
				if err == nil {
					for c, v := range t.values {
						if err = projections.AppendColumn(batch.Column(c), v.Slice(from, from+n).Interface()); err != nil {
							break
						}
					}
					if err == nil {
						err = batch.Send()
					} else {
						_ = batch.Abort()
					}
				}
				if err != nil {
					errs[i] = fmt.Errorf("insert into %s: %w", t.name, err)
					return
				}
				done += int64(n)
				if from += n; from == t.n {
					from = 0
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start).Seconds(), errors.Join(errs...)
}

// readColumns reads up to limit rows of table column by column: the
// column names (comma-separated), one slice per column, and the row count.
func readColumns(ctx context.Context, conn driver.Conn, table string, limit int) (string, []reflect.Value, int, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT * FROM %s LIMIT %d", table, limit))
	if err != nil {
		return "", nil, 0, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	names := make([]string, len(types))
	values := make([]reflect.Value, len(types))
	dest := make([]any, len(types))
	for i, ct := range types {
		names[i] = ct.Name()
		values[i] = reflect.MakeSlice(reflect.SliceOf(ct.ScanType()), 0, limit)
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return "", nil, 0, err
		}
		for i := range dest {
			values[i] = reflect.Append(values[i], reflect.ValueOf(dest[i]).Elem())
		}
		n++
	}
	return strings.Join(names, ", "), values, n, rows.Err()
}

// rebuildTarget adds the rebuild's pass/MISS line.
func (r *results) rebuildTarget(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	rb := r.Rebuild
	name := "projection rebuild events/s ÷ ClickHouse bulk insert of the same rows"
	target := fmt.Sprintf(">= %.0f", targetRebuildRatio*100)
	if rb == nil || rb.Error != "" || rb.BaselinePerSec == 0 {
		add(name, target, "%", false, 0, false)
		return
	}
	add(name, target, "%", true, rb.Ratio*100, rb.Ratio >= targetRebuildRatio)
	detail("median of %d rounds: rebuild %.0f events/s (%d events in %.1f s) vs bulk insert %.0f events/s (%.1f s)", len(rb.Rounds), rb.RebuildPerSec, rb.Events, rb.RebuildSeconds, rb.BaselinePerSec, rb.BaselineSeconds)
}

// markdownRebuild writes the rebuild section of summary.md.
func (r *results) markdownRebuild(w io.Writer) {
	rb := r.Rebuild
	if rb == nil {
		return
	}
	fmt.Fprintf(w, "\n## Projection rebuild (`projections rebuild`, blue/green)\n\n")
	if rb.Error != "" {
		fmt.Fprintf(w, "Failed: %s\n", rb.Error)
		return
	}
	fmt.Fprintf(w, "Store: Postgres database `%s` on the bench server, %d events seeded by SQL (%d tickets with %d events each and as many customers with one; reused: %v, %.0f s). "+
		"The rebuild reads it in commit order, folds and inserts into a fresh ClickHouse database in batches of %d events. "+
		"The baseline inserts the same number of rows per table (up to %d of the rebuilt rows, repeated) into fresh tables of the same definitions (the copy of ticket_history feeding copies of its analytics views, as the rebuilt one does), in blocks of the rebuild's size, with the same clickhouse-go column inserts, the tables concurrently, without reading Postgres.\n\n",
		rb.StoreDatabase, rb.Events, rebuildTickets, rebuildTicketEvents, rb.SeedReused, rb.SeedSeconds, rb.BatchSize, rebuildSampleRows)
	fmt.Fprintf(w, "Each of %d rounds rebuilds into a fresh database, then runs its baseline; the phase's result is the round with the median ratio.\n\n", rebuildRounds)
	fmt.Fprintf(w, "| round | | seconds | events/s | CPU %% bench | postgres | clickhouse | ratio |\n|---|---|---|---|---|---|---|---|\n")
	for i, rd := range rb.Rounds {
		fmt.Fprintf(w, "| %d | rebuild | %.1f | %.0f | %.0f | %.0f | %.0f | %.2f |\n", i+1, rd.RebuildSeconds, rd.RebuildPerSec, rd.CPU.LoadGenPct, rd.CPU.PostgresPct, rd.CPU.ClickHousePct, rd.Ratio)
		fmt.Fprintf(w, "| %d | bulk insert | %.1f | %.0f | %.0f | %.0f | %.0f | |\n", i+1, rd.BaselineSeconds, rd.BaselinePerSec, rd.BaselineCPU.LoadGenPct, rd.BaselineCPU.PostgresPct, rd.BaselineCPU.ClickHousePct)
	}
	fmt.Fprintf(w, "\nRows inserted: %v. **Median ratio %.2f (target ≥ %.2f): %s.**\n", rb.Inserted, rb.Ratio, targetRebuildRatio, passMiss(rb.Ratio >= targetRebuildRatio))
}
