package ratelimit

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

// Defaults of the soft-throttle settings in Config.
const (
	// DefaultSoftThrottleAfter is how long a key's denials must go on
	// before it enters soft-throttle mode.
	DefaultSoftThrottleAfter = 10 * time.Minute
	// DefaultStreakGap is the longest pause between two denials that still
	// continues a key's over-limit streak.
	DefaultStreakGap = time.Minute
	// DefaultRecovery is how long a soft-throttled key must go without a
	// denial to leave soft-throttle mode.
	DefaultRecovery = 5 * time.Minute
)

// Config holds a Limiter's settings. The zero value is usable: every zero
// (or negative) field takes its default.
type Config struct {
	// Now returns the current time. Default: time.Now. Tests pass a fake
	// clock. Times before New's call count as the time of that call, and a
	// clock that goes back is held at the latest time a key has seen.
	Now func() time.Time
	// SoftThrottleAfter is how long a key must keep being denied (denials
	// no more than StreakGap apart) before it enters soft-throttle mode.
	// Default: DefaultSoftThrottleAfter (10 minutes).
	SoftThrottleAfter time.Duration
	// StreakGap is the longest pause between two denials of a key that
	// continues its over-limit streak; after a longer pause the streak
	// starts again at the next denial. Default: DefaultStreakGap (1 minute).
	StreakGap time.Duration
	// Recovery is how long a soft-throttled key must go without any denial
	// to leave soft-throttle mode. Default: DefaultRecovery (5 minutes).
	Recovery time.Duration
	// Registerer receives helpdeskflow_rate_limited_requests_total{category}
	// and helpdeskflow_soft_throttled_keys; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SoftThrottleAfter <= 0 {
		c.SoftThrottleAfter = DefaultSoftThrottleAfter
	}
	if c.StreakGap <= 0 {
		c.StreakGap = DefaultStreakGap
	}
	if c.Recovery <= 0 {
		c.Recovery = DefaultRecovery
	}
}

// Decision is the outcome of one Limiter.Allow call, with what the API
// reports in its rate limit headers.
type Decision struct {
	// Allowed reports whether the request was admitted (and counted).
	Allowed bool
	// Limit and Window are the limit the request was checked against;
	// Window is the effective one (see Limiter.Allow).
	Limit  int
	Window time.Duration
	// Remaining is how many more requests would be admitted right now,
	// after this one; never negative.
	Remaining int
	// RetryAfter is, for a denied request, the exact time from now after
	// which a request would be admitted if no other is admitted meanwhile:
	// a request exactly RetryAfter later is admitted, one a nanosecond
	// earlier is not. It is 0 for an admitted request. HTTP's Retry-After
	// is in whole seconds: round it up, never down.
	RetryAfter time.Duration
	// Reset is the time from now until the oldest counted request stops
	// counting, which is when Remaining next increases unless the count is
	// above a lowered limit; 0 when nothing counts.
	Reset time.Duration
	// SoftThrottled reports whether the key is in soft-throttle mode after
	// this call; the caller then delays its response by the workspace's
	// RateLimitPolicy.SoftThrottleDelay.
	SoftThrottled bool
}

// Usage is a bucket's state as Limiter.Usage reports it, for
// GET /v1/rate-limits.
type Usage struct {
	// Limit and Window are the limit the usage was computed against;
	// Window is the effective one (see Limiter.Allow).
	Limit  int
	Window time.Duration
	// Used is how many admitted requests count now, the same count
	// Limiter.Allow compares with the limit.
	Used int
	// Remaining is how many requests would be admitted right now; never
	// negative.
	Remaining int
	// Reset is the time from now until the oldest counted request stops
	// counting; 0 when nothing counts.
	Reset time.Duration
}

const (
	// numShards is how many independently locked maps hold the keys; the
	// shard is picked by the top 8 bits of a hash of the key id.
	numShards = 256
	// sweepEvery is how often each shard is swept for idle keys while the
	// Limiter receives calls: one shard every sweepEvery/numShards.
	sweepEvery = time.Minute
)

