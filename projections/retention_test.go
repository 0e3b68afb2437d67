package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/projections"
)

// The request log's partitions of months wholly before the cutoff are
// dropped, with their rows counted; the cutoff's month and later ones
// stay, rows and all.
func TestDropRequestLogBefore(t *testing.T) {
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
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO api_requests (time, time_ms, request_id, method, route, path, status)")
	if err != nil {
		t.Fatal(err)
	}
	for what, ts := range times {
		for _, at := range ts {
			if err := batch.Append(at, uint16(0), what, "GET", "/v1/tickets", "/v1/tickets", uint16(200)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	// The cutoff falls in the month two months ago: the two months
	// before it go, it and this month stay.
	cutoff := month.AddDate(0, -2, 0)
	dropped, err := projections.DropRequestLogBefore(ctx, conn, cutoff)
	if err != nil || dropped != 3 {
		t.Fatalf("DropRequestLogBefore = %d, %v; want the 3 rows of the two old months", dropped, err)
	}
	rows, err := conn.Query(ctx, "SELECT request_id, count() FROM api_requests GROUP BY request_id ORDER BY request_id")
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]uint64{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		left[id] = n
	}
	rows.Close()
	if len(left) != 2 || left["two months ago"] != 1 || left["this month"] != 1 {
		t.Errorf("rows left: got %v, want one of two months ago and one of this month", left)
	}
	if dropped, err := projections.DropRequestLogBefore(ctx, conn, cutoff); err != nil || dropped != 0 {
		t.Errorf("again: DropRequestLogBefore = %d, %v; want nothing to drop", dropped, err)
	}
}
