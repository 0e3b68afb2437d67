package pollers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// jobWorker starts a job worker with runners until the test or stop ends
// it. cfg's Store and Runners are set here; its zero timings get fast
// test values.
func (f *webhookFixture) jobWorker(runners map[string]pollers.JobRunner, cfg pollers.JobWorkerConfig) (stop func()) {
	f.t.Helper()
	cfg.Store, cfg.Runners = f.store, runners
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := pollers.NewJobWorker(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return testenv.Run(f.t, w.Run)
}

// drain waits until no job is pending.
func (f *webhookFixture) drain() {
	f.t.Helper()
	testenv.Eventually(f.t, 20*time.Second, func() error {
		stats, err := f.store.JobQueue(f.ctx, time.Now())
		if err != nil {
			return err
		}
		for _, st := range stats {
			if st.Pending > 0 {
				return fmt.Errorf("%d %s jobs pending", st.Pending, st.Kind)
			}
		}
		return nil
	})
}

// queue returns the job queue of one connection.
func (f *webhookFixture) queue(connection uuid.UUID) helpdeskflow.IntegrationQueue {
	f.t.Helper()
	qs, err := f.store.IntegrationQueues(f.ctx, f.workspace, []uuid.UUID{connection}, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return qs[connection]
}

// enqueue queues one test job per event for connection, due at at.
func (f *webhookFixture) enqueue(connection uuid.UUID, at time.Time, n int) []uuid.UUID {
	f.t.Helper()
	var jobs []helpdeskflow.IntegrationJob
	var ids []uuid.UUID
	for range n {
		j := helpdeskflow.IntegrationJob{ID: uuid.New(), WorkspaceID: f.workspace, ConnectionID: connection, Kind: testKind,
			EventID: uuid.New(), Payload: []byte(`{"n": 1}`), CreatedAt: at}
		jobs, ids = append(jobs, j), append(ids, j.ID)
	}
	if err := f.store.EnqueueJobs(f.ctx, jobs); err != nil {
		f.t.Fatal(err)
	}
	return ids
}

const testKind = "test"

// runnerFunc is a JobRunner.
type runnerFunc func(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult

func (f runnerFunc) RunJob(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
	return f(ctx, j)
}

// hangingRunner never finishes the jobs of one connection until released
// (or the worker stops), and finishes the others at once; it counts the
// runs in flight per connection and the most it ever saw.
type hangingRunner struct {
	hung    uuid.UUID
	release chan struct{}

	mu       sync.Mutex
	inFlight map[uuid.UUID]int
	most     map[uuid.UUID]int
	done     map[uuid.UUID]int
}

func newHangingRunner(hung uuid.UUID) *hangingRunner {
	return &hangingRunner{hung: hung, release: make(chan struct{}), inFlight: map[uuid.UUID]int{}, most: map[uuid.UUID]int{}, done: map[uuid.UUID]int{}}
}

func (r *hangingRunner) RunJob(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
	r.mu.Lock()
	r.inFlight[j.ConnectionID]++
	r.most[j.ConnectionID] = max(r.most[j.ConnectionID], r.inFlight[j.ConnectionID])
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight[j.ConnectionID]--
		r.done[j.ConnectionID]++
		r.mu.Unlock()
	}()
	if j.ConnectionID == r.hung {
		select {
		case <-r.release:
		case <-ctx.Done():
			return helpdeskflow.JobResult{Err: ctx.Err(), ErrorClass: "temporary", Retry: true}
		}
	}
	return helpdeskflow.JobResult{Outcome: "ok"}
}

func (r *hangingRunner) state(connection uuid.UUID) (inFlight, most, done int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight[connection], r.most[connection], r.done[connection]
}

func TestJobs_EnqueueIsIdempotent(t *testing.T) {
	f := newWebhookFixture(t)
	conn, other, event := uuid.New(), uuid.New(), uuid.New()
	job := func(connection uuid.UUID) helpdeskflow.IntegrationJob {
		return helpdeskflow.IntegrationJob{ID: uuid.New(), WorkspaceID: f.workspace, ConnectionID: connection, Kind: testKind, EventID: event,
			Payload: []byte(`{}`), CreatedAt: time.Now()}
	}
	// The same event and kind for the same connection, queued again (a
	// Kafka redelivery), is one job; for another connection it is another.
	for _, jobs := range [][]helpdeskflow.IntegrationJob{{job(conn)}, {job(conn), job(other)}, {job(other)}} {
		if err := f.store.EnqueueJobs(f.ctx, jobs); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := f.store.ClaimJobs(f.ctx, time.Now(), 10, 10, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 2 || claimed[0].ConnectionID == claimed[1].ConnectionID {
		t.Fatalf("claimed %+v", claimed)
	}
	for _, j := range claimed {
		if j.Attempt != 1 || j.EventID != event || j.Kind != testKind || string(j.Payload) != `{}` {
			t.Errorf("job %+v", j)
		}
	}
}

// TestJobs_ClaimSkipsAHungConnectionsBacklog: a connection whose slots
// are taken has hundreds of jobs due before anyone else's; the claim
// still finds the others' jobs, and gives the busy connection nothing.
func TestJobs_ClaimSkipsAHungConnectionsBacklog(t *testing.T) {
	f := newWebhookFixture(t)
	hung, other, third := uuid.New(), uuid.New(), uuid.New()
	t0 := time.Now().Add(-time.Hour)
	f.enqueue(hung, t0, 500)
	f.enqueue(other, t0.Add(time.Minute), 3)
	f.enqueue(third, t0.Add(2*time.Minute), 1)
	now := time.Now()

	claimed, err := f.store.ClaimJobs(f.ctx, now, 10, 2, map[uuid.UUID]int{hung: 2}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	per := map[uuid.UUID]int{}
	for _, j := range claimed {
		per[j.ConnectionID]++
	}
	if per[hung] != 0 || per[other] != 2 || per[third] != 1 {
		t.Fatalf("claimed per connection: hung %d, other %d, third %d", per[hung], per[other], per[third])
	}
	// One slot left of the hung connection's two: it gets one job more.
	claimed, err = f.store.ClaimJobs(f.ctx, now, 10, 2, map[uuid.UUID]int{hung: 1, other: 2, third: 1}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ConnectionID != hung {
		t.Fatalf("claimed %+v", claimed)
	}
}

// TestJobs_LeaseExpiresAfterACrashedWorker: a job whose worker died is
// claimed again once its lease ran out, as a new attempt; the dead
// worker's late write does not overwrite the new run's.
func TestJobs_LeaseExpiresAfterACrashedWorker(t *testing.T) {
	f := newWebhookFixture(t)
	conn := uuid.New()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	f.enqueue(conn, t0, 1)
	first, err := f.store.ClaimJobs(f.ctx, t0, 10, 2, nil, time.Minute)
	if err != nil || len(first) != 1 || first[0].Attempt != 1 {
		t.Fatalf("first claim: %+v %v", first, err)
	}
	if again, _ := f.store.ClaimJobs(f.ctx, t0.Add(59*time.Second), 10, 2, nil, time.Minute); len(again) != 0 {
		t.Fatalf("a leased job was claimed again within its lease: %+v", again)
	}
	second, err := f.store.ClaimJobs(f.ctx, t0.Add(61*time.Second), 10, 2, nil, time.Minute)
	if err != nil || len(second) != 1 || second[0].ID != first[0].ID || second[0].Attempt != 2 {
		t.Fatalf("claim after the lease: %+v %v", second, err)
	}
	// The first worker comes back and reports success: too late.
	if err := f.store.FinishJobs(f.ctx, []queues.FinishedJob{{ID: first[0].ID, Attempt: 1, Status: helpdeskflow.JobDone, Outcome: "ok", At: t0}}); err != nil {
		t.Fatal(err)
	}
	if q := f.queue(conn); q.Pending != 1 {
		t.Fatalf("a stale finish ended the job: %+v", q)
	}
	if err := f.store.FinishJobs(f.ctx, []queues.FinishedJob{{ID: first[0].ID, Attempt: 2, Status: helpdeskflow.JobDone, Outcome: "ok", At: t0}}); err != nil {
		t.Fatal(err)
	}
	if q := f.queue(conn); q.Pending != 0 || q.LastFailure != nil {
		t.Fatalf("after the second run: %+v", q)
	}

	// A worker picks up what a crashed one had leased, once the lease ends.
	f.enqueue(conn, time.Now(), 1)
	if crashed, err := f.store.ClaimJobs(f.ctx, time.Now(), 10, 2, nil, 300*time.Millisecond); err != nil || len(crashed) != 1 {
		t.Fatalf("claim by the worker that crashes: %+v %v", crashed, err)
	}
	var attempts []int
	var mu sync.Mutex
	f.jobWorker(map[string]pollers.JobRunner{testKind: runnerFunc(func(_ context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
		mu.Lock()
		attempts = append(attempts, j.Attempt)
		mu.Unlock()
		return helpdeskflow.JobResult{Outcome: "ok"}
	})}, pollers.JobWorkerConfig{})
	f.drain()
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 1 || attempts[0] != 2 {
		t.Fatalf("runs by the second worker: attempts %v", attempts)
	}
}

// TestJobWorker_HungConnectionHoldsOnlyItsOwnSlots: every job of one
// connection hangs; at most PerConnection of them run at once, and the
// other connection's jobs all finish meanwhile.
func TestJobWorker_HungConnectionHoldsOnlyItsOwnSlots(t *testing.T) {
	f := newWebhookFixture(t)
	hung, other := uuid.New(), uuid.New()
	f.enqueue(hung, time.Now().Add(-time.Minute), 20)
	f.enqueue(other, time.Now(), 10)
	r := newHangingRunner(hung)
	f.jobWorker(map[string]pollers.JobRunner{testKind: r}, pollers.JobWorkerConfig{PerConnection: 2, Concurrency: 4})
	// The runner counts a job done before the worker records it: wait
	// for the queue to show it too.
	testenv.Eventually(t, 20*time.Second, func() error {
		if _, _, done := r.state(other); done != 10 {
			return fmt.Errorf("%d of the other connection's jobs done", done)
		}
		if q := f.queue(other); q.Pending != 0 {
			return fmt.Errorf("other connection's queue: %+v", q)
		}
		return nil
	})
	if inFlight, most, done := r.state(hung); inFlight != 2 || most != 2 || done != 0 {
		t.Fatalf("hung connection: %d in flight (most %d), %d done; want 2, 2, 0", inFlight, most, done)
	}
	if q := f.queue(hung); q.Pending != 20 || q.OldestPendingAt == nil {
		t.Errorf("hung connection's queue: %+v", q)
	}
	close(r.release)
	f.drain()
	if _, most, done := r.state(hung); most != 2 || done != 20 {
		t.Fatalf("after the release: most %d in flight, %d done", most, done)
	}
}

// TestJobWorker_RetriesWithBackoffThenFails: a temporary failure is run
// again until MaxAttempts, then the job fails for good and shows as such
// in the connection's queue; a permanent failure is not retried.
func TestJobWorker_RetriesWithBackoffThenFails(t *testing.T) {
	f := newWebhookFixture(t)
	flaky, broken := uuid.New(), uuid.New()
	var mu sync.Mutex
	runs := map[uuid.UUID][]int{}
	reg := prometheus.NewRegistry()
	f.jobWorker(map[string]pollers.JobRunner{testKind: runnerFunc(func(_ context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
		mu.Lock()
		runs[j.ConnectionID] = append(runs[j.ConnectionID], j.Attempt)
		mu.Unlock()
		if j.ConnectionID == broken {
			return helpdeskflow.JobResult{Err: errors.New("the provider refused the token"), ErrorClass: "token_expired"}
		}
		return helpdeskflow.JobResult{Err: errors.New("HTTP 503"), ErrorClass: "temporary", Retry: true}
	})}, pollers.JobWorkerConfig{MaxAttempts: 3, Registerer: reg})
	f.enqueue(flaky, time.Now(), 1)
	f.enqueue(broken, time.Now(), 1)
	f.drain()
	mu.Lock()
	if fmt.Sprint(runs[flaky]) != "[1 2 3]" || fmt.Sprint(runs[broken]) != "[1]" {
		t.Errorf("runs: flaky %v, broken %v", runs[flaky], runs[broken])
	}
	mu.Unlock()
	for conn, class := range map[uuid.UUID]string{flaky: "temporary", broken: "token_expired"} {
		q := f.queue(conn)
		if q.Pending != 0 || q.FailedLast24h != 1 || q.LastFailure == nil || !q.LastFailure.Final || q.LastFailure.ErrorClass != class || q.LastFailure.Kind != testKind {
			t.Errorf("queue of %s: %+v, last failure %+v", class, q, q.LastFailure)
		}
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_integration_jobs_total", "kind", testKind, "outcome", "retried"); got != 2 {
		t.Errorf("retried runs: %v", got)
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_integration_jobs_total", "kind", testKind, "outcome", "failed"); got != 2 {
		t.Errorf("failed jobs: %v", got)
	}
}

// TestJobWorker_RetryAfterIsWaitedOut: a rate limit's Retry-After longer
// than the backoff sets the next run's time.
func TestJobWorker_RetryAfterIsWaitedOut(t *testing.T) {
	f := newWebhookFixture(t)
	c := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
	conn := uuid.New()
	f.enqueue(conn, c.Now(), 1)
	stop := f.jobWorker(map[string]pollers.JobRunner{testKind: runnerFunc(func(context.Context, helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
		return helpdeskflow.JobResult{Err: errors.New("HTTP 429"), ErrorClass: "rate_limited", Retry: true, RetryAfter: time.Hour}
	})}, pollers.JobWorkerConfig{Now: c.Now, Backoff: time.Second})
	testenv.Eventually(t, 20*time.Second, func() error {
		if q := f.queue(conn); q.LastFailure == nil {
			return errors.New("no failure recorded yet")
		}
		return nil
	})
	stop()
	if q := f.queue(conn); q.Pending != 1 || q.LastFailure.Final || q.LastFailure.ErrorClass != "rate_limited" {
		t.Fatalf("queue: %+v, last failure %+v", q, q.LastFailure)
	}
	if early, _ := f.store.ClaimJobs(f.ctx, c.Now().Add(59*time.Minute), 10, 2, nil, time.Minute); len(early) != 0 {
		t.Fatalf("claimed before the Retry-After: %+v", early)
	}
	if due, _ := f.store.ClaimJobs(f.ctx, c.Now().Add(61*time.Minute), 10, 2, nil, time.Minute); len(due) != 1 || due[0].Attempt != 2 {
		t.Fatalf("claimed after the Retry-After: %+v", due)
	}
}

// TestJobWorker_StopReleasesRunningJobs: a worker that stops cancels its
// runs and gives their jobs back, without counting the cut-short run.
func TestJobWorker_StopReleasesRunningJobs(t *testing.T) {
	f := newWebhookFixture(t)
	hung := uuid.New()
	f.enqueue(hung, time.Now(), 1)
	r := newHangingRunner(hung)
	stop := f.jobWorker(map[string]pollers.JobRunner{testKind: r}, pollers.JobWorkerConfig{})
	testenv.Eventually(t, 20*time.Second, func() error {
		if inFlight, _, _ := r.state(hung); inFlight != 1 {
			return errors.New("not running yet")
		}
		return nil
	})
	stop()
	if q := f.queue(hung); q.Pending != 1 || q.LastFailure != nil {
		t.Fatalf("queue after the stop: %+v", q)
	}
	again, err := f.store.ClaimJobs(f.ctx, time.Now(), 10, 2, nil, time.Minute)
	if err != nil || len(again) != 1 || again[0].Attempt != 1 {
		t.Fatalf("claim after the stop: %+v %v", again, err)
	}
}