// Limiter enforces rate limits per API key and category. It is safe for
// concurrent use, and there is no lock common to all keys: a call read-locks
// the one of 256 shards its key id hashes to, just for a map lookup, then
// locks that key's own mutex. A shard is write-locked only to add a key and
// during its sweep. Allow does not allocate once the key's bucket for the
// category exists.
//
// Memory is bounded by the active keys, about 320 bytes per bucket: a bucket
// in which nothing counts any more (idle for its window plus one slot) is
// dropped, and a key with no bucket left, not soft-throttled and with no
// denial streak in progress is forgotten. The sweep is lazy, with no
// goroutine to stop: while Allow is called, one shard is swept every
// 234 ms, so each is swept about once a minute.
type Limiter struct {
	cfg  Config
	base time.Time // time 0 of the buckets' slots

	shards [numShards]shard

	nextSweep   atomic.Int64  // time of the next shard sweep
	sweepCursor atomic.Uint64 // how many sweeps started

	denials       *prometheus.CounterVec
	throttledKeys prometheus.Gauge
}

type shard struct {
	mu   sync.RWMutex
	keys map[uuid.UUID]*keyState
	// Keeps two shards' mutexes off the same cache line.
	_ [64]byte
}

// keyState is one API key: its buckets, one per category, and its
// soft-throttle state, all guarded by mu. Times are nanoseconds since the
// Limiter's creation.
type keyState struct {
	mu sync.Mutex
	// dead is set when the sweep removed the key from its shard; a caller
	// that loaded it before must look the key up again.
	dead bool
	// last is the latest time a call for this key used; time never goes
	// back for a key, so its buckets only move forward.
	last    int64
	buckets []*bucket

	// streak reports whether a denial streak is in progress, from
	// streakStart to lastDenial.
	streak                  bool
	streakStart, lastDenial int64
	throttled               bool
	throttledSince          time.Time
}

// New returns a Limiter with cfg's settings (defaults for zero fields) and
// registers its metrics on cfg.Registerer when that is not nil. Its only
// error is an EInternal *helpdeskflow.Error when registration fails (for
// example a second Limiter on the same registry).
//
// Metrics: helpdeskflow_rate_limited_requests_total{category} counts denied
// requests; helpdeskflow_soft_throttled_keys is the number of keys in
// soft-throttle mode. The gauge rises when a key enters the mode and falls
// when a call for that key (Allow, Usage, SoftThrottled) or the sweep of its
// shard notices that Recovery has passed: a key that recovered and is not
// called again stays counted until the sweep, at most about a minute while
// the Limiter receives calls.
func New(cfg Config) (*Limiter, error) {
	cfg.setDefaults()
	l := &Limiter{
		cfg:  cfg,
		base: cfg.Now(),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_rate_limited_requests_total",
			Help: "Requests denied by a rate limit, by rate limit category.",
		}, []string{"category"}),
		throttledKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "helpdeskflow_soft_throttled_keys",
			Help: "API keys in soft-throttle mode (they kept exceeding their rate limits).",
		}),
	}
	for i := range l.shards {
		l.shards[i].keys = map[uuid.UUID]*keyState{}
	}
	l.nextSweep.Store(int64(sweepEvery / numShards))
	for _, category := range helpdeskflow.RateLimitCategories {
		l.denials.WithLabelValues(category) // export zeros for every category
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.denials, l.throttledKeys} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register rate limit metrics", Err: err}
			}
		}
	}
	return l, nil
}

// Allow decides whether one request of key in category is admitted under
// limit, counts it if so, and updates the key's soft-throttle state; see the
// package documentation for the algorithm and its guarantee. Each (key,
// category) is its own bucket. category is normally one of
// helpdeskflow.RateLimitCategories; any other string gets its own bucket and
// its own label value in the denial metric.
//
// limit is expected to pass RateLimit.Validate. A Window below
// helpdeskflow.MinRateLimitWindow is treated as that minimum; a Limit below 1
// denies every request, with RetryAfter equal to the window. When Window
// differs from the bucket's previous call the workspace changed its limits
// and the bucket starts empty; when only Limit differs the counts are kept
// and compared with the new limit.
//
// Every denial extends or starts the key's over-limit streak (across all its
// categories); a denial that comes SoftThrottleAfter or more after the start
// of an unbroken streak puts the key in soft-throttle mode.
func (l *Limiter) Allow(key uuid.UUID, category string, limit helpdeskflow.RateLimit) Decision {
	return l.AllowN(key, category, limit, 1)
}

