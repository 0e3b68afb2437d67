package pg_test

import (
	"context"
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
