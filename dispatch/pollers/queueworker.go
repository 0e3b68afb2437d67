package pollers

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
)

// queueWorker is the machinery that DeliveryWorker and JobWorker share: it
// polls a leased queue in Postgres for due items of type C, runs them on
// goroutines of its own, and writes the results (R) back in batches. It
// keeps the runs in flight per key (a webhook, a connection) so that no
// more than perKey of one key run at once, and it may claim items ahead
// of its free run slots (prefetch), so that one claim feeds many runs.
//
// A run's slot is free as soon as the run returns; its result is written
// by the recorder, in a batch, a moment later. Until then the item is
// still leased in the queue (not due, so no claim takes it again), which
// is what keeps a queue's own ordering rules (a webhook stream's next
// delivery is claimable only once the previous one is written) true.
// What a claim, a run and a write are is the user's: see queueConfig.
type queueWorker[C, R any] struct {
	cfg queueConfig[C, R]

	mu      sync.Mutex
	keys    map[uuid.UUID]*keyState[C] // keys with items held, and fast keys
	waiting int                        // items claimed and not started
	running int                        // runs in flight
	stopped bool                       // no more runs start
	// done wakes the poll loop when a run has ended: there is room again.
	done chan struct{}
	wg   sync.WaitGroup
	// finished carries results to the recorder, which writes them in
	// batches and then calls ended for each.
	finished chan finishedRun[C, R]
}

// keyState is what a queueWorker holds of one key.
type keyState[C any] struct {
	queue   []claimed[C] // claimed, not started, in claim order
	running int
	// fast: the key's last run took less than fastRun, so items of it may
	// be claimed ahead of its free slots.
	fast bool
}

// claimed is an item and when its claim returned.
type claimed[C any] struct {
	item C
	at   time.Time
}

