package ratelimit_test

import (
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
)

// start is the fake clock's time when a test creates its Limiter, so the
// offsets a test sets are the Limiter's slot times (slot k of width g is
// [k·g, (k+1)·g) after start).
var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fakeClock is a Config.Now that moves only when the test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At sets the clock to offset after start.
func (c *fakeClock) At(offset time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = start.Add(offset)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newLimiter returns a Limiter on a fake clock at start; reg may be nil.
func newLimiter(t testing.TB, reg prometheus.Registerer) (*ratelimit.Limiter, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: start}
	l, err := ratelimit.New(ratelimit.Config{Origin: start, Now: clock.Now, Registerer: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, clock
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestLimiter_Allow(t *testing.T) {
	minute3 := helpdeskflow.RateLimit{Limit: 3, Window: time.Minute} // slots of 1 s
	second1 := helpdeskflow.RateLimit{Limit: 1, Window: time.Second} // slots of 16,666,667 ns
	const g1s = 16_666_667 * time.Nanosecond

	tests := []struct {
		name  string
		limit helpdeskflow.RateLimit
		prior []time.Duration // admitted requests before the probe
		at    time.Duration
		want  ratelimit.Decision
	}{
		{
			name: "first request", limit: minute3, at: 0,
			want: ratelimit.Decision{Allowed: true, Limit: 3, Window: time.Minute, Remaining: 2, Reset: 61 * time.Second},
		},
		{
			name: "last one admitted", limit: minute3, prior: []time.Duration{0, 0}, at: ms(500),
			want: ratelimit.Decision{Allowed: true, Limit: 3, Window: time.Minute, Remaining: 0, Reset: ms(60_500)},
		},
		{
			name: "full", limit: minute3, prior: []time.Duration{0, 0, 0}, at: ms(500),
			want: ratelimit.Decision{Limit: 3, Window: time.Minute, RetryAfter: ms(60_500), Reset: ms(60_500)},
		},
		{
			// [t−W, t] = [0, 60 s] still holds the requests at 0.
			name: "exactly one window later", limit: minute3, prior: []time.Duration{0, 0, 0}, at: time.Minute,
			want: ratelimit.Decision{Limit: 3, Window: time.Minute, RetryAfter: time.Second, Reset: time.Second},
		},
		{
			// The whole slot [0, 1 s) counts until t−W leaves it.
			name: "oldest slot counts whole", limit: minute3, prior: []time.Duration{ms(10), ms(20), ms(30)}, at: ms(60_999),
			want: ratelimit.Decision{Limit: 3, Window: time.Minute, RetryAfter: ms(1), Reset: ms(1)},
		},
		{
			name: "oldest slot expired", limit: minute3, prior: []time.Duration{0, 0, 0}, at: 61 * time.Second,
			want: ratelimit.Decision{Allowed: true, Limit: 3, Window: time.Minute, Remaining: 2, Reset: 61 * time.Second},
		},
		{
			name: "spread requests free one at a time", limit: minute3, prior: []time.Duration{0, 30 * time.Second, ms(59_500)}, at: ms(60_500),
			want: ratelimit.Decision{Limit: 3, Window: time.Minute, RetryAfter: ms(500), Reset: ms(500)},
		},
		{
			// Slot 10 holds two requests: the oldest expiring frees two.
			name: "retry after the slot that brings the count below the limit", limit: minute3,
			prior: []time.Duration{ms(10_200), ms(10_700), 40 * time.Second}, at: ms(70_900),
			want: ratelimit.Decision{Limit: 3, Window: time.Minute, RetryAfter: ms(100), Reset: ms(100)},
		},
		{
			name: "a request in a later slot does not delay the retry", limit: helpdeskflow.RateLimit{Limit: 2, Window: time.Minute},
			prior: []time.Duration{ms(100), ms(5_100)}, at: ms(10_000),
			want: ratelimit.Decision{Limit: 2, Window: time.Minute, RetryAfter: 51 * time.Second, Reset: 51 * time.Second},
		},
		{
			name: "one-second window", limit: second1, prior: []time.Duration{0}, at: ms(500),
			want: ratelimit.Decision{Limit: 1, Window: time.Second, RetryAfter: time.Second + g1s - ms(500), Reset: time.Second + g1s - ms(500)},
		},
		{
			name: "one-second window after one slot more", limit: second1, prior: []time.Duration{0}, at: time.Second + g1s,
			want: ratelimit.Decision{Allowed: true, Limit: 1, Window: time.Second, Remaining: 0, Reset: 60 * g1s},
		},
		{
			name: "window below the minimum is one second", limit: helpdeskflow.RateLimit{Limit: 1, Window: 0}, prior: []time.Duration{0}, at: ms(500),
			want: ratelimit.Decision{Limit: 1, Window: time.Second, RetryAfter: time.Second + g1s - ms(500), Reset: time.Second + g1s - ms(500)},
		},
		{
			name: "limit zero denies", limit: helpdeskflow.RateLimit{Limit: 0, Window: time.Minute}, at: 0,
			want: ratelimit.Decision{Limit: 0, Window: time.Minute, RetryAfter: time.Minute},
		},
	}
	key := uuid.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newLimiter(t, nil)
			for _, at := range tt.prior {
				clock.At(at)
				if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, tt.limit); !d.Allowed {
					t.Fatalf("prior request at %v denied: %+v", at, d)
				}
			}
			clock.At(tt.at)
			got := l.Allow(key, key, helpdeskflow.RateTicketsCreate, tt.limit)
			if got != tt.want {
				t.Fatalf("Allow at %v\n got %+v\nwant %+v", tt.at, got, tt.want)
			}
			if got.Allowed || tt.limit.Limit < 1 {
				return
			}
			// A client that comes back a millisecond early is denied again
			// (a denial is not counted), one that waits exactly RetryAfter
			// is admitted.
			clock.At(tt.at + got.RetryAfter - time.Millisecond)
			if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, tt.limit); d.Allowed {
				t.Errorf("admitted 1 ms before RetryAfter: %+v", d)
			}
			clock.At(tt.at + got.RetryAfter)
			if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, tt.limit); !d.Allowed {
				t.Errorf("denied after exactly RetryAfter: %+v", d)
			}
		})
	}
}

