package pg_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// TestTransact_AfterCommit: hooks run after a commit, in the order they
// were registered, and the first error among them is Transact's; a rolled
// back transaction, or one that sent nothing, runs none.
func TestTransact_AfterCommit(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	var ran []string
	hook := func(name string, err error) func(context.Context, *pg.DB) error {
		return func(context.Context, *pg.DB) error {
			ran = append(ran, name)
			return err
		}
	}
	failed := errors.New("fn failed")
	err := db.Transact(ctx, func(tx *pg.Tx) error {
		tx.Defer(`CREATE TABLE hooks_rolled_back (id int)`)
		tx.AfterCommit(hook("rolled back", nil))
		if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) || len(ran) != 0 {
		t.Fatalf("rolled back: err %v, hooks run %v; want fn's error and none", err, ran)
	}
	if err := db.Transact(ctx, func(tx *pg.Tx) error { tx.AfterCommit(hook("idle", nil)); return nil }); err != nil || len(ran) != 0 {
		t.Fatalf("nothing sent: err %v, hooks run %v; want none", err, ran)
	}
	hookErr := &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "after the commit"}
	err = db.Transact(ctx, func(tx *pg.Tx) error {
		tx.AfterCommit(hook("first", nil))
		tx.AfterCommit(hook("second", hookErr))
		tx.AfterCommit(hook("third", errors.New("later")))
		tx.Defer(`CREATE TABLE hooks_committed (id int)`)
		return nil
	})
	if err != hookErr || !slices.Equal(ran, []string{"first", "second", "third"}) {
		t.Fatalf("committed: err %v, hooks run %v; want the second hook's error after all three in order", err, ran)
	}
	var committed bool
	if err := db.Pool().QueryRow(ctx, `SELECT to_regclass('hooks_committed') IS NOT NULL AND to_regclass('hooks_rolled_back') IS NULL`).Scan(&committed); err != nil || !committed {
		t.Fatalf("the deferred statements: committed %v (err %v), want only the committed transaction's", committed, err)
	}
}

// TestTx_Local: every view of a transaction shares one value per key,
// made once; each transaction has its own.
func TestTx_Local(t *testing.T) {
	db := testenv.Postgres(t)
	type key struct{}
	made := 0
	for range 2 {
		err := db.Transact(context.Background(), func(tx *pg.Tx) error {
			first := tx.Local(key{}, func() any { made++; return new(int) }).(*int)
			second := tx.Local(key{}, func() any { made++; return new(int) }).(*int)
			if first != second {
				t.Error("two views of one transaction got different values")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if made != 2 {
		t.Errorf("made %d values for two transactions, want 2", made)
	}
}