// queueConfig is what a queueWorker is told by its user. All fields but
// started, ended, chores and the prefetch fields are required.
type queueConfig[C, R any] struct {
	// concurrency bounds the runs in flight in this worker; perKey bounds
	// the runs in flight of one key.
	concurrency, perKey int
	// prefetch is how many items the worker may hold claimed beyond its
	// concurrency (0: none; claims take only what free slots can run),
	// perKeyPrefetch how many of them of one key, and only of a key whose
	// last run in this worker took less than fastRun, so that a slow or
	// dead key holds no more than perKey items (a key that turns slow
	// gives back, released, what it holds beyond that). An item that has waited
	// half the lease for a slot is released, not run (release is required
	// with prefetch), and so are the items waiting when the worker stops.
	prefetch, perKeyPrefetch int
	fastRun                  time.Duration
	release                  func(c C) R
	// lease is how long a claim leases its items; a claim gets half of it
	// to commit.
	lease time.Duration
	// pollInterval is how often the queue is read when idle.
	pollInterval time.Duration
	// claim leases up to limit due items: at most room[k] of a key k in
	// room (none when room[k] ≤ 0) and perKey of any other key (the map is
	// claim's own). Its ctx is not cancelled by the worker's stop, so a
	// claim is never abandoned between leasing and returning.
	claim func(ctx context.Context, limit, perKey int, room map[uuid.UUID]int) ([]C, error)
	// claimFailed is told of a failed claim, unless the worker is
	// stopping; the next poll claims again.
	claimFailed func(err error)
	// key is the key an item counts against (its webhook, its connection).
	key func(C) uuid.UUID
	// started, when set, is called for each item before its run starts;
	// ended, when set, after its result has been written.
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
type finishedRun[C, R any] struct {
	item   C
	result R
	ran    bool // ended is called for it
}

func newQueueWorker[C, R any](cfg queueConfig[C, R]) *queueWorker[C, R] {
	return &queueWorker[C, R]{cfg: cfg, keys: map[uuid.UUID]*keyState[C]{}, done: make(chan struct{}, 1),
		finished: make(chan finishedRun[C, R], cfg.concurrency+cfg.prefetch)}
}

// hold is the most items the worker holds, running or waiting.
func (q *queueWorker[C, R]) hold() int { return q.cfg.concurrency + q.cfg.prefetch }

// serve claims and runs items until ctx ends, then releases the items
// still waiting and waits for the runs in flight and the writing of their
// results.
func (q *queueWorker[C, R]) serve(ctx context.Context) {
	recorderDone := make(chan struct{})
	go func() { q.record(); close(recorderDone) }()
	defer func() {
		q.stop()
		q.wg.Wait()
		close(q.finished)
		<-recorderDone
	}()
	poll := time.NewTicker(q.cfg.pollInterval)
	defer poll.Stop()
	lastChore := make([]time.Time, len(q.cfg.chores))
	for {
		full := q.claim(ctx)
		for i, c := range q.cfg.chores {
			if time.Since(lastChore[i]) > c.every {
				lastChore[i] = time.Now()
				c.do(ctx)
			}
		}
		if full {
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

// stop lets no more runs start and hands the waiting items to the
// recorder as released.
func (q *queueWorker[C, R]) stop() {
	q.mu.Lock()
	q.stopped = true
	var left []C
	for key, ks := range q.keys {
		for _, c := range ks.queue {
			left = append(left, c.item)
		}
		q.waiting -= len(ks.queue)
		ks.queue = nil
		q.forget(key, ks)
	}
	q.mu.Unlock()
	for _, c := range left {
		q.finished <- finishedRun[C, R]{item: c, result: q.cfg.release(c)}
	}
}

// claim leases what this worker has room for and starts the runs that
// have free slots. It claims only when its room is at least half of what
// it may hold or nothing waits for a slot, so that claims come in batches;
// it returns whether the claim took all it asked for.
func (q *queueWorker[C, R]) claim(ctx context.Context) (full bool) {
	q.mu.Lock()
	room := q.hold() - q.waiting - q.running
	if room <= 0 || ctx.Err() != nil || (q.waiting > 0 && room < q.hold()/2) {
		q.mu.Unlock()
		return false
	}
	keyRoom := make(map[uuid.UUID]int, len(q.keys))
	for key, ks := range q.keys {
		keyRoom[key] = q.keyHold(ks) - len(ks.queue) - ks.running
	}
	q.mu.Unlock()
	// The claim commits its leases in the statement that returns them: it
	// must not be abandoned half-way by shutdown, or the leased items would
	// wait out the lease.
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.lease/2)
	items, err := q.cfg.claim(claimCtx, room, q.cfg.perKey, keyRoom)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			q.cfg.claimFailed(err)
		}
		return false
	}
	now := time.Now()
	runCtx := ctx
	if !q.cfg.cancelRunsOnStop {
		runCtx = context.WithoutCancel(ctx)
	}
	q.mu.Lock()
	for _, c := range items {
		key := q.cfg.key(c)
		ks := q.keys[key]
		if ks == nil {
			ks = &keyState[C]{}
			q.keys[key] = ks
		}
		ks.queue = append(ks.queue, claimed[C]{item: c, at: now})
		q.waiting++
	}
	var starts []claimed[C]
	for _, ks := range q.keys {
		for q.running < q.cfg.concurrency {
			c, ok := q.next(ks)
			if !ok {
				break
			}
			starts = append(starts, c)
		}
	}
	q.mu.Unlock()
	for _, c := range starts {
		q.wg.Add(1)
		go q.runFrom(runCtx, c)
	}
	return len(items) > 0 && len(items) == room
}

// keyHold is the most items of a key the worker holds.
func (q *queueWorker[C, R]) keyHold(ks *keyState[C]) int {
	if ks.fast {
		return q.cfg.perKey + q.cfg.perKeyPrefetch
	}
	return q.cfg.perKey
}

// next takes ks's first waiting item for a run, if it has one and a free
// slot, and counts the run. The caller holds q.mu.
func (q *queueWorker[C, R]) next(ks *keyState[C]) (claimed[C], bool) {
	if q.stopped || len(ks.queue) == 0 || ks.running >= q.cfg.perKey || q.running >= q.cfg.concurrency {
		return claimed[C]{}, false
	}
	c := ks.queue[0]
	ks.queue = ks.queue[1:]
	if len(ks.queue) == 0 {
		ks.queue = nil
	}
	q.waiting--
	ks.running++
	q.running++
	return c, true
}

// forget drops a key the worker holds nothing of, unless it is fast (its
// state is its prefetch). The caller holds q.mu.
func (q *queueWorker[C, R]) forget(key uuid.UUID, ks *keyState[C]) {
	if ks.running == 0 && len(ks.queue) == 0 && !ks.fast {
		delete(q.keys, key)
	}
}

// runFrom runs c, then, while there are any, the waiting items that the
// slot it frees may run: its key's first, else any key's.
func (q *queueWorker[C, R]) runFrom(ctx context.Context, c claimed[C]) {
	defer q.wg.Done()
	for {
		key := q.cfg.key(c.item)
		started := time.Now()
		var f finishedRun[C, R]
		if q.cfg.prefetch > 0 && started.Sub(c.at) > q.cfg.lease/2 {
			// It waited too long: its lease may run out in the attempt.
			f = finishedRun[C, R]{item: c.item, result: q.cfg.release(c.item)}
		} else {
			if q.cfg.started != nil {
				q.cfg.started(c.item)
			}
			f = finishedRun[C, R]{item: c.item, result: q.cfg.run(ctx, c.item), ran: true}
		}
		took := time.Since(started)
		q.finished <- f

		q.mu.Lock()
		ks := q.keys[key]
		ks.running--
		q.running--
		var giveBack []claimed[C]
		if f.ran {
			wasFast := ks.fast
			ks.fast = took < q.cfg.fastRun
			if keep := q.cfg.perKey - ks.running; wasFast && !ks.fast && len(ks.queue) > keep {
				// The key turned slow: what it holds beyond a run per
				// slot goes back to the queue, for its slots to claim
				// as they free up.
				giveBack = ks.queue[keep:]
				ks.queue = ks.queue[:keep]
				q.waiting -= len(giveBack)
			}
		}
		next, ok := q.next(ks)
		if !ok {
			q.forget(key, ks)
			for _, other := range q.keys {
				if next, ok = q.next(other); ok {
					break
				}
			}
		}
		q.mu.Unlock()
		for _, c := range giveBack {
			q.finished <- finishedRun[C, R]{item: c.item, result: q.cfg.release(c.item)}
		}
		select {
		case q.done <- struct{}{}:
		default:
		}
		if !ok {
			return
		}
		c = next
	}
}

// record writes results in batches: whatever arrived while the previous
// batch was written, up to what the worker holds at a time.
func (q *queueWorker[C, R]) record() {
	for first := range q.finished {
		batch := []finishedRun[C, R]{first}
	more:
		for len(batch) < q.hold() {
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
		if q.cfg.ended != nil {
			for _, f := range batch {
				if f.ran {
					q.cfg.ended(f.item)
				}
			}
		}
	}
}

// exponentialBackoff is the wait after failed attempt n (1-based):
// base × factor^(n−1), at most limit.
func exponentialBackoff(base time.Duration, factor float64, n int, limit time.Duration) time.Duration {
	d := float64(base) * math.Pow(factor, float64(n-1))
	return time.Duration(min(d, float64(limit)))
}