func TestLimiter_Allow_remainingCountsDown(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 5, Window: 10 * time.Second}
	for i := range 5 {
		clock.At(ms(100 * i))
		d := l.Allow(key, key, helpdeskflow.RateAdmin, limit)
		if !d.Allowed {
			t.Fatalf("request %d denied", i)
		}
		if got, want := d.Remaining, 4-i; got != want {
			t.Errorf("request %d: Remaining = %d, want %d", i, got, want)
		}
	}
	if d := l.Allow(key, key, helpdeskflow.RateAdmin, limit); d.Allowed || d.Remaining != 0 {
		t.Errorf("sixth request: %+v, want denied with Remaining 0", d)
	}
}

// After requests spread over ten seconds, capacity comes back as each
// second's slot leaves the window, not all at once when a window ends.
func TestLimiter_gradualDecrease(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 60, Window: time.Minute}
	for s := range 10 {
		for range 6 {
			clock.At(time.Duration(s)*time.Second + ms(500))
			if d := l.Allow(key, key, helpdeskflow.RateTicketsUpdate, limit); !d.Allowed {
				t.Fatalf("request at %ds denied: %+v", s, d)
			}
		}
	}
	for s := 60; s <= 70; s++ {
		clock.At(time.Duration(s)*time.Second + ms(500))
		u := l.Usage(key, helpdeskflow.RateTicketsUpdate, limit)
		if got, want := u.Remaining, 6*(s-60); got != want {
			t.Errorf("at %d.5s: Remaining = %d, want %d", s, got, want)
		}
		if got, want := u.Used, 60-6*(s-60); got != want {
			t.Errorf("at %d.5s: Used = %d, want %d", s, got, want)
		}
		wantReset := ms(500)
		if s == 70 {
			wantReset = 0
		}
		if u.Reset != wantReset {
			t.Errorf("at %d.5s: Reset = %v, want %v", s, u.Reset, wantReset)
		}
	}
}

