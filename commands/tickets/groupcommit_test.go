package tickets_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// grouped is a tickets service whose one committer the test can hold, so
// that commands queue and then go to Postgres as one group.
type grouped struct {
	db    *pg.DB
	store *eventstore.Store
	svc   *tickets.Service
	reg   *prometheus.Registry
}

func newGrouped(t testing.TB, dbURL string, committers int) *grouped {
	t.Helper()
	db, err := pg.Connect(context.Background(), dbURL, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	reg := prometheus.NewRegistry()
	if err := db.EnableGroupCommit(pg.GroupConfig{Committers: committers}, reg); err != nil {
		t.Fatal(err)
	}
	store := testenv.StoreOn(t, db)
	return &grouped{db: db, store: store, svc: tickets.New(postgres.Tickets(store)), reg: reg}
}

// hold keeps the only committer busy with a transaction of its own until
// release is called, which returns once that transaction ended.
func (g *grouped) hold(t testing.TB) (release func()) {
	t.Helper()
	holding, rel, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		done <- g.db.TransactGrouped(context.Background(), "hold", func(*pg.Tx) error {
			once.Do(func() { close(holding) })
			<-rel
			return nil
		})
	}()
	<-holding
	return func() {
		close(rel)
		if err := <-done; err != nil {
			t.Errorf("holding transaction: %v", err)
		}
	}
}

// waitQueued waits until n transactions wait for the committer.
func (g *grouped) waitQueued(t testing.TB, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := testenv.Metric(t, g.reg, "helpdeskflow_group_commit_waiting"); got < float64(n) {
			return fmt.Errorf("%v transactions wait for the committer, want %d", got, n)
		}
		return nil
	})
}

