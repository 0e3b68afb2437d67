package pg_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// TestKeepStatistics: a hot table that grew from empty is analyzed at
// once, so the plans prepared afterwards find rows by index; a table that
// did not change as much as it holds is left alone.
func TestKeepStatistics(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	// One session inserts and then reports its statistics at once (a
	// backend reports them at most once a second, an idle one after 10 s).
	conn, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`INSERT INTO customer_emails (workspace_id, email, customer_id)
			SELECT gen_random_uuid(), 'c' || i || '@example.com', gen_random_uuid() FROM generate_series(1, 20000) i`,
		`INSERT INTO customer_tickets (workspace_id, customer_id, ticket_id)
			SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid() FROM generate_series(1, 100)`,
		`SELECT pg_stat_force_next_flush()`,
		`SELECT 1`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	conn.Release()
	stop := testenv.Run(t, func(ctx context.Context) error {
		return pg.KeepStatistics(ctx, db, []string{"customer_emails", "customer_tickets"}, 50*time.Millisecond, slog.Default())
	})
	analyzed := func(table string) bool {
		var n int64
		if err := db.Pool().QueryRow(ctx, `SELECT analyze_count FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if !analyzed("customer_emails") {
			return errString("customer_emails was not analyzed")
		}
		return nil
	})
	stop()
	if analyzed("customer_tickets") {
		t.Error("customer_tickets changed by 100 rows (under the minimum) and was analyzed")
	}
	// A generic plan made now finds an email by its key.
	conn, err = db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `PREPARE find (uuid, text) AS SELECT customer_id FROM customer_emails WHERE workspace_id = $1 AND email = $2`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE find('6f1d7c1e-8a3c-4d55-9a5e-0c2f1b7a9d10', 'x@example.com')`)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if strings.Contains(plan.String(), "Seq Scan") {
		t.Errorf("the generic plan reads the whole table:\n%s", plan.String())
	}
}

type errString string

func (e errString) Error() string { return string(e) }