// Random arrivals, some in bursts: no closed interval of length W holds more
// than Limit admissions, and every denial is justified by Limit admissions
// in the counted span (t−W−g, t].
func TestLimiter_Allow_neverExceedsLimitInAnyWindow(t *testing.T) {
	windows := []time.Duration{time.Second, 2 * time.Second, 7 * time.Second, time.Minute}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 1))
		limit := helpdeskflow.RateLimit{Limit: 1 + rng.IntN(20), Window: windows[rng.IntN(len(windows))]}
		width := (limit.Window + 59) / 60
		l, clock := newLimiter(t, nil)
		key := uuid.New()

		var admitted, denied []time.Duration
		var now time.Duration
		for range 3000 {
			switch rng.IntN(4) {
			case 0: // same instant
			case 1: // burst
				now += time.Duration(rng.Int64N(int64(width)))
			default:
				now += time.Duration(rng.Int64N(int64(limit.Window) / int64(limit.Limit)))
			}
			clock.At(now)
			if d := l.Allow(key, key, helpdeskflow.RateTicketsRead, limit); d.Allowed {
				admitted = append(admitted, now)
			} else {
				denied = append(denied, now)
			}
		}
		if len(admitted) == 0 || len(denied) == 0 {
			t.Fatalf("seed %d: %d admitted, %d denied; the test should exercise both", seed, len(admitted), len(denied))
		}
		// inClosed counts admissions in [from, to].
		inClosed := func(from, to time.Duration) int {
			i := sort.Search(len(admitted), func(i int) bool { return admitted[i] >= from })
			j := sort.Search(len(admitted), func(i int) bool { return admitted[i] > to })
			return j - i
		}
		for _, a := range admitted {
			if n := inClosed(a, a+limit.Window); n > limit.Limit {
				t.Fatalf("seed %d, %+v: %d admissions in [%v, %v]", seed, limit, n, a, a+limit.Window)
			}
			if n := inClosed(a-limit.Window, a); n > limit.Limit {
				t.Fatalf("seed %d, %+v: %d admissions in [%v, %v]", seed, limit, n, a-limit.Window, a)
			}
		}
		for _, d := range denied {
			if n := inClosed(d-limit.Window-width+1, d); n < limit.Limit {
				t.Fatalf("seed %d, %+v: denied at %v with only %d admissions in (t−W−g, t]", seed, limit, d, n)
			}
		}
	}
}

// 32 goroutines hit one key at once in rounds; the clock moves only between
// rounds, so the test knows the time of every admission.
func TestLimiter_Allow_concurrentOneKey(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 50, Window: time.Second}
	const goroutines, callsPerRound, rounds = 32, 4, 120

	times := make([]time.Duration, rounds)
	admitted := make([]int, rounds)
	for r := range rounds {
		times[r] = time.Duration(r) * ms(37)
		clock.At(times[r])
		var n atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range callsPerRound {
					d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
					if d.Allowed {
						n.Add(1)
					}
					if d.Remaining < 0 || d.Remaining >= limit.Limit {
						t.Errorf("Remaining = %d", d.Remaining)
					}
				}
			})
		}
		wg.Wait()
		admitted[r] = int(n.Load())
	}
	if got, want := admitted[0], limit.Limit; got != want {
		t.Fatalf("first round admitted %d, want %d", got, want)
	}
	total := 0
	for r := range rounds {
		total += admitted[r]
		inWindow := 0
		for q := r; q < rounds && times[q] <= times[r]+limit.Window; q++ {
			inWindow += admitted[q]
		}
		if inWindow > limit.Limit {
			t.Fatalf("%d admissions in [%v, %v], limit %d", inWindow, times[r], times[r]+limit.Window, limit.Limit)
		}
	}
	if total <= limit.Limit {
		t.Fatalf("only %d admissions in %v; capacity never came back", total, times[rounds-1])
	}
}

