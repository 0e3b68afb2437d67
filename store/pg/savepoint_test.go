package pg_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// TestTx_Savepoint: parts of one transaction are kept or undone alone:
// a part rolled back leaves nothing, whether its statements were sent
// (also by a statement that failed and aborted the transaction) or only
// queued; the parts around it commit; undo functions run on rollback only.
func TestTx_Savepoint(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE parts (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var undone []int
	err := db.Transact(ctx, func(tx *pg.Tx) error {
		insert := func(id int) error {
			_, err := tx.Exec(ctx, `INSERT INTO parts VALUES ($1)`, id)
			return err
		}
		part := func(id int, keep bool, run func() error) {
			tx.Savepoint()
			tx.OnRollbackToSavepoint(func() { undone = append(undone, id) })
			err := run()
			if keep && err == nil {
				tx.ReleaseSavepoint()
			} else if err := tx.RollbackToSavepoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
		part(1, true, func() error { return insert(1) })
		// Sent, then undone.
		part(2, false, func() error { return insert(2) })
		// A statement that fails aborts the transaction; the rollback to
		// the savepoint, sent with the next statement, brings it back.
		part(3, true, func() error {
			if err := insert(3); err != nil {
				return err
			}
			return insert(1) // duplicate key
		})
		// Only queued, never sent: dropped.
		part(4, false, func() error { tx.Defer(`INSERT INTO parts VALUES (4)`); return nil })
		part(5, true, func() error { tx.Defer(`INSERT INTO parts VALUES (5)`); return nil })
		part(6, true, func() error { return nil })
		return insert(7)
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := db.Pool().Query(ctx, `SELECT id FROM parts ORDER BY id`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{1, 5, 7}; !slices.Equal(ids, want) {
		t.Errorf("committed rows %v, want %v", ids, want)
	}
	if want := []int{2, 3, 4}; !slices.Equal(undone, want) {
		t.Errorf("undo ran for parts %v, want %v", undone, want)
	}
}
