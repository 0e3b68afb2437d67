package ratelimit

import (
	"cmp"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

// Defaults of the soft-throttle and sharing settings in Config.
const (
	// DefaultSoftThrottleAfter is how long a workspace's denials must go
	// on before it enters soft-throttle mode.
	DefaultSoftThrottleAfter = 10 * time.Minute
	// DefaultStreakGap is the longest pause between two denials that still
	// continues a workspace's over-limit streak.
	DefaultStreakGap = time.Minute
	// DefaultRecovery is how long a soft-throttled workspace must go
	// without a denial to leave soft-throttle mode.
	DefaultRecovery = 5 * time.Minute
	// DefaultSyncEvery is how often Run exchanges counts through
	// Config.Shared.
	DefaultSyncEvery = 100 * time.Millisecond
	// DefaultSyncTimeout bounds one exchange.
	DefaultSyncTimeout = time.Second
)

// Config holds a Limiter's settings. The zero value is usable: every zero
// (or negative) field takes its default.
type Config struct {
	// Now returns the current time. Default: time.Now. Tests pass a fake
	// clock. Times before New's call count as the time of that call, and a
	// clock that goes back is held at the latest time a key has seen.
	Now func() time.Time
	// Origin is where the slots of every window start: slot k of width g
	// is [Origin + k·g, Origin + (k+1)·g). Processes that share counts
	// must have the same. Default: the Unix epoch. After New the Limiter
	// moves with Now's monotonic clock from Now's wall-clock time at New,
	// so a wall-clock step does not move its windows.
	Origin time.Time
	// SoftThrottleAfter is how long a workspace must keep being denied
	// (denials of any of its keys, on any process sharing through Shared,
	// no more than StreakGap apart) before it enters soft-throttle mode.
	// Default: DefaultSoftThrottleAfter (10 minutes).
	SoftThrottleAfter time.Duration
	// StreakGap is the longest pause between two denials of a workspace
	// that continues its over-limit streak; after a longer pause the
	// streak starts again at the next denial. Default: DefaultStreakGap
	// (1 minute).
	StreakGap time.Duration
	// Recovery is how long a soft-throttled workspace must go without any
	// denial to leave soft-throttle mode. Default: DefaultRecovery (5
	// minutes).
	Recovery time.Duration
	// Shared, when set, is where this Limiter exchanges admission counts
	// and denial streaks with the other API processes (Run, Sync), so
	// limits and soft throttle hold across them; nil keeps everything in
	// this process.
	Shared Shared
	// Unshared are categories whose buckets stay in this process, never
	// exchanged: budgets of many short-lived buckets (per client IP, for
	// example) that would make every exchange large.
	Unshared []string
	// SyncEvery is how often Run exchanges through Shared. Default:
	// DefaultSyncEvery (100 ms).
	SyncEvery time.Duration
	// SyncTimeout bounds one exchange. Default: DefaultSyncTimeout (1 s).
	SyncTimeout time.Duration
	// Logger receives a warning when exchanges start failing and a note
	// when they work again. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives helpdeskflow_rate_limited_requests_total{category},
	// helpdeskflow_soft_throttled_workspaces,
	// helpdeskflow_rate_limit_syncs_total and
	// helpdeskflow_rate_limit_sync_failures_total; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Origin.IsZero() {
		c.Origin = time.Unix(0, 0)
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
	if c.SyncEvery <= 0 {
		c.SyncEvery = DefaultSyncEvery
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
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
	// SoftThrottled reports whether the key's workspace is in
	// soft-throttle mode after this call; the caller then delays its
	// response by the workspace's RateLimitPolicy.SoftThrottleDelay.
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
	// numShards is how many independently locked maps hold the keys (and
	// as many the workspaces); the shard is picked by the top 8 bits of a
	// hash of the id.
	numShards = 256
	// sweepEvery is how often each shard is swept for idle keys while the
	// Limiter receives calls: one shard every sweepEvery/numShards.
	sweepEvery = time.Minute
)

// Limiter enforces rate limits per API key and category, and soft throttle
// per workspace. It is safe for concurrent use, and there is no lock common
// to all keys: a call read-locks the one of 256 shards its key id hashes
// to, just for a map lookup, then locks that key's own mutex, then does the
// same for the key's workspace. A shard is write-locked only to add an
// entry and during its sweep. Allow does not allocate once the key's bucket
// for the category and its workspace's state exist.
//
// Memory is bounded by the active keys, about 570 bytes per bucket: a
// bucket in which nothing counts any more (idle for its window plus one
// slot) is dropped, a key with no bucket left is forgotten, and so is a
// workspace not soft-throttled, with no denial streak in progress and no
// call for a minute. The sweep is lazy, with no goroutine to stop: while
// Allow is called, one shard is swept every 234 ms, so each is swept about
// once a minute.
//
// With Config.Shared, Run (or Sync) exchanges the counts of every held
// bucket and the streaks of every held workspace with the other processes;
// see the package documentation for what that guarantees.
type Limiter struct {
	cfg  Config
	base time.Time // Now at New
	// offset is base's time since Origin: a time's t is offset plus its
	// (monotonic) time since base.
	offset int64
	// node tells this Limiter's counts from the other processes' in
	// Config.Shared.
	node uuid.UUID

	keys       table[keyState]
	workspaces table[workspaceState]

	nextSweep   atomic.Int64  // time of the next shard sweep
	sweepCursor atomic.Uint64 // how many sweeps started

	denials      *prometheus.CounterVec
	throttled    prometheus.Gauge
	syncs        prometheus.Counter
	syncFailures prometheus.Counter
	syncMu       sync.Mutex // one exchange at a time
}

// keyState is one API key: its buckets, one per category, guarded by mu.
type keyState struct {
	mu sync.Mutex
	// dead is set when the sweep removed the key from its shard; a caller
	// that loaded it before must look the key up again.
	dead bool
	// last is the latest time a call for this key used; time never goes
	// back for a key, so its buckets only move forward.
	last    int64
	buckets []*bucket
}

func (ks *keyState) lock() bool { ks.mu.Lock(); return !ks.dead }
func (ks *keyState) unlock()    { ks.mu.Unlock() }

// workspaceState is one workspace's soft-throttle state, guarded by mu.
// Times are nanoseconds since Config.Origin.
type workspaceState struct {
	mu   sync.Mutex
	dead bool
	last int64 // the latest time a call used

	// streak reports whether a denial streak of this process is in
	// progress, from streakStart to lastDenial; dirty that it changed
	// since the last exchange.
	streak                  bool
	streakStart, lastDenial int64
	dirty                   bool
	// others are the other processes' streaks as of the last exchange.
	others []helpdeskflow.RateLimitStreak
	// recoveredAt is when the workspace last left soft-throttle mode:
	// denials before it are over.
	recoveredAt    int64
	throttled      bool
	throttledSince time.Time
}

func (ws *workspaceState) lock() bool { ws.mu.Lock(); return !ws.dead }
func (ws *workspaceState) unlock()    { ws.mu.Unlock() }

// New returns a Limiter with cfg's settings (defaults for zero fields) and
// registers its metrics on cfg.Registerer when that is not nil. Its only
// error is an EInternal *helpdeskflow.Error when registration fails (for
// example a second Limiter on the same registry).
//
// Metrics: helpdeskflow_rate_limited_requests_total{category} counts denied
// requests; helpdeskflow_soft_throttled_workspaces is the number of
// workspaces this process holds in soft-throttle mode. The gauge rises when
// a workspace enters the mode and falls when a call for it (Allow,
// SoftThrottled), an exchange or the sweep of its shard notices that
// Recovery has passed. helpdeskflow_rate_limit_syncs_total and
// helpdeskflow_rate_limit_sync_failures_total count the exchanges through
// Config.Shared that succeeded and failed (after a failure the Limiter goes
// on with what it knows: its own counts and the others' last known ones).
func New(cfg Config) (*Limiter, error) {
	cfg.setDefaults()
	base := cfg.Now()
	l := &Limiter{
		cfg:    cfg,
		base:   base,
		offset: int64(base.Round(0).Sub(cfg.Origin)),
		node:   uuid.New(),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_rate_limited_requests_total",
			Help: "Requests denied by a rate limit, by rate limit category.",
		}, []string{"category"}),
		throttled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "helpdeskflow_soft_throttled_workspaces",
			Help: "Workspaces in soft-throttle mode (their keys kept exceeding their rate limits).",
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "helpdeskflow_rate_limit_syncs_total",
			Help: "Exchanges of rate limit counts with the other API processes (through Postgres) that succeeded.",
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "helpdeskflow_rate_limit_sync_failures_total",
			Help: "Exchanges of rate limit counts with the other API processes (through Postgres) that failed; the process then limits with the counts it has.",
		}),
	}
	l.keys.init()
	l.workspaces.init()
	l.nextSweep.Store(l.offset + int64(sweepEvery/numShards))
	for _, category := range helpdeskflow.RateLimitCategories {
		l.denials.WithLabelValues(category) // export zeros for every category
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.denials, l.throttled, l.syncs, l.syncFailures} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register rate limit metrics", Err: err}
			}
		}
	}
	return l, nil
}