// groups returns how many groups ran and their members in all.
func (g *grouped) groups(t testing.TB) (count, members float64) {
	t.Helper()
	families, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "helpdeskflow_group_commit_size" {
			h := f.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	return 0, 0
}

func oversizedTicket(email string) tickets.CreateTicket {
	cmd := validTicket()
	cmd.Customer.Email = email
	cmd.CustomFields = map[string]any{}
	for i := range 95 {
		cmd.CustomFields[fmt.Sprintf("f%02d", i)] = strings.Repeat("<", commands.MaxCustomFieldText)
	}
	return cmd
}

// TestGroupCommit_EachAsIfAlone: one group carries a valid create, a
// create whose event is refused after its customer email was reserved
// (the group rolls back and everyone runs again alone), an update that
// fails on the ticket's state, a stale If-Match, and two creates for one
// new customer email. Every request gets the answer it would get alone,
// and exactly the valid ones are stored.
func TestGroupCommit_EachAsIfAlone(t *testing.T) {
	for _, poisoned := range []bool{false, true} {
		t.Run(fmt.Sprintf("oversized member %v", poisoned), func(t *testing.T) {
			g := newGrouped(t, testenv.PostgresDatabase(t), 1)
			ctx := context.Background()
			ws := uuid.New()
			closed, err := g.svc.CreateTicket(ctx, ws, md, validTicket())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{helpdeskflow.StatusSolved, helpdeskflow.StatusClosed} {
				if closed, err = g.svc.UpdateTicket(ctx, ws, md, closed.ID, nil, tickets.UpdateTicket{Status: &s}, true); err != nil {
					t.Fatal(err)
				}
			}
			open, err := g.svc.CreateTicket(ctx, ws, md, validTicket())
			if err != nil {
				t.Fatal(err)
			}
			low := helpdeskflow.PriorityLow
			if open, err = g.svc.UpdateTicket(ctx, ws, md, open.ID, nil, tickets.UpdateTicket{Priority: &low}, true); err != nil {
				t.Fatal(err)
			}
			other, err := g.svc.CreateTicket(ctx, ws, md, validTicket())
			if err != nil {
				t.Fatal(err)
			}
			groupsBefore, _ := g.groups(t)

			type result struct {
				ticket helpdeskflow.Ticket
				err    error
			}
			results := make([]result, 6)
			high, stale := helpdeskflow.PriorityHigh, int64(1)
			requests := []func() (helpdeskflow.Ticket, error){
				func() (helpdeskflow.Ticket, error) {
					cmd := validTicket()
					cmd.Customer.Email = "valid@example.com"
					return g.svc.CreateTicket(ctx, ws, md, cmd)
				},
				func() (helpdeskflow.Ticket, error) {
					return g.svc.UpdateTicket(ctx, ws, md, closed.ID, nil, tickets.UpdateTicket{Priority: &high}, true)
				},
				func() (helpdeskflow.Ticket, error) {
					return g.svc.UpdateTicket(ctx, ws, md, open.ID, &stale, tickets.UpdateTicket{Priority: &high}, true)
				},
				func() (helpdeskflow.Ticket, error) {
					cmd := validTicket()
					cmd.Customer.Email = "twice@example.com"
					return g.svc.CreateTicket(ctx, ws, md, cmd)
				},
				func() (helpdeskflow.Ticket, error) {
					cmd := validTicket()
					cmd.Customer.Email = "twice@example.com"
					return g.svc.CreateTicket(ctx, ws, md, cmd)
				},
				func() (helpdeskflow.Ticket, error) {
					if poisoned {
						return g.svc.CreateTicket(ctx, ws, md, oversizedTicket("oversized@example.com"))
					}
					return g.svc.AddMessage(ctx, ws, md, other.ID, nil, tickets.AddMessage{Body: "hello"}, true)
				},
			}
			release := g.hold(t)
			var wg sync.WaitGroup
			for i, do := range requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i].ticket, results[i].err = do()
				}()
				g.waitQueued(t, i+1) // arrival order is the order above
			}
			release()
			wg.Wait()

			if results[0].err != nil || results[0].ticket.Customer.Email != "valid@example.com" {
				t.Errorf("valid create: %v", results[0].err)
			}
			if code := helpdeskflow.ErrorCode(results[1].err); code != helpdeskflow.EConflict {
				t.Errorf("update of a closed ticket: %v, want %s", results[1].err, helpdeskflow.EConflict)
			}
			if code := helpdeskflow.ErrorCode(results[2].err); code != helpdeskflow.EPreconditionFailed {
				t.Errorf("stale If-Match: %v, want %s", results[2].err, helpdeskflow.EPreconditionFailed)
			}
			if results[3].err != nil || results[4].err != nil {
				t.Fatalf("creates for one new email: %v, %v", results[3].err, results[4].err)
			}
			if a, b := results[3].ticket.Customer.ID, results[4].ticket.Customer.ID; a != b {
				t.Errorf("two creates for one new email made customers %s and %s, want one", a, b)
			}
			if poisoned {
				if code := helpdeskflow.ErrorCode(results[5].err); code != helpdeskflow.EPayloadTooLarge {
					t.Errorf("oversized create: %v, want %s", results[5].err, helpdeskflow.EPayloadTooLarge)
				}
				if testenv.Metric(t, g.reg, "helpdeskflow_group_commit_replays_total") == 0 {
					t.Error("the group whose member failed after writing was not run again alone")
				}
			} else {
				if results[5].err != nil || results[5].ticket.Version != 2 {
					t.Errorf("message: version %d, %v; want version 2", results[5].ticket.Version, results[5].err)
				}
				if got := testenv.Metric(t, g.reg, "helpdeskflow_group_commit_replays_total"); got != 0 {
					t.Errorf("%v transactions ran again alone; failures after reads alone must not undo the group", got)
				}
			}
			// hold, then the group, then the second create of twice@ (its key
			// was in flight).
			if groupsAfter, _ := g.groups(t); groupsAfter-groupsBefore != 3 {
				t.Errorf("%v groups ran, want 3 (the hold, the five, the second create for one email)", groupsAfter-groupsBefore)
			}

			var customers, emails, orphanEmails int
			err = g.db.Pool().QueryRow(ctx, `SELECT
				(SELECT count(*) FROM streams WHERE type = 'customer'),
				(SELECT count(*) FROM customer_emails),
				(SELECT count(*) FROM customer_emails e WHERE NOT EXISTS (SELECT 1 FROM events WHERE stream_id = e.customer_id))`).
				Scan(&customers, &emails, &orphanEmails)
			if err != nil {
				t.Fatal(err)
			}
			if customers != 3 || emails != 3 || orphanEmails != 0 {
				t.Errorf("%d customers, %d emails (%d without a customer); want ada, valid and twice alone", customers, emails, orphanEmails)
			}
			checkStreams(t, g.db)
		})
	}
}