// Many goroutines on many keys and categories, with queries and the clock
// moving (so shards get swept) at the same time; run with -race.
func TestLimiter_concurrentMixed(t *testing.T) {
	l, clock := newLimiter(t, nil)
	keys := make([]uuid.UUID, 64)
	for i := range keys {
		keys[i] = uuid.New()
	}
	limit := helpdeskflow.RateLimit{Limit: 20, Window: time.Second}
	var stop atomic.Bool
	ticker := make(chan struct{})
	go func() {
		defer close(ticker)
		for !stop.Load() {
			clock.Advance(ms(50))
			runtime.Gosched()
		}
	}()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for range 5000 {
				key := keys[rng.IntN(len(keys))]
				category := helpdeskflow.RateLimitCategories[rng.IntN(len(helpdeskflow.RateLimitCategories))]
				switch rng.IntN(10) {
				case 0:
					if u := l.Usage(key, category, limit); u.Used < 0 || u.Used > limit.Limit || u.Remaining != limit.Limit-u.Used {
						t.Errorf("Usage = %+v", u)
					}
				case 1:
					l.SoftThrottled(key)
				default:
					if d := l.Allow(key, key, category, limit); d.Remaining < 0 || d.Remaining >= limit.Limit {
						t.Errorf("Allow = %+v", d)
					}
				}
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	<-ticker
}

func TestLimiter_Allow_categoriesAreIndependent(t *testing.T) {
	l, _ := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 2, Window: time.Minute}
	l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit); d.Allowed {
		t.Fatalf("third create admitted: %+v", d)
	}
	d := l.Allow(key, key, helpdeskflow.RateTicketsRead, limit)
	if !d.Allowed || d.Remaining != 1 {
		t.Fatalf("first read after creates ran out: %+v, want admitted with Remaining 1", d)
	}
}

func TestLimiter_Allow_keysAreIndependent(t *testing.T) {
	l, _ := newLimiter(t, nil)
	a, b := uuid.New(), uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 1, Window: time.Minute}
	l.Allow(a, a, helpdeskflow.RateTicketsCreate, limit)
	if d := l.Allow(a, a, helpdeskflow.RateTicketsCreate, limit); d.Allowed {
		t.Fatalf("key a admitted over its limit: %+v", d)
	}
	if d := l.Allow(b, b, helpdeskflow.RateTicketsCreate, limit); !d.Allowed {
		t.Fatalf("key b denied because of key a: %+v", d)
	}
}

func TestLimiter_Allow_windowChangeResets(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	old := helpdeskflow.RateLimit{Limit: 3, Window: time.Minute}
	for range 3 {
		l.Allow(key, key, helpdeskflow.RateCustomersWrite, old)
	}
	clock.At(ms(200))
	changed := helpdeskflow.RateLimit{Limit: 3, Window: 30 * time.Second}
	if u := l.Usage(key, helpdeskflow.RateCustomersWrite, changed); u.Used != 0 || u.Remaining != 3 {
		t.Errorf("Usage under the new window = %+v, want nothing used", u)
	}
	d := l.Allow(key, key, helpdeskflow.RateCustomersWrite, changed)
	if !d.Allowed || d.Remaining != 2 || d.Window != 30*time.Second {
		t.Fatalf("first request under the new window: %+v, want admitted with Remaining 2", d)
	}
	// Going back is a change too: the old counts are gone.
	if u := l.Usage(key, helpdeskflow.RateCustomersWrite, old); u.Used != 0 {
		t.Errorf("Usage back under the old window = %+v, want nothing used", u)
	}
}

func TestLimiter_Allow_limitChangeKeepsCounts(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	for i := range 3 { // one request in each of slots 0, 1 and 2
		clock.At(time.Duration(i) * time.Second)
		l.Allow(key, key, helpdeskflow.RateEventsRead, helpdeskflow.RateLimit{Limit: 3, Window: time.Minute})
	}
	clock.At(3 * time.Second)
	raised := helpdeskflow.RateLimit{Limit: 5, Window: time.Minute}
	if d := l.Allow(key, key, helpdeskflow.RateEventsRead, raised); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("after raising the limit to 5: %+v, want admitted with Remaining 1", d)
	}
	lowered := helpdeskflow.RateLimit{Limit: 2, Window: time.Minute}
	d := l.Allow(key, key, helpdeskflow.RateEventsRead, lowered)
	// Four requests count; below 2 takes slots 0, 1 and 2 expiring, at
	// 60 s + 3 s, while the oldest alone leaves at 60 s + 1 s.
	want := ratelimit.Decision{Limit: 2, Window: time.Minute, RetryAfter: 60 * time.Second, Reset: 58 * time.Second}
	if d != want {
		t.Fatalf("after lowering the limit to 2:\n got %+v\nwant %+v", d, want)
	}
	if u := l.Usage(key, helpdeskflow.RateEventsRead, lowered); u.Used != 4 || u.Remaining != 0 {
		t.Errorf("Usage = %+v, want 4 used and none remaining", u)
	}
	clock.At(63*time.Second - time.Millisecond)
	if d := l.Allow(key, key, helpdeskflow.RateEventsRead, lowered); d.Allowed {
		t.Errorf("admitted 1 ms before RetryAfter: %+v", d)
	}
	clock.At(63 * time.Second)
	if d := l.Allow(key, key, helpdeskflow.RateEventsRead, lowered); !d.Allowed {
		t.Errorf("denied after exactly RetryAfter: %+v", d)
	}
}