// Allow decides whether one request of key (of workspace) in category is
// admitted under limit, counts it if so, and updates the workspace's
// soft-throttle state; see the package documentation for the algorithm
// and its guarantee. Each (key, category) is its own bucket. category is
// normally one of helpdeskflow.RateLimitCategories; any other string gets
// its own bucket and its own label value in the denial metric.
//
// limit is expected to pass RateLimit.Validate. A Window below
// helpdeskflow.MinRateLimitWindow is treated as that minimum; a Limit below 1
// denies every request, with RetryAfter equal to the window. When Window
// differs from the bucket's previous call the workspace changed its limits
// and the bucket starts empty; when only Limit differs the counts are kept
// and compared with the new limit.
//
// Every denial extends or starts the workspace's over-limit streak (across
// all its keys and categories, and with Config.Shared across processes); a
// streak that lasts SoftThrottleAfter or more puts the workspace in
// soft-throttle mode.
func (l *Limiter) Allow(workspace, key uuid.UUID, category string, limit helpdeskflow.RateLimit) Decision {
	return l.AllowN(workspace, key, category, limit, 1)
}

// AllowN is Allow for a request that counts as n (at least 1) requests, a
// batch of n items: it is admitted, and counted n times, only when all n
// fit under limit now; otherwise nothing is counted (one denial) and
// RetryAfter is the time until n fit, or the window when n is over the
// limit itself (it never fits). The guarantee holds as for Allow: no
// window holds more than Limit admitted counts.
func (l *Limiter) AllowN(workspace, key uuid.UUID, category string, limit helpdeskflow.RateLimit, n int) Decision {
	n = max(n, 1)
	now, t := l.clock()
	l.maybeSweep(t)
	window := effectiveWindow(limit.Window)
	ks := acquire(&l.keys, key)
	d := l.allowLocked(ks, t, category, limit.Limit, window, n)
	ks.unlock()
	ws := acquire(&l.workspaces, workspace)
	wt := ws.observe(t)
	if !d.Allowed {
		ws.deny(wt, l.cfg.StreakGap)
	}
	if ws.throttled || ws.streak || len(ws.others) > 0 { // otherwise nothing to evaluate
		l.evaluateLocked(ws, now, wt)
	}
	d.SoftThrottled = ws.throttled
	ws.unlock()
	return d
}