// AllowN is Allow for a request that counts as n (at least 1) requests, a
// batch of n items: it is admitted, and counted n times, only when all n
// fit under limit now; otherwise nothing is counted (one denial) and
// RetryAfter is the time until n fit, or the window when n is over the
// limit itself (it never fits). The guarantee holds as for Allow: no
// window holds more than Limit admitted counts.
func (l *Limiter) AllowN(key uuid.UUID, category string, limit helpdeskflow.RateLimit, n int) Decision {
	n = max(n, 1)
	now, t := l.clock()
	l.maybeSweep(t)
	window := effectiveWindow(limit.Window)
	for {
		ks := l.loadOrCreate(key)
		ks.mu.Lock()
		if ks.dead {
			ks.mu.Unlock()
			continue
		}
		d := l.allowLocked(ks, now, t, category, limit.Limit, window, n)
		ks.mu.Unlock()
		return d
	}
}

func (l *Limiter) allowLocked(ks *keyState, now time.Time, t int64, category string, limit int, window time.Duration, cost int) Decision {
	t = ks.observe(t)
	l.recoverLocked(ks, t)
	b := ks.bucket(category)
	switch {
	case b == nil:
		b = newBucket(category, l.denials.WithLabelValues(category), window, t)
		ks.buckets = append(ks.buckets, b)
	case b.window != int64(window):
		b.reset(window, t)
	default:
		b.advance(t)
	}

	n, oldest := b.counted(t)
	d := Decision{Limit: limit, Window: window}
	if n+int64(cost) <= int64(limit) {
		b.admit(cost)
		d.Allowed = true
		d.Remaining = limit - int(n) - cost
	} else {
		b.denied.Inc()
		if cost <= limit {
			// n must fall to limit−cost, i.e. below limit−cost+1 ≥ 1.
			d.RetryAfter = b.retryAfter(t, n, oldest, int64(limit-cost+1))
		} else {
			d.RetryAfter = window
		}
		l.denyLocked(ks, now, t)
	}
	d.Reset = b.resetAfter(t, oldest)
	d.SoftThrottled = ks.throttled
	return d
}

