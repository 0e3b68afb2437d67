package projections_test

import (
	"context"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/projections"
)

// CopyFedViews: a copy of ticket_history feeds copies of its views'
// targets, not the originals, and a second call replaces the copies; a
// table that feeds no view gets none.
func TestCopyFedViews(t *testing.T) {
	conn, _ := newDB(t)
	ctx := context.Background()
	exec := func(stmt string) {
		t.Helper()
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	exec("CREATE TABLE bulk_ticket_history AS ticket_history")
	for range 2 {
		if err := projections.CopyFedViews(ctx, conn, "ticket_history", "bulk_"); err != nil {
			t.Fatal(err)
		}
	}
	if err := projections.CopyFedViews(ctx, conn, "tickets", "bulk_"); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO bulk_ticket_history (workspace_id, ticket_id, version, event_type, rule_id, occurred_at, occurred_at_ms)
		SELECT toUUID('00000000-0000-0000-0000-000000000001'), toUUID('00000000-0000-0000-0000-000000000002'), 1, 'ticket.created', 'rule-1', toDateTime('2026-03-02 10:00:00'), 1772445600000`)
	for table, want := range map[string]uint64{
		"bulk_automation_firings": 1, "bulk_ticket_service": 1, "automation_firings": 0, "ticket_service": 0,
	} {
		if got := queryUint(t, conn, "SELECT count() FROM "+table); got != want {
			t.Errorf("%s has %d rows, want %d", table, got, want)
		}
	}
	if got := queryUint(t, conn, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'bulk_tickets%'"); got != 0 {
		t.Errorf("tickets feeds no view of its own to copy; got %d copies", got)
	}
}