// checkStreams fails unless every stream's events are versions 1…n with n
// its version.
func checkStreams(t testing.TB, db *pg.DB) {
	t.Helper()
	var bad int
	err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM streams s WHERE s.version <>
		(SELECT count(*) FROM events e WHERE e.stream_id = s.id) OR s.version <> (SELECT max(version) FROM events e WHERE e.stream_id = s.id)`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Errorf("%d streams whose events are not versions 1…version (err %v)", bad, err)
	}
}

// TestGroupCommit_OneTicketInArrivalOrder: two commands on one ticket that
// wait together apply in arrival order, with contiguous versions.
func TestGroupCommit_OneTicketInArrivalOrder(t *testing.T) {
	g := newGrouped(t, testenv.PostgresDatabase(t), 1)
	ctx := context.Background()
	ws := uuid.New()
	tk, err := g.svc.CreateTicket(ctx, ws, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	release := g.hold(t)
	var wg sync.WaitGroup
	versions := make([]int64, 3)
	errs := make([]error, 3)
	for i, p := range []string{helpdeskflow.PriorityHigh, helpdeskflow.PriorityLow, helpdeskflow.PriorityUrgent} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after, err := g.svc.UpdateTicket(ctx, ws, md, tk.ID, nil, tickets.UpdateTicket{Priority: &p}, true)
			versions[i], errs[i] = after.Version, err
		}()
		g.waitQueued(t, i+1)
	}
	release()
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || versions[i] != int64(i+2) {
			t.Errorf("command %d: version %d, %v; want version %d", i, versions[i], errs[i], i+2)
		}
	}
	final, err := g.svc.GetTicket(ctx, ws, tk.ID, true)
	if err != nil || final.Priority != helpdeskflow.PriorityUrgent || final.Version != 4 {
		t.Errorf("final ticket: priority %s version %d (%v); want the last command's urgent at version 4", final.Priority, final.Version, err)
	}
	checkStreams(t, g.db)
}

// TestGroupCommit_NoDeadlocks: 64 clients changing 8 tickets at once, on
// two committers, all complete, every change lands once, and Postgres
// counts no deadlock.
func TestGroupCommit_NoDeadlocks(t *testing.T) {
	dbURL := testenv.PostgresDatabase(t)
	g := newGrouped(t, dbURL, 2)
	ctx := context.Background()
	ws := uuid.New()
	ids := make([]uuid.UUID, 8)
	for i := range ids {
		cmd := validTicket()
		cmd.Customer.Email = fmt.Sprintf("c%d@example.com", i)
		tk, err := g.svc.CreateTicket(ctx, ws, md, cmd)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = tk.ID
	}
	deadlocks := func() int64 {
		var n int64
		if err := g.db.Pool().QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	const clients, each = 64, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := ids[(c+i)%len(ids)]
				var err error
				if i%2 == 0 {
					_, err = g.svc.AddMessage(ctx, ws, md, id, nil, tickets.AddMessage{Body: fmt.Sprintf("m %d %d", c, i)}, true)
				} else {
					_, err = g.svc.UpdateTicket(ctx, ws, md, id, nil, tickets.UpdateTicket{CustomFields: map[string]any{"n": fmt.Sprintf("%d-%d", c, i)}}, true)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range failures {
		t.Errorf("request failed: %v", err)
	}
	var changes int64
	if err := g.db.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = ANY($1) AND version > 1`, ids).Scan(&changes); err != nil {
		t.Fatal(err)
	}
	if changes != clients*each {
		t.Errorf("%d changes stored, want %d", changes, clients*each)
	}
	checkStreams(t, g.db)
	// A backend reports its counters when its transaction ends, at most
	// once a second: close the pool so every backend has reported.
	g.db.Close()
	admin := newGrouped(t, dbURL, 1)
	var after int64
	time.Sleep(1100 * time.Millisecond)
	if err := admin.db.Pool().QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("Postgres counted %d deadlocks", after-before)
	}
	if got := testenv.Metric(t, g.reg, "helpdeskflow_group_commit_replays_total"); got != 0 {
		t.Errorf("%v transactions ran again alone", got)
	}
}

// groupCrashEnv makes TestGroupCommit_KillMidGroup's test binary the child
// that dies with SIGKILL in the middle of a group.
const groupCrashEnv = "HDF_TEST_GROUP_CRASH_DB"

