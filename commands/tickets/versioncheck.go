package tickets

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// versionCheckTimeout bounds one shared version check: it runs for every
// read waiting on it, so no single request's context may cancel it.
const versionCheckTimeout = 5 * time.Second

// versionChecks shares the version checks of concurrent reads: a read adds
// its stream ids to the batch that has not been sent yet and waits for it;
// at most one batch is in flight, and the batch that gathered while it was
// is sent as soon as it returns. So every check a read sees was started
// after the read arrived (it reflects every write acknowledged before),
// and N concurrent reads cost one statement, not N.
type versionChecks struct {
	query func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error)
	sent  atomic.Int64 // statements sent, for the metrics and tests
	// took observes each check's duration, send to answer.
	took prometheus.Histogram

	mu       sync.Mutex
	pending  *versionBatch // gathering: not sent yet
	inFlight bool
}

// versionBatch is one shared check: the ids of its reads and, once done is
// closed, their versions (streams that do not exist are absent) or err.
type versionBatch struct {
	ids      []uuid.UUID
	seen     map[uuid.UUID]struct{}
	waiting  int // reads that joined it before it was sent
	done     chan struct{}
	versions map[uuid.UUID]int64
	err      error
}

// versions returns the current versions of ids, read by a check started
// after the call. It returns ctx's error when ctx ends first and EInternal
// when the check failed.
func (v *versionChecks) versions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	v.mu.Lock()
	b := v.pending
	if b == nil {
		b = &versionBatch{seen: map[uuid.UUID]struct{}{}, done: make(chan struct{})}
		v.pending = b
	}
	for _, id := range ids {
		if _, ok := b.seen[id]; !ok {
			b.seen[id] = struct{}{}
			b.ids = append(b.ids, id)
		}
	}
	send := !v.inFlight
	if send {
		v.inFlight, v.pending = true, nil
	} else {
		b.waiting++
	}
	v.mu.Unlock()
	if send {
		go v.send(b)
	}
	select {
	case <-b.done:
		return b.versions, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waiting is how many reads wait for the batch not sent yet.
func (v *versionChecks) waiting() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending == nil {
		return 0
	}
	return v.pending.waiting
}

// send runs batch b and then every batch that gathered meanwhile, one at a
// time, until none is waiting.
func (v *versionChecks) send(b *versionBatch) {
	for b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), versionCheckTimeout)
		v.sent.Add(1)
		start := time.Now()
		b.versions, b.err = v.query(ctx, b.ids)
		v.took.Observe(time.Since(start).Seconds())
		cancel()
		close(b.done)
		v.mu.Lock()
		b = v.pending
		v.pending = nil
		v.inFlight = b != nil
		v.mu.Unlock()
	}
}
