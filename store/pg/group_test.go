package pg_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// TestTransactGrouped_StatementErrorRunsEachAlone: a member's statement
// that fails aborts the shared transaction; every member then runs again
// alone, so the failing one gets its own error and the others commit,
// each once, with their after-commit hooks run once.
func TestTransactGrouped_StatementErrorRunsEachAlone(t *testing.T) {
	db, err := pg.Connect(context.Background(), testenv.PostgresDatabase(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	if err := db.EnableGroupCommit(pg.GroupConfig{Committers: 1}, reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE grouped (key text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	// Hold the committer so that the members below queue into one group.
	holding, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		held <- db.TransactGrouped(ctx, "hold", func(*pg.Tx) error { once.Do(func() { close(holding) }); <-release; return nil })
	}()
	<-holding
	const members = 5
	var wg sync.WaitGroup
	errs := make([]error, members)
	var hooks sync.Map
	for i := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("m%d", i)
			errs[i] = db.TransactGrouped(ctx, key, func(tx *pg.Tx) error {
				tx.AfterCommit(func(context.Context, *pg.DB) error {
					n, _ := hooks.LoadOrStore(key, new(int))
					*n.(*int)++
					return nil
				})
				if i == 2 {
					var x int
					return tx.Reader().QueryRow(ctx, `SELECT 1 / (random() * 0)::int`).Scan(&x)
				}
				_, err := tx.Exec(ctx, `INSERT INTO grouped VALUES ($1)`, key)
				return err
			})
		}()
		testenv.Eventually(t, 10*time.Second, func() error {
			if got := testenv.Metric(t, reg, "helpdeskflow_group_commit_waiting"); got < float64(i+1) {
				return fmt.Errorf("%v waiting", got)
			}
			return nil
		})
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if i == 2 {
			if helpdeskflow.ErrorCode(err) != helpdeskflow.EInternal {
				t.Errorf("the failing member: %v, want its statement's error", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("member %d: %v", i, err)
		}
		if n, ok := hooks.Load(fmt.Sprintf("m%d", i)); !ok || *n.(*int) != 1 {
			t.Errorf("member %d's after-commit hook ran %v times, want once", i, n)
		}
	}
	if _, ok := hooks.Load("m2"); ok {
		t.Error("the failing member's hook ran")
	}
	var rows int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM grouped`).Scan(&rows); err != nil || rows != members-1 {
		t.Errorf("%d rows stored (%v), want %d", rows, err, members-1)
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_group_commit_replays_total"); got != members {
		t.Errorf("%v members ran again alone, want all %d", got, members)
	}
}

// TestTransactGrouped_Panic: a function that panics does not stall its
// group or its key: the panic reaches its caller, the other members
// commit, and the next transaction of the same key runs.
func TestTransactGrouped_Panic(t *testing.T) {
	db, err := pg.Connect(context.Background(), testenv.PostgresDatabase(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.EnableGroupCommit(pg.GroupConfig{Committers: 1}, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE grouped (key text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	panicked := make(chan any, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer func() { panicked <- recover() }()
		db.TransactGrouped(ctx, "p", func(tx *pg.Tx) error { //nolint:errcheck // it panics
			if _, err := tx.Exec(ctx, `INSERT INTO grouped VALUES ('p')`); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	go func() {
		defer wg.Done()
		if err := db.TransactGrouped(ctx, "q", func(tx *pg.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO grouped VALUES ('q')`)
			return err
		}); err != nil {
			t.Errorf("the other member: %v", err)
		}
	}()
	wg.Wait()
	if p := <-panicked; p != "boom" {
		t.Errorf("the caller recovered %v, want the function's panic", p)
	}
	if err := db.TransactGrouped(ctx, "p", func(tx *pg.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO grouped VALUES ('p2')`)
		return err
	}); err != nil {
		t.Fatalf("the panicking key's next transaction: %v", err)
	}
	var keys []string
	rows, _ := db.Pool().Query(ctx, `SELECT key FROM grouped ORDER BY key`)
	for rows.Next() {
		var k string
		rows.Scan(&k) //nolint:errcheck // checked by the comparison
		keys = append(keys, k)
	}
	if fmt.Sprint(keys) != "[p2 q]" {
		t.Errorf("stored %v, want [p2 q]", keys)
	}
}