func TestLimiter_Usage(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 10, Window: time.Minute}
	want := ratelimit.Usage{Limit: 10, Window: time.Minute, Remaining: 10}
	if u := l.Usage(key, helpdeskflow.RateTicketsRead, limit); u != want {
		t.Fatalf("Usage of an unknown key = %+v, want %+v", u, want)
	}
	clock.At(ms(2_300))
	l.Allow(key, key, helpdeskflow.RateTicketsRead, limit)
	l.Allow(key, key, helpdeskflow.RateTicketsRead, limit)
	clock.At(10 * time.Second)
	want = ratelimit.Usage{Limit: 10, Window: time.Minute, Used: 2, Remaining: 8, Reset: 53 * time.Second}
	for range 3 { // Usage counts nothing
		if u := l.Usage(key, helpdeskflow.RateTicketsRead, limit); u != want {
			t.Fatalf("Usage = %+v, want %+v", u, want)
		}
	}
	if u := l.Usage(key, helpdeskflow.RateTicketsCreate, limit); u.Used != 0 {
		t.Errorf("Usage of another category = %+v, want nothing used", u)
	}
}

// throttleSetup returns a limiter and a key that has used its only request
// of the hour, so that every further request is denied.
func throttleSetup(t *testing.T) (*ratelimit.Limiter, *fakeClock, *prometheus.Registry, uuid.UUID) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	l, clock := newLimiter(t, reg)
	key := uuid.New()
	if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly); !d.Allowed {
		t.Fatalf("first request denied: %+v", d)
	}
	return l, clock, reg, key
}

var hourly = helpdeskflow.RateLimit{Limit: 1, Window: time.Hour}

func assertThrottledGauge(t *testing.T, reg *prometheus.Registry, want int) {
	t.Helper()
	expected := "# HELP helpdeskflow_soft_throttled_workspaces Workspaces in soft-throttle mode (their keys kept exceeding their rate limits).\n" +
		"# TYPE helpdeskflow_soft_throttled_workspaces gauge\n" +
		"helpdeskflow_soft_throttled_workspaces " + strconv.Itoa(want) + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected), "helpdeskflow_soft_throttled_workspaces"); err != nil {
		t.Error(err)
	}
}

