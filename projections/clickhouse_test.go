package projections_test

import (
	"context"
	"path/filepath"
	"testing"

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
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := queryUint(t, conn, "SELECT count() FROM schema_migrations FINAL"), uint64(len(files)); got != want {
		t.Errorf("schema_migrations has %d rows, want %d (one per migration)", got, want)
	}
	if got, want := queryUint(t, conn, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('tickets', 'customers', 'ticket_messages', 'audit_log', 'api_requests', 'schema_migrations', 'projection_positions')", name), uint64(7); got != want {
		t.Errorf("%d tables exist, want %d", got, want)
	}
	if got := queryUint(t, conn, "SELECT count() FROM tickets"); got != 1 {
		t.Errorf("tickets has %d rows after migrating again, want 1", got)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	produce(t, brokers, s.events()...)
	produceRecords(t, brokers, kafka.NewWatermarks(kafka.TopicEvents, helpdeskflow.Position{TxID: 1, Seq: 1}, 4)...)
	startProjector(t, conn, brokers, "g-truncate")
	eventually(t, wait, "projection", func() bool {
		return queryUint(t, conn, "SELECT count() FROM audit_log") == 4 && queryUint(t, conn, "SELECT count() FROM projection_positions") > 0
	})

	if err := projections.Truncate(context.Background(), conn); err != nil {
		t.Fatalf("Truncate: %v", err)
	}
	for _, table := range []string{"tickets", "customers", "ticket_messages", "audit_log", "projection_positions"} {
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
