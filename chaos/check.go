package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/jackc/pgx/v5"
)

// loadEvents reads every event of the workspace from the event store at url.
func loadEvents(ctx context.Context, url, workspace string) ([]storedEvent, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id::text, type, data::text, occurred_at FROM events WHERE workspace_id = $1 ORDER BY tx_id, seq`, workspace)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedEvent, error) {
		var e storedEvent
		err := r.Scan(&e.ID, &e.Type, &e.Data, &e.OccurredAt)
		return e, err
	})
}

// openClickHouse connects to the ClickHouse database.
func openClickHouse(addr, database string) (driver.Conn, error) {
	return clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: database},
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Minute})
}

// projectedEvents counts, per event id, the audit_log rows of the workspace
// with FINAL: the projector's one row per event.
func projectedEvents(ctx context.Context, ch driver.Conn, workspace string) (map[string]uint64, error) {
	rows, err := ch.Query(ctx, `SELECT toString(event_id), count() FROM audit_log FINAL WHERE workspace_id = toUUID(?) GROUP BY event_id`, workspace)
	if err != nil {
		return nil, fmt.Errorf("read audit_log: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// projectionTally is, for one phase, how its events ended up in ClickHouse.
type projectionTally struct {
	Events     int
	Missing    int // in the event store, not in ClickHouse
	Duplicated int // more than one row with FINAL
}

// Failed reports a missing or duplicated event.
func (t projectionTally) Failed() bool { return t.Missing+t.Duplicated > 0 }

// tallyProjection compares the event store with ClickHouse's rows per
// event, attributing each event to the phase it occurred in (phaseAt).
func tallyProjection(events []storedEvent, projected map[string]uint64, phases int, phaseAt func(time.Time) int) ([]projectionTally, int) {
	out := make([]projectionTally, phases)
	inStore := map[string]bool{}
	for _, e := range events {
		inStore[e.ID] = true
		t := &out[phaseAt(e.OccurredAt)]
		t.Events++
		switch n := projected[e.ID]; {
		case n == 0:
			t.Missing++
		case n > 1:
			t.Duplicated++
		}
	}
	phantoms := 0
	for id := range projected {
		if !inStore[id] {
			phantoms++
		}
	}
	return out, phantoms
}

// tableCount is one ClickHouse table's rows after OPTIMIZE … FINAL, without
// and with FINAL.
type tableCount struct {
	Table        string
	Rows, Final  uint64
	OptimizeNote string // why the table could not be optimized, if so
}

// optimizeAndCount runs OPTIMIZE TABLE … FINAL on every ReplacingMergeTree
// table of the database and counts its rows without and with FINAL, which
// must then agree.
func optimizeAndCount(ctx context.Context, ch driver.Conn, database string) ([]tableCount, error) {
	rows, err := ch.Query(ctx, `SELECT name FROM system.tables WHERE database = ? AND engine LIKE '%ReplacingMergeTree' ORDER BY name`, database)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []tableCount
	for _, t := range tables {
		c := tableCount{Table: t}
		if err := ch.Exec(ctx, "OPTIMIZE TABLE `"+t+"` FINAL"); err != nil {
			return nil, fmt.Errorf("OPTIMIZE TABLE %s FINAL: %w", t, err)
		}
		if err := ch.QueryRow(ctx, "SELECT count() FROM `"+t+"`").Scan(&c.Rows); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		if err := ch.QueryRow(ctx, "SELECT count() FROM `"+t+"` FINAL").Scan(&c.Final); err != nil {
			return nil, fmt.Errorf("count %s FINAL: %w", t, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// deliveryRecord is a webhook delivery as the dispatcher recorded it.
type deliveryRecord struct {
	Status   string
	Attempts int
	Logged   int // rows in webhook_attempts
}

// loadDeliveries reads the webhook's deliveries by event id.
func loadDeliveries(ctx context.Context, url, webhook string) (map[string]deliveryRecord, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT d.event_id::text, d.status, d.attempts,
		(SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id)
		FROM webhook_deliveries d WHERE d.webhook_id = $1`, webhook)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	out := map[string]deliveryRecord{}
	for rows.Next() {
		var id string
		var d deliveryRecord
		if err := rows.Scan(&id, &d.Status, &d.Attempts, &d.Logged); err != nil {
			return nil, err
		}
		out[id] = d
	}
	return out, rows.Err()
}

// webhookTally is, for one phase, what became of its subscribed events.
type webhookTally struct {
	Subscribed      int
	Received        int // reached the receiver with a 2xx at least once
	PermanentFailed int // not received, recorded as failed with its attempts logged
	// UnloggedAttempts counts, over the permanently failed deliveries,
	// attempts claimed but never logged: a dispatcher killed during the
	// attempt (the claim counts it, the log never gets it).
	UnloggedAttempts int
	Missing          int // neither
}

// Failed reports an event neither received nor recorded as failed.
func (t webhookTally) Failed() bool { return t.Missing > 0 }

// tallyWebhooks checks every subscribed event: received, or permanently
// failed with its attempts logged.
func tallyWebhooks(events []storedEvent, subscribed map[string]bool, received map[string]int,
	deliveries map[string]deliveryRecord, phases int, phaseAt func(time.Time) int) []webhookTally {
	out := make([]webhookTally, phases)
	for _, e := range events {
		if !subscribed[e.Type] {
			continue
		}
		t := &out[phaseAt(e.OccurredAt)]
		t.Subscribed++
		d, recorded := deliveries[e.ID]
		switch {
		case received[e.ID] > 0:
			t.Received++
		case permanentlyFailed(d, recorded):
			t.PermanentFailed++
			t.UnloggedAttempts += d.Attempts - d.Logged
		default:
			t.Missing++
		}
	}
	return out
}

// permanentlyFailed reports whether a delivery is recorded as permanently
// failed with its attempts logged: each logged attempt is one the claim
// counted; an attempt cut short by a killed dispatcher is counted but
// cannot be logged.
func permanentlyFailed(d deliveryRecord, recorded bool) bool {
	return recorded && d.Status == "failed" && d.Logged > 0 && d.Logged <= d.Attempts
}