func (l *Limiter) allowLocked(ks *keyState, t int64, category string, limit int, window time.Duration, cost int) Decision {
	t = ks.observe(t)
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
	}
	d.Reset = b.resetAfter(t, oldest)
	return d
}

// Usage reports key's usage of category under limit now, without counting
// anything: the same count Allow would compare with limit. A key or category
// without a bucket, or whose bucket has another window (Allow will empty
// it), reports nothing used.
func (l *Limiter) Usage(key uuid.UUID, category string, limit helpdeskflow.RateLimit) Usage {
	_, t := l.clock()
	window := effectiveWindow(limit.Window)
	u := Usage{Limit: limit.Limit, Window: window, Remaining: max(limit.Limit, 0)}
	ks := l.keys.load(key)
	if ks == nil {
		return u
	}
	defer ks.unlock()
	if !ks.lock() { // swept, so nothing counted
		return u
	}
	t = ks.observe(t)
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

// SoftThrottled reports whether workspace is in soft-throttle mode now and,
// if so, since when (when this process saw it enter the mode: the denial
// that put it there, or the exchange that told of it; the zero time
// otherwise). A workspace leaves the mode once Recovery has passed since
// its last denial; its next streak then starts from its next denial.
func (l *Limiter) SoftThrottled(workspace uuid.UUID) (throttled bool, since time.Time) {
	now, t := l.clock()
	ws := l.workspaces.load(workspace)
	if ws == nil {
		return false, time.Time{}
	}
	defer ws.unlock()
	if !ws.lock() {
		return false, time.Time{}
	}
	l.evaluateLocked(ws, now, ws.observe(t))
	return ws.throttled, ws.throttledSince
}

// clock returns the time now and as nanoseconds since Config.Origin, never
// before New's call. Sub uses the monotonic clock of time.Now, so a
// wall-clock step does not move the windows.
func (l *Limiter) clock() (time.Time, int64) {
	now := l.cfg.Now()
	return now, l.offset + max(int64(now.Sub(l.base)), 0)
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

// observe is keyState.observe for a workspace.
func (ws *workspaceState) observe(t int64) int64 {
	t = max(t, ws.last)
	ws.last = t
	return t
}

// deny records a denial at t in this process's streak of ws.
func (ws *workspaceState) deny(t int64, gap time.Duration) {
	if !ws.streak || t-ws.lastDenial > int64(gap) {
		ws.streak = true
		ws.streakStart = t
	}
	ws.lastDenial = t
	ws.dirty = true
}

// merged returns the workspace's current streak from this process's and
// the other processes' streaks: the run of streaks, each starting at most
// StreakGap after the previous ended, that holds the latest denial. Denials
// before recoveredAt do not count. ok is false when there is no streak.
func (ws *workspaceState) merged(gap time.Duration) (start, end int64, ok bool) {
	var runs [8]helpdeskflow.RateLimitStreak // enough for the processes of a deployment without allocating
	all := runs[:0]
	if ws.streak {
		all = append(all, helpdeskflow.RateLimitStreak{Start: ws.streakStart, LastDenial: ws.lastDenial})
	}
	for _, o := range ws.others {
		if o.LastDenial < ws.recoveredAt {
			continue
		}
		o.Start = max(o.Start, ws.recoveredAt)
		all = append(all, o)
	}
	if len(all) == 0 {
		return 0, 0, false
	}
	slices.SortFunc(all, func(a, b helpdeskflow.RateLimitStreak) int { return cmp.Compare(a.Start, b.Start) })
	start, end = all[0].Start, all[0].LastDenial
	for _, s := range all[1:] {
		if s.Start-end > int64(gap) {
			start = s.Start
		}
		end = max(end, s.LastDenial)
	}
	return start, end, true
}

// evaluateLocked puts ws in soft-throttle mode when its streak has lasted
// SoftThrottleAfter, and takes it out when Recovery has passed since its
// last denial; its streaks end then too, so re-entering takes another
// SoftThrottleAfter of denials, even when Recovery is shorter than
// StreakGap.
func (l *Limiter) evaluateLocked(ws *workspaceState, now time.Time, t int64) {
	start, end, ok := ws.merged(l.cfg.StreakGap)
	recovered := !ok || t-end >= int64(l.cfg.Recovery)
	switch {
	case ws.throttled && recovered:
		ws.throttled = false
		ws.throttledSince = time.Time{}
		ws.streak = false
		ws.recoveredAt = t
		l.throttled.Dec()
	case !ws.throttled && !recovered && end-start >= int64(l.cfg.SoftThrottleAfter):
		ws.throttled = true
		ws.throttledSince = now
		l.throttled.Inc()
	}
}

// maybeSweep sweeps the next shard when its turn has come; of concurrent
// callers, the one that moves nextSweep does it.
func (l *Limiter) maybeSweep(t int64) {
	next := l.nextSweep.Load()
	if t < next || !l.nextSweep.CompareAndSwap(next, t+int64(sweepEvery/numShards)) {
		return
	}
	i := l.sweepCursor.Add(1) % numShards
	l.sweepKeys(&l.keys.shards[i], t)
	l.sweepWorkspaces(&l.workspaces.shards[i], t)
}

// sweepKeys drops sh's buckets in which nothing counts any more and
// forgets the keys left with none.
func (l *Limiter) sweepKeys(sh *tableShard[keyState], t int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for id, ks := range sh.m {
		ks.mu.Lock()
		kt := ks.observe(t)
		ks.buckets = slices.DeleteFunc(ks.buckets, func(b *bucket) bool {
			b.advance(kt)
			return b.sum == 0 && b.othersSum == 0
		})
		if len(ks.buckets) == 0 {
			ks.dead = true
			delete(sh.m, id)
		}
		ks.mu.Unlock()
	}
}

// sweepWorkspaces ends the soft-throttle mode of sh's recovered
// workspaces, and forgets those not throttled, with no streak of this
// process in progress (one that ended more than StreakGap ago would
// restart at the next denial anyway) and no call for sweepEvery.
func (l *Limiter) sweepWorkspaces(sh *tableShard[workspaceState], t int64) {
	now := l.cfg.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for id, ws := range sh.m {
		ws.mu.Lock()
		l.evaluateLocked(ws, now, max(t, ws.last))
		if !ws.throttled && (!ws.streak || t-ws.lastDenial > int64(l.cfg.StreakGap)) && t-ws.last >= int64(sweepEvery) {
			ws.dead = true
			delete(sh.m, id)
		}
		ws.mu.Unlock()
	}
}

// table is a sharded map of per-id state.
type table[S any] struct {
	shards [numShards]tableShard[S]
}

type tableShard[S any] struct {
	mu sync.RWMutex
	m  map[uuid.UUID]*S
	// Keeps two shards' mutexes off the same cache line.
	_ [64]byte
}

// lockable is the state a table holds: lock reports false when the sweep
// removed the state (it is unlocked with unlock all the same).
type lockable[S any] interface {
	*S
	lock() bool
	unlock()
}

func (tb *table[S]) init() {
	for i := range tb.shards {
		tb.shards[i].m = map[uuid.UUID]*S{}
	}
}

func (tb *table[S]) shardOf(id uuid.UUID) *tableShard[S] {
	h := binary.LittleEndian.Uint64(id[:8]) ^ binary.LittleEndian.Uint64(id[8:])
	h *= 0x9e3779b97f4a7c15 // spreads any bits of the id into the top byte
	return &tb.shards[h>>56]
}

// load returns id's state, or nil when the table holds none.
func (tb *table[S]) load(id uuid.UUID) *S {
	sh := tb.shardOf(id)
	sh.mu.RLock()
	s := sh.m[id]
	sh.mu.RUnlock()
	return s
}

func (tb *table[S]) loadOrCreate(id uuid.UUID) *S {
	if s := tb.load(id); s != nil {
		return s
	}
	sh := tb.shardOf(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[id]
	if s == nil {
		s = new(S)
		sh.m[id] = s
	}
	return s
}

// acquire returns id's state, created if need be, locked and live.
func acquire[S any, P lockable[S]](tb *table[S], id uuid.UUID) P {
	for {
		s := P(tb.loadOrCreate(id))
		if s.lock() {
			return s
		}
		s.unlock()
	}
}
