package projections_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

func TestMigrate_Twice(t *testing.T) {
	t.Parallel()
	conn, name := newDB(t) // migrated once already
	ctx := context.Background()
	ws := uuid.New()
	insertTickets(t, conn, ws, ticketFixture{id: uuid.New(), version: 1, status: "new", priority: "low", customer: uuid.New(), createdAtMs: 1, updatedAtMs: 1})

	for i := 0; i < 2; i++ {
		if err := projections.Migrate(ctx, conn); err != nil {
			t.Fatalf("Migrate again (%d): %v", i+1, err)
		}
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := queryUint(t, conn, "SELECT count() FROM schema_migrations FINAL"), uint64(len(files)); got != want {
		t.Errorf("schema_migrations has %d rows, want %d", got, want)
	}
	if got, want := queryUint(t, conn, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('tickets', 'tickets_by_created', 'tickets_by_customer', 'customers', 'ticket_messages', 'audit_log', 'api_requests', 'schema_migrations', 'projection_positions')", name), uint64(9); got != want {
		t.Errorf("%d tables exist, want %d", got, want)
	}
	for _, table := range []string{"tickets", "tickets_by_created", "tickets_by_customer"} {
		if got := queryUint(t, conn, "SELECT count() FROM "+table+" FINAL"); got != 1 {
			t.Errorf("%s has %d rows after migrating again, want 1", table, got)
		}
	}
}

// TestMigrate_TicketListTablesBackfill migrates a database that an older
// release left with tickets: migration 7 copies their latest versions into
// tickets_by_created and tickets_by_customer, later inserts into tickets
// reach both through the views, and running the migration again changes
// nothing under FINAL.
func TestMigrate_TicketListTablesBackfill(t *testing.T) {
	t.Parallel()
	conn, _ := newBareDB(t)
	ctx := context.Background()
	if err := projections.MigrateUpTo(ctx, conn, 6); err != nil {
		t.Fatalf("MigrateUpTo(6): %v", err)
	}
	ws, other := uuid.New(), uuid.New()
	t1 := ticketFixture{uuid.New(), 1, "new", "low", []string{"a"}, uuid.New(), "", 1000, 1000}
	t1v2 := t1
	t1v2.version, t1v2.status, t1v2.customer, t1v2.updatedAtMs = 2, "open", uuid.New(), 2000 // moved by a merge
	t2 := ticketFixture{uuid.New(), 3, "solved", "high", nil, uuid.New(), "billing", 1500, 3000}
	t3 := ticketFixture{uuid.New(), 1, "new", "normal", nil, uuid.New(), "", 1000, 1000}
	insertTickets(t, conn, ws, t1)
	insertTickets(t, conn, ws, t1v2, t2)
	insertTickets(t, conn, other, t3)

	if err := projections.Migrate(ctx, conn); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	sameTables := func(when string, want int) {
		t.Helper()
		byID := finalRows(t, conn, "tickets")
		if len(byID) != want {
			t.Errorf("%s: tickets FINAL has %d rows, want %d", when, len(byID), want)
		}
		for _, table := range []string{"tickets_by_created", "tickets_by_customer"} {
			if got := finalRows(t, conn, table); !slices.Equal(byID, got) {
				t.Errorf("%s: tickets FINAL and %s FINAL differ:\n%v\n%v", when, table, byID, got)
			}
		}
	}
	sameTables("after the backfill", 3)

	t4 := ticketFixture{uuid.New(), 1, "new", "low", nil, uuid.New(), "", 5000, 5000}
	t2v4 := t2
	t2v4.version, t2v4.status, t2v4.customer = 4, "closed", uuid.New()
	insertTickets(t, conn, ws, t4, t2v4)
	sameTables("after inserts into tickets", 4)

	if err := projections.RerunMigration(ctx, conn, 7); err != nil {
		t.Fatalf("migration 7 again: %v", err)
	}
	sameTables("after running migration 7 again", 4)
}

// finalRows is the latest row of every ticket in table (tickets or a list
// table) under FINAL, as text, sorted. In tickets_by_customer an older
// version of a ticket that moved to another customer stays under the old
// one; the latest wins here as it does for the reader.
func finalRows(t *testing.T, conn driver.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT workspace_id, ticket_id, version, status, tags, customer_id, team, created_at_ms, updated_at_ms FROM "+table+
		" FINAL ORDER BY version DESC LIMIT 1 BY ticket_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			ws, id, customer      uuid.UUID
			version               uint64
			status, team          string
			tags                  []string
			createdAtMs, updateMs int64
		)
		if err := rows.Scan(&ws, &id, &version, &status, &tags, &customer, &team, &createdAtMs, &updateMs); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v %v v%d %q %q %v %q %d %d", ws, id, version, status, tags, customer, team, createdAtMs, updateMs))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	produce(t, brokers, s.events()...)
	produceRecords(t, brokers, kafka.NewWatermarks(kafka.TopicEvents, helpdeskflow.Position{TxID: 1, Seq: 1}, 4)...)
	startProjector(t, conn, brokers, "g-truncate")
	eventually(t, wait, "projection", func() bool {
		return queryUint(t, conn, "SELECT count() FROM audit_log") == 4 && queryUint(t, conn, "SELECT count() FROM tickets_by_created") > 0 &&
			queryUint(t, conn, "SELECT count() FROM tickets_by_customer") > 0 && queryUint(t, conn, "SELECT count() FROM projection_positions") > 0
	})

	if err := projections.Truncate(context.Background(), conn); err != nil {
		t.Fatalf("Truncate: %v", err)
	}
	for _, table := range []string{"tickets", "tickets_by_created", "tickets_by_customer", "customers", "ticket_messages", "audit_log", "projection_positions"} {
		if got := queryUint(t, conn, "SELECT count() FROM "+table); got != 0 {
			t.Errorf("%s has %d rows after Truncate, want 0", table, got)
		}
	}
	if got := queryUint(t, conn, "SELECT count() FROM schema_migrations"); got == 0 {
		t.Error("Truncate emptied schema_migrations")
	}
}

func TestOpenClickHouse_InvalidDatabase(t *testing.T) {
	t.Parallel()
	_, err := projections.OpenClickHouse(context.Background(), clickHouseAddr(), "x; DROP DATABASE default")
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
	}
}

func TestOpenClickHouse_Unreachable(t *testing.T) {
	t.Parallel()
	_, err := projections.OpenClickHouse(context.Background(), "127.0.0.1:1", "whatever")
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EUnavailable; got != want {
		t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
	}
}
