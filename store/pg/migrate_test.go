package pg_test

import (
	"context"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

func TestMigrate_Twice(t *testing.T) {
	pool := testenv.Postgres(t) // already migrated once
	if err := pg.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("second migration: %v", err)
	}
}
