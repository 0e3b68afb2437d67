package pg_test

import (
	"context"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// One holder at a time per name: a second TryLock gets nothing until the
// first unlocks; another name is free meanwhile.
func TestDB_TryLock(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	unlock, ok, err := db.TryLock(ctx, "job")
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v; want the lock", ok, err)
	}
	if _, ok, err := db.TryLock(ctx, "job"); err != nil || ok {
		t.Fatalf("second TryLock while held = %v, %v; want no lock", ok, err)
	}
	other, ok, err := db.TryLock(ctx, "another job")
	if err != nil || !ok {
		t.Fatalf("TryLock of another name = %v, %v; want the lock", ok, err)
	}
	other()
	unlock()
	again, ok, err := db.TryLock(ctx, "job")
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v; want the lock", ok, err)
	}
	again()
}