// TestGroupCommit_KillMidGroup: a process killed (SIGKILL) while a group
// is in flight, after its members' customer reservations were sent and
// before its commit, leaves nothing of the group behind; the same
// commands then succeed.
func TestGroupCommit_KillMidGroup(t *testing.T) {
	if dbURL := os.Getenv(groupCrashEnv); dbURL != "" {
		crashMidGroup(t, dbURL)
		return
	}
	dbURL := testenv.PostgresDatabase(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupCommit_KillMidGroup$", "-test.count=1")
	cmd.Env = append(os.Environ(), groupCrashEnv+"="+dbURL)
	out, err := cmd.CombinedOutput()
	status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("the child did not die by SIGKILL: %v\n%s", err, out)
	}
	g := newGrouped(t, dbURL, 1)
	ctx := context.Background()
	var streams, emails int
	if err := g.db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM streams), (SELECT count(*) FROM customer_emails)`).Scan(&streams, &emails); err != nil {
		t.Fatal(err)
	}
	if streams != 0 || emails != 0 {
		t.Fatalf("after the crash: %d streams and %d customer emails of the killed group are stored, want none", streams, emails)
	}
	ws := uuid.MustParse(crashWorkspace)
	for i := range crashCreates {
		if _, err := g.svc.CreateTicket(ctx, ws, md, crashTicket(i)); err != nil {
			t.Errorf("create %d again: %v", i, err)
		}
	}
	checkStreams(t, g.db)
}

const (
	crashWorkspace = "6f1d7c1e-8a3c-4d55-9a5e-0c2f1b7a9d10"
	crashCreates   = 10
)

func crashTicket(i int) tickets.CreateTicket {
	cmd := validTicket()
	cmd.Customer.Email = fmt.Sprintf("crash%d@example.com", i)
	return cmd
}

// crashMidGroup is the child: ten creates and a member that kills the
// process once the round trip carrying the creates' reservations is back.
func crashMidGroup(t *testing.T, dbURL string) {
	g := newGrouped(t, dbURL, 1)
	ctx := context.Background()
	ws := uuid.MustParse(crashWorkspace)
	release := g.hold(t)
	for i := range crashCreates {
		go g.svc.CreateTicket(ctx, ws, md, crashTicket(i)) //nolint:errcheck // the process dies first
	}
	g.waitQueued(t, crashCreates)
	go g.db.TransactGrouped(ctx, "killer", func(tx *pg.Tx) error { //nolint:errcheck // the process dies first
		// Round 1 goes with the creates' first statements, round 2 with
		// their reservations: then die before the commit.
		for range 2 {
			if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
				return err
			}
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL) //nolint:errcheck // does not return
		select {}
	})
	g.waitQueued(t, crashCreates+1)
	release()
	select {}
}

// TestCommands_RoundTrips: a create (for a new or an existing customer)
// costs two round trips to Postgres, the rule set's version check riding
// with the customer's reservation and the appends with the commit; an
// update or a message costs two in its transaction (the rules ride with
// the ticket's lock and load) and one read of the customer after.
func TestCommands_RoundTrips(t *testing.T) {
	store, counter := testenv.CountingStore(t, "FROM events")
	svc := tickets.New(postgres.Tickets(store))
	ctx := context.Background()
	ws := uuid.New()
	create := func(email string) helpdeskflow.Ticket {
		cmd := validTicket()
		cmd.Customer.Email = email
		tk, err := svc.CreateTicket(ctx, ws, md, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	// Warm up: every statement gets prepared once.
	tk := create("warm@example.com")
	create("warm2@example.com")
	if _, err := svc.AddMessage(ctx, ws, md, tk.ID, nil, tickets.AddMessage{Body: "warm"}, true); err != nil {
		t.Fatal(err)
	}
	high := helpdeskflow.PriorityHigh
	if _, err := svc.UpdateTicket(ctx, ws, md, tk.ID, nil, tickets.UpdateTicket{Priority: &high}, true); err != nil {
		t.Fatal(err)
	}
	low := helpdeskflow.PriorityLow
	for _, c := range []struct {
		name string
		do   func()
		want int64
	}{
		{"create for a new customer", func() { create("new@example.com") }, 2},
		{"create for an existing customer", func() { create("warm@example.com") }, 2},
		{"message", func() {
			if _, err := svc.AddMessage(ctx, ws, md, tk.ID, nil, tickets.AddMessage{Body: "hi"}, true); err != nil {
				t.Fatal(err)
			}
		}, 3},
		{"update", func() {
			if _, err := svc.UpdateTicket(ctx, ws, md, tk.ID, nil, tickets.UpdateTicket{Priority: &low}, true); err != nil {
				t.Fatal(err)
			}
		}, 3},
	} {
		counter.Reset()
		c.do()
		if got := counter.RoundTrips(); got != c.want {
			t.Errorf("%s: %d round trips, want %d", c.name, got, c.want)
		}
	}
}
