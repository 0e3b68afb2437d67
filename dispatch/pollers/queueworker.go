package pollers

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
)

// queueWorker is the machinery that DeliveryWorker and JobWorker share: it
// polls a leased queue in Postgres for due items of type C, runs each on
// its own goroutine, and writes the results (R) back in batches. It keeps
// the runs in flight per key (a webhook, a connection) so that a claim
// takes no more than the worker has room for and no more of one key than
// perKey. What a claim, a run and a write are is the user's: see
// queueConfig.
type queueWorker[C, R any] struct {
	cfg queueConfig[C, R]

	mu       sync.Mutex
	inFlight map[uuid.UUID]int // runs in flight per key
	total    int               // runs in flight
	// done wakes the poll loop when a run has ended: there is room again.
	done chan struct{}
	wg   sync.WaitGroup
	// finished carries results to the recorder, which writes them in
	// batches and then closes each one's recorded channel.
	finished chan finishedRun[R]
}

// queueConfig is what a queueWorker is told by its user. All fields but
// started, ended and chores are required.
type queueConfig[C, R any] struct {
	// concurrency bounds the runs in flight in this worker and the results
	// in one write; perKey bounds the runs in flight of one key.
	concurrency, perKey int
	// lease is how long a claim leases its items; a claim gets half of it
	// to commit.
	lease time.Duration
	// pollInterval is how often the queue is read when idle.
	pollInterval time.Duration
	// claim leases up to limit due items, none of a key that already has
	// perKey runs in inFlight (this worker's runs in flight per key; the
	// map is claim's own). Its ctx is not cancelled by the worker's stop,
	// so a claim is never abandoned between leasing and returning.
	claim func(ctx context.Context, limit, perKey int, inFlight map[uuid.UUID]int) ([]C, error)
	// claimFailed is told of a failed claim, unless the worker is
	// stopping; the next poll claims again.
	claimFailed func(err error)
	// key is the key an item counts against (its webhook, its connection).
	key func(C) uuid.UUID
	// started, when set, is called for each claimed item before its run
	// starts; ended, when set, after its result has been written.
	started, ended func(C)
	// run runs one item and returns what finish writes. Its ctx ends when
	// the worker stops only with cancelRunsOnStop; otherwise the worker
	// waits for the run to end on its own.
	run              func(ctx context.Context, c C) R
	cancelRunsOnStop bool
	// finish writes a batch of results, in one store write, and deals with
	// a failure itself (the leases run out and the items are run again).
	finish func(rs []R)
	// chores run in the poll loop, in order, each at most once per its
	// every (and at the first poll), with the worker's ctx.
	chores []chore
}

// chore is a periodic task of a queueWorker's poll loop: queue gauges,
// purging old rows.
type chore struct {
	every time.Duration
	do    func(ctx context.Context)
}

// finishedRun is one run's result on its way to the recorder.
type finishedRun[R any] struct {
	result   R
	recorded chan struct{}
}

func newQueueWorker[C, R any](cfg queueConfig[C, R]) *queueWorker[C, R] {
	return &queueWorker[C, R]{cfg: cfg, inFlight: map[uuid.UUID]int{}, done: make(chan struct{}, 1),
		finished: make(chan finishedRun[R], cfg.concurrency)}
}

// serve claims and runs items until ctx ends, then waits for the runs in
// flight and the writing of their results.
func (q *queueWorker[C, R]) serve(ctx context.Context) {
	recorderDone := make(chan struct{})
	go func() { q.record(); close(recorderDone) }()
	defer func() { q.wg.Wait(); close(q.finished); <-recorderDone }()
	poll := time.NewTicker(q.cfg.pollInterval)
	defer poll.Stop()
	lastChore := make([]time.Time, len(q.cfg.chores))
	for {
		claimed := q.claim(ctx)
		for i, c := range q.cfg.chores {
			if time.Since(lastChore[i]) > c.every {
				lastChore[i] = time.Now()
				c.do(ctx)
			}
		}
		if claimed > 0 {
			continue // there may be more due right away
		}
		select {
		case <-ctx.Done():
			return
		case <-q.done:
		case <-poll.C:
		}
	}
}

// claim leases what this worker has room for and starts the runs; it
// returns how many it started.
func (q *queueWorker[C, R]) claim(ctx context.Context) int {
	q.mu.Lock()
	room := q.cfg.concurrency - q.total
	inFlight := make(map[uuid.UUID]int, len(q.inFlight))
	for key, n := range q.inFlight {
		inFlight[key] = n
	}
	q.mu.Unlock()
	if room <= 0 || ctx.Err() != nil {
		return 0
	}
	// The claim commits its leases in the statement that returns them: it
	// must not be abandoned half-way by shutdown, or the leased items would
	// wait out the lease.
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.lease/2)
	items, err := q.cfg.claim(claimCtx, room, q.cfg.perKey, inFlight)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			q.cfg.claimFailed(err)
		}
		return 0
	}
	runCtx := ctx
	if !q.cfg.cancelRunsOnStop {
		runCtx = context.WithoutCancel(ctx)
	}
	for _, c := range items {
		key := q.cfg.key(c)
		q.mu.Lock()
		q.inFlight[key]++
		q.total++
		q.mu.Unlock()
		if q.cfg.started != nil {
			q.cfg.started(c)
		}
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			f := finishedRun[R]{result: q.cfg.run(runCtx, c), recorded: make(chan struct{})}
			q.finished <- f
			<-f.recorded
			if q.cfg.ended != nil {
				q.cfg.ended(c)
			}
			q.mu.Lock()
			if q.inFlight[key]--; q.inFlight[key] <= 0 {
				delete(q.inFlight, key)
			}
			q.total--
			q.mu.Unlock()
			select {
			case q.done <- struct{}{}:
			default:
			}
		}()
	}
	return len(items)
}

// record writes results in batches: whatever arrived while the previous
// batch was written, up to concurrency at a time.
func (q *queueWorker[C, R]) record() {
	for first := range q.finished {
		batch := []finishedRun[R]{first}
	more:
		for len(batch) < q.cfg.concurrency {
			select {
			case f, ok := <-q.finished:
				if !ok {
					break more
				}
				batch = append(batch, f)
			default:
				break more
			}
		}
		results := make([]R, len(batch))
		for i, f := range batch {
			results[i] = f.result
		}
		q.cfg.finish(results)
		for _, f := range batch {
			close(f.recorded)
		}
	}
}

// exponentialBackoff is the wait after failed attempt n (1-based):
// base × factor^(n−1), at most limit.
func exponentialBackoff(base time.Duration, factor float64, n int, limit time.Duration) time.Duration {
	d := float64(base) * math.Pow(factor, float64(n-1))
	return time.Duration(min(d, float64(limit)))
}
