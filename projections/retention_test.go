package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// Each retained table's partitions of months wholly before the cutoff are
// dropped, with their rows counted; the cutoff's month and later ones
// stay, rows and all, and the other retained tables are not touched.
func TestDropMonthsBefore(t *testing.T) {
	conn, _ := newDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 15, 12, 0, 0, 0, time.UTC)
	times := map[string][]time.Time{
		"four months ago":  {month.AddDate(0, -4, 0), month.AddDate(0, -4, 1)},
		"three months ago": {month.AddDate(0, -3, 0)},
		"two months ago":   {month.AddDate(0, -2, 0)},
		"this month":       {month},
	}
	// Each table's time column and a text column that names the row's
	// month.
	columns := map[string][2]string{
		projections.TableRequestLog:      {"time", "request_id"},
		projections.TableWebhookAttempts: {"time", "event_type"},
		projections.TableMailSyncs:       {"time", "provider"},
		projections.TableAuditLog:        {"occurred_at", "event_type"},
	}
	for _, table := range projections.RetainedTables {
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columns[table][0]+", "+columns[table][1]+")")
		if err != nil {
			t.Fatal(err)
		}
		for what, ts := range times {
			for _, at := range ts {
				if err := batch.Append(at, what); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	left := func(table string) map[string]uint64 {
		rows, err := conn.Query(ctx, "SELECT "+columns[table][1]+", count() FROM "+table+" GROUP BY "+columns[table][1])
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]uint64{}
		for rows.Next() {
			var what string
			var n uint64
			if err := rows.Scan(&what, &n); err != nil {
				t.Fatal(err)
			}
			got[what] = n
		}
		return got
	}

	// The cutoff falls in the month two months ago: the two months
	// before it go, it and this month stay.
	cutoff := month.AddDate(0, -2, 0)
	for i, table := range projections.RetainedTables {
		dropped, err := projections.DropMonthsBefore(ctx, conn, table, cutoff)
		if err != nil || dropped != 3 {
			t.Fatalf("DropMonthsBefore(%s) = %d, %v; want the 3 rows of the two old months", table, dropped, err)
		}
		if got := left(table); len(got) != 2 || got["two months ago"] != 1 || got["this month"] != 1 {
			t.Errorf("%s: rows left %v, want one of two months ago and one of this month", table, got)
		}
		for _, other := range projections.RetainedTables[i+1:] {
			if got := left(other); len(got) != 4 {
				t.Errorf("dropping %s's months touched %s: %v", table, other, got)
			}
		}
		if dropped, err := projections.DropMonthsBefore(ctx, conn, table, cutoff); err != nil || dropped != 0 {
			t.Errorf("again: DropMonthsBefore(%s) = %d, %v; want nothing to drop", table, dropped, err)
		}
	}
	// Tables of current state are refused.
	for _, table := range []string{"tickets", "tickets_by_created", "customers", "x'; DROP TABLE tickets; --"} {
		if _, err := projections.DropMonthsBefore(ctx, conn, table, cutoff); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
			t.Errorf("DropMonthsBefore(%s): %v, want a validation error", table, err)
		}
	}
}