func TestLimiter_softThrottle(t *testing.T) {
	t.Run("enters after ten minutes of denials", func(t *testing.T) {
		l, clock, reg, key := throttleSetup(t)
		// Denials every 30 s from 0 to 9:30: a streak of 9.5 minutes.
		for s := 0; s < 600; s += 30 {
			clock.At(time.Duration(s) * time.Second)
			if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly); d.Allowed || d.SoftThrottled {
				t.Fatalf("at %ds: %+v, want denied, not throttled", s, d)
			}
		}
		if throttled, _ := l.SoftThrottled(key); throttled {
			t.Fatal("throttled before ten minutes")
		}
		assertThrottledGauge(t, reg, 0)

		clock.At(10 * time.Minute)
		if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly); !d.SoftThrottled {
			t.Fatalf("denial at 10:00: %+v, want SoftThrottled", d)
		}
		throttled, since := l.SoftThrottled(key)
		if !throttled || !since.Equal(start.Add(10*time.Minute)) {
			t.Fatalf("SoftThrottled = %v, %v; want true, %v", throttled, since, start.Add(10*time.Minute))
		}
		assertThrottledGauge(t, reg, 1)

		// The mode covers every category of the key, admitted or not.
		if d := l.Allow(key, key, helpdeskflow.RateTicketsRead, hourly); !d.Allowed || !d.SoftThrottled {
			t.Errorf("read of a throttled key: %+v, want admitted and SoftThrottled", d)
		}
		// Other keys are not throttled.
		if d := l.Allow(uuid.New(), uuid.New(), helpdeskflow.RateTicketsCreate, hourly); d.SoftThrottled {
			t.Errorf("another key: %+v, want not SoftThrottled", d)
		}
	})

	t.Run("streak spans categories", func(t *testing.T) {
		l, clock, _, key := throttleSetup(t)
		l.Allow(key, key, helpdeskflow.RateTicketsRead, hourly)
		categories := []string{helpdeskflow.RateTicketsCreate, helpdeskflow.RateTicketsRead}
		var d ratelimit.Decision
		for i, s := 0, 0; s <= 600; i, s = i+1, s+50 {
			clock.At(time.Duration(s) * time.Second)
			d = l.Allow(key, key, categories[i%2], hourly)
		}
		if !d.SoftThrottled {
			t.Fatalf("denials alternating between categories for ten minutes: %+v, want SoftThrottled", d)
		}
	})

	t.Run("a gap of exactly StreakGap continues the streak", func(t *testing.T) {
		l, clock, _, key := throttleSetup(t)
		var d ratelimit.Decision
		for s := 0; s <= 600; s += 60 {
			clock.At(time.Duration(s) * time.Second)
			d = l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly)
		}
		if !d.SoftThrottled {
			t.Fatalf("denials every 60 s for ten minutes: %+v, want SoftThrottled", d)
		}
	})

	t.Run("gaps longer than StreakGap restart the streak", func(t *testing.T) {
		l, clock, reg, key := throttleSetup(t)
		for s := 0; s <= 1800; s += 61 {
			clock.At(time.Duration(s) * time.Second)
			if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly); d.Allowed || d.SoftThrottled {
				t.Fatalf("at %ds: %+v, want denied, not throttled", s, d)
			}
		}
		assertThrottledGauge(t, reg, 0)
	})

	t.Run("leaves after Recovery without denials", func(t *testing.T) {
		l, clock, reg, key := throttleSetup(t)
		for s := 0; s <= 720; s += 30 { // throttled at 10:00, last denial 12:00
			clock.At(time.Duration(s) * time.Second)
			l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly)
		}
		assertThrottledGauge(t, reg, 1)

		clock.At(17*time.Minute - time.Millisecond)
		if throttled, _ := l.SoftThrottled(key); !throttled {
			t.Fatal("left the mode before Recovery")
		}
		// An admitted request is no denial and does not stop the recovery.
		if d := l.Allow(key, key, helpdeskflow.RateTicketsRead, hourly); !d.Allowed || !d.SoftThrottled {
			t.Fatalf("read during recovery: %+v, want admitted and SoftThrottled", d)
		}
		clock.At(17 * time.Minute)
		if throttled, since := l.SoftThrottled(key); throttled || !since.IsZero() {
			t.Fatalf("SoftThrottled after Recovery = %v, %v; want false, zero", throttled, since)
		}
		assertThrottledGauge(t, reg, 0)

		// Re-entering takes another ten minutes of denials.
		for s := 17 * 60; s <= 26*60; s += 30 {
			clock.At(time.Duration(s) * time.Second)
			if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly); d.SoftThrottled {
				t.Fatalf("at %ds: throttled again after %ds of denials", s, s-17*60)
			}
		}
		clock.At(27 * time.Minute)
		if d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly); !d.SoftThrottled {
			t.Fatalf("denial at 27:00: %+v, want SoftThrottled again", d)
		}
		assertThrottledGauge(t, reg, 1)
	})

	t.Run("a denial during recovery restarts it", func(t *testing.T) {
		l, clock, _, key := throttleSetup(t)
		for s := 0; s <= 600; s += 30 {
			clock.At(time.Duration(s) * time.Second)
			l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly)
		}
		clock.At(14 * time.Minute)
		l.Allow(key, key, helpdeskflow.RateTicketsCreate, hourly)
		clock.At(18 * time.Minute)
		if throttled, _ := l.SoftThrottled(key); !throttled {
			t.Fatal("left the mode 4 minutes after a denial")
		}
		clock.At(19 * time.Minute)
		if throttled, _ := l.SoftThrottled(key); throttled {
			t.Fatal("still throttled 5 minutes after the last denial")
		}
	})

	t.Run("custom settings", func(t *testing.T) {
		clock := &fakeClock{now: start}
		l, err := ratelimit.New(ratelimit.Config{Origin: start, Now: clock.Now, SoftThrottleAfter: time.Minute, StreakGap: 5 * time.Second, Recovery: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		key := uuid.New()
		l.Allow(key, key, helpdeskflow.RateAdmin, hourly)
		var d ratelimit.Decision
		for s := 0; s <= 60; s += 5 {
			clock.At(time.Duration(s) * time.Second)
			d = l.Allow(key, key, helpdeskflow.RateAdmin, hourly)
		}
		if !d.SoftThrottled {
			t.Fatalf("after a minute of denials 5 s apart: %+v, want SoftThrottled", d)
		}
		clock.At(70 * time.Second)
		if throttled, _ := l.SoftThrottled(key); throttled {
			t.Fatal("still throttled 10 s after the last denial")
		}
	})
}

func TestLimiter_denialMetric(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	l, _ := newLimiter(t, reg)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 1, Window: time.Minute}
	for range 3 {
		l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	}
	l.Allow(key, key, helpdeskflow.RateAdmin, limit)
	l.Allow(key, key, helpdeskflow.RateAdmin, limit)
	expected := `# HELP helpdeskflow_rate_limited_requests_total Requests denied by a rate limit, by rate limit category.
# TYPE helpdeskflow_rate_limited_requests_total counter
helpdeskflow_rate_limited_requests_total{category="admin"} 1
helpdeskflow_rate_limited_requests_total{category="customers.read"} 0
helpdeskflow_rate_limited_requests_total{category="customers.write"} 0
helpdeskflow_rate_limited_requests_total{category="events.read"} 0
helpdeskflow_rate_limited_requests_total{category="tickets.create"} 2
helpdeskflow_rate_limited_requests_total{category="tickets.read"} 0
helpdeskflow_rate_limited_requests_total{category="tickets.update"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected), "helpdeskflow_rate_limited_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestNew_registrationError(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := ratelimit.New(ratelimit.Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	_, err := ratelimit.New(ratelimit.Config{Registerer: reg})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EInternal; got != want {
		t.Fatalf("second New on one registry: error code %q (%v), want %q", got, err, want)
	}
}

// Buckets in which nothing counts any more are dropped and their keys
// forgotten, lazily, by the calls of other keys; a throttled key is kept
// until it recovers.
func TestLimiter_sweep(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	l, clock := newLimiter(t, reg)
	limit := helpdeskflow.RateLimit{Limit: 5, Window: time.Minute}
	for range 1000 {
		l.Allow(uuid.New(), uuid.New(), helpdeskflow.RateTicketsCreate, limit)
	}
	throttled := uuid.New()
	l.Allow(throttled, throttled, helpdeskflow.RateAdmin, hourly)
	if keys, buckets := ratelimit.Held(l); keys != 1001 || buckets != 1001 {
		t.Fatalf("Held = %d keys, %d buckets; want 1001, 1001", keys, buckets)
	}
	for s := 0; s <= 600; s += 30 {
		clock.At(time.Duration(s) * time.Second)
		l.Allow(throttled, throttled, helpdeskflow.RateAdmin, hourly)
	}
	assertThrottledGauge(t, reg, 1)

	// Two minutes of another key's calls, four a second, sweep every
	// shard; by then the first keys' requests no longer count, but the
	// throttled key's single admission counts for an hour.
	other := uuid.New()
	for i := range 480 {
		clock.At(10*time.Minute + time.Duration(i)*ms(250))
		l.Allow(other, other, helpdeskflow.RateTicketsRead, limit)
	}
	if keys, buckets := ratelimit.Held(l); keys != 2 || buckets != 2 {
		t.Fatalf("Held = %d keys, %d buckets; want 2, 2 (the throttled key and the caller)", keys, buckets)
	}
	// The throttled key recovers without being called; the sweep notices.
	for i := range 480 {
		clock.At(16*time.Minute + time.Duration(i)*ms(250))
		l.Allow(other, other, helpdeskflow.RateTicketsRead, limit)
	}
	assertThrottledGauge(t, reg, 0)
	if u := l.Usage(throttled, helpdeskflow.RateAdmin, hourly); u.Used != 1 {
		t.Errorf("Usage of the recovered key = %+v, want its admission still counted", u)
	}
}

func TestLimiter_Allow_noAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	roomy := helpdeskflow.RateLimit{Limit: helpdeskflow.MaxRateLimit, Window: time.Hour}
	l.Allow(key, key, helpdeskflow.RateTicketsRead, roomy)
	if n := testing.AllocsPerRun(1000, func() {
		clock.Advance(time.Millisecond)
		l.Allow(key, key, helpdeskflow.RateTicketsRead, roomy)
	}); n != 0 {
		t.Errorf("admitted: %v allocations per Allow, want 0", n)
	}
	tight := helpdeskflow.RateLimit{Limit: 1, Window: time.Hour}
	l.Allow(key, key, helpdeskflow.RateAdmin, tight)
	if n := testing.AllocsPerRun(1000, func() {
		clock.Advance(time.Millisecond)
		l.Allow(key, key, helpdeskflow.RateAdmin, tight)
	}); n != 0 {
		t.Errorf("denied: %v allocations per Allow, want 0", n)
	}
}

func TestLimiter_clockGoingBack(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 2, Window: time.Minute}
	clock.At(30 * time.Second)
	l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	// The key's time stays at 30 s: the requests still count.
	clock.At(-time.Hour)
	d := l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	if d.Allowed || d.RetryAfter != 61*time.Second {
		t.Fatalf("after the clock went back: %+v, want denied with RetryAfter 61s", d)
	}
}

// AllowN admits a batch only when all its items fit, counts each, and
// says when they will fit; a batch larger than the limit never fits.
func TestLimiter_AllowN(t *testing.T) {
	l, clock := newLimiter(t, nil)
	key := uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 10, Window: 60 * time.Second}
	clock.At(0)
	if d := l.AllowN(key, key, helpdeskflow.RateTicketsCreate, limit, 4); !d.Allowed || d.Remaining != 6 {
		t.Fatalf("4 of 10: %+v, want admitted with 6 remaining", d)
	}
	clock.At(30 * time.Second)
	if d := l.AllowN(key, key, helpdeskflow.RateTicketsCreate, limit, 6); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("6 more: %+v, want admitted with 0 remaining", d)
	}
	clock.At(31 * time.Second)
	d := l.AllowN(key, key, helpdeskflow.RateTicketsCreate, limit, 3)
	if d.Allowed {
		t.Fatalf("3 more over the limit: %+v, want denied", d)
	}
	// The 4 of time 0 stop counting after the window (and its last slot):
	// then 3 fit, not before.
	wait := d.RetryAfter
	if wait <= 29*time.Second || wait > 31*time.Second {
		t.Fatalf("RetryAfter %v, want about 30 s (until the first 4 leave the window)", wait)
	}
	clock.At(31*time.Second + wait - time.Nanosecond)
	if d := l.AllowN(key, key, helpdeskflow.RateTicketsCreate, limit, 3); d.Allowed {
		t.Fatalf("a nanosecond before RetryAfter: admitted")
	}
	clock.At(31*time.Second + wait)
	if d := l.AllowN(key, key, helpdeskflow.RateTicketsCreate, limit, 3); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("at RetryAfter: %+v, want admitted with 1 remaining", d)
	}
	if d := l.AllowN(uuid.New(), uuid.New(), helpdeskflow.RateTicketsCreate, limit, 11); d.Allowed || d.RetryAfter != limit.Window {
		t.Fatalf("11 items under a limit of 10: %+v, want denied with RetryAfter the window", d)
	}
}
