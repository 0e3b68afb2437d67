package pg_test

import (
	"context"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

func TestMigrate_Twice(t *testing.T) {
	db := testenv.Postgres(t) // already migrated once
	if err := pg.Migrate(context.Background(), db); err != nil {
		t.Fatalf("second migration: %v", err)
	}
}

// TestMigration0021_EmailsByCustomer: moving a customer's emails (a merge)
// finds them by index, not by reading the whole table.
func TestMigration0021_EmailsByCustomer(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := db.Pool().Exec(ctx, `INSERT INTO customer_emails (workspace_id, email, customer_id)
		SELECT gen_random_uuid(), 'c' || i || '@example.com', gen_random_uuid() FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE customer_emails`); err != nil {
		t.Fatal(err)
	}
	var plan string
	rows, err := db.Pool().Query(ctx, `EXPLAIN UPDATE customer_emails SET customer_id = gen_random_uuid()
		WHERE customer_id = '6f1d7c1e-8a3c-4d55-9a5e-0c2f1b7a9d10'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan += line + "\n"
	}
	if !strings.Contains(plan, "customer_emails_customer") {
		t.Errorf("the plan does not use customer_emails_customer:\n%s", plan)
	}
}