// Usage reports key's usage of category under limit now, without counting
// anything: the same count Allow would compare with limit. A key or category
// without a bucket, or whose bucket has another window (Allow will empty
// it), reports nothing used. Like every call, it lets a soft-throttled key
// that has recovered leave the mode.
func (l *Limiter) Usage(key uuid.UUID, category string, limit helpdeskflow.RateLimit) Usage {
	_, t := l.clock()
	window := effectiveWindow(limit.Window)
	u := Usage{Limit: limit.Limit, Window: window, Remaining: max(limit.Limit, 0)}
	ks := l.load(key)
	if ks == nil {
		return u
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.dead { // swept, so nothing counted
		return u
	}
	t = ks.observe(t)
	l.recoverLocked(ks, t)
	b := ks.bucket(category)
	if b == nil || b.window != int64(window) {
		return u
	}
	b.advance(t)
	n, oldest := b.counted(t)
	u.Used = int(n)
	u.Remaining = max(limit.Limit-int(n), 0)
	u.Reset = b.resetAfter(t, oldest)
	return u
}

// SoftThrottled reports whether key is in soft-throttle mode now and, if so,
// since when (the time of the denial that put it there; the zero time
// otherwise). A key leaves the mode once Recovery has passed since its last
// denial; its next streak then starts from its next denial.
func (l *Limiter) SoftThrottled(key uuid.UUID) (throttled bool, since time.Time) {
	_, t := l.clock()
	ks := l.load(key)
	if ks == nil {
		return false, time.Time{}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.dead {
		return false, time.Time{}
	}
	l.recoverLocked(ks, ks.observe(t))
	return ks.throttled, ks.throttledSince
}

// clock returns the time now and as nanoseconds since the Limiter's
// creation, never negative. Sub uses the monotonic clock of time.Now, so a
// wall-clock step does not move the windows.
func (l *Limiter) clock() (time.Time, int64) {
	now := l.cfg.Now()
	return now, max(int64(now.Sub(l.base)), 0)
}

func effectiveWindow(w time.Duration) time.Duration {
	return max(w, helpdeskflow.MinRateLimitWindow)
}

// observe returns t, or the key's latest time if t is before it, and
// records it as the latest.
func (ks *keyState) observe(t int64) int64 {
	t = max(t, ks.last)
	ks.last = t
	return t
}

func (ks *keyState) bucket(category string) *bucket {
	for _, b := range ks.buckets {
		if b.category == category {
			return b
		}
	}
	return nil
}

// denyLocked records a denial of ks at t in its over-limit streak.
func (l *Limiter) denyLocked(ks *keyState, now time.Time, t int64) {
	if !ks.streak || t-ks.lastDenial > int64(l.cfg.StreakGap) {
		ks.streak = true
		ks.streakStart = t
	}
	ks.lastDenial = t
	if !ks.throttled && t-ks.streakStart >= int64(l.cfg.SoftThrottleAfter) {
		ks.throttled = true
		ks.throttledSince = now
		l.throttledKeys.Inc()
	}
}

// recoverLocked takes ks out of soft-throttle mode when Recovery has passed
// since its last denial. Its streak ends too: re-entering takes another
// SoftThrottleAfter of denials, even when Recovery is shorter than StreakGap.
func (l *Limiter) recoverLocked(ks *keyState, t int64) {
	if ks.throttled && t-ks.lastDenial >= int64(l.cfg.Recovery) {
		ks.throttled = false
		ks.throttledSince = time.Time{}
		ks.streak = false
		l.throttledKeys.Dec()
	}
}

func (l *Limiter) shardOf(key uuid.UUID) *shard {
	h := binary.LittleEndian.Uint64(key[:8]) ^ binary.LittleEndian.Uint64(key[8:])
	h *= 0x9e3779b97f4a7c15 // spreads any bits of the id into the top byte
	return &l.shards[h>>56]
}

// load returns key's state, or nil when the Limiter holds none.
func (l *Limiter) load(key uuid.UUID) *keyState {
	sh := l.shardOf(key)
	sh.mu.RLock()
	ks := sh.keys[key]
	sh.mu.RUnlock()
	return ks
}

func (l *Limiter) loadOrCreate(key uuid.UUID) *keyState {
	if ks := l.load(key); ks != nil {
		return ks
	}
	sh := l.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ks := sh.keys[key]
	if ks == nil {
		ks = &keyState{}
		sh.keys[key] = ks
	}
	return ks
}

// maybeSweep sweeps the next shard when its turn has come; of concurrent
// callers, the one that moves nextSweep does it.
func (l *Limiter) maybeSweep(t int64) {
	next := l.nextSweep.Load()
	if t < next || !l.nextSweep.CompareAndSwap(next, t+int64(sweepEvery/numShards)) {
		return
	}
	l.sweep(&l.shards[l.sweepCursor.Add(1)%numShards], t)
}

// sweep drops sh's buckets in which nothing counts any more, ends the
// soft-throttle mode of its recovered keys, and forgets the keys left with
// nothing worth keeping. A key whose streak ended more than StreakGap ago
// would restart it at its next denial anyway.
func (l *Limiter) sweep(sh *shard, t int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for id, ks := range sh.keys {
		ks.mu.Lock()
		kt := ks.observe(t)
		l.recoverLocked(ks, kt)
		ks.buckets = slices.DeleteFunc(ks.buckets, func(b *bucket) bool {
			b.advance(kt)
			return b.sum == 0
		})
		if len(ks.buckets) == 0 && !ks.throttled && (!ks.streak || kt-ks.lastDenial > int64(l.cfg.StreakGap)) {
			ks.dead = true
			delete(sh.keys, id)
		}
		ks.mu.Unlock()
	}
}
