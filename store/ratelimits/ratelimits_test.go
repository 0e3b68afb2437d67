package ratelimits_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/ratelimits"
)

// start is the fake clock's start, and the limiters' origin.
var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) At(offset time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = start.Add(offset)
}

// newLimiters returns n limiters on one fake clock sharing shared, as n
// API processes would, and their registries.
func newLimiters(t *testing.T, shared ratelimit.Shared, n int) ([]*ratelimit.Limiter, []*prometheus.Registry, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: start}
	limiters, regs := make([]*ratelimit.Limiter, n), make([]*prometheus.Registry, n)
	for i := range limiters {
		regs[i] = prometheus.NewRegistry()
		l, err := ratelimit.New(ratelimit.Config{Now: clock.Now, Shared: shared, Registerer: regs[i]})
		if err != nil {
			t.Fatal(err)
		}
		limiters[i] = l
	}
	return limiters, regs, clock
}

// syncAll makes every limiter exchange twice: in the first round the
// later ones learn of the earlier ones' admissions, in the second the
// earlier ones of the later ones'.
func syncAll(t *testing.T, limiters []*ratelimit.Limiter) {
	t.Helper()
	for range 2 {
		for _, l := range limiters {
			if err := l.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestShared_limitHoldsAcrossProcesses: with an exchange between
// requests, two limiters admit together exactly the limit, and their
// headers' figures (Remaining, RetryAfter, Reset) are those of the shared
// count.
func TestShared_limitHoldsAcrossProcesses(t *testing.T) {
	limiters, _, clock := newLimiters(t, ratelimits.New(testenv.Postgres(t)), 2)
	b := limiters[1]
	workspace, key := uuid.New(), uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 10, Window: time.Minute}

	// A process that serves a key for the first time knows only its own
	// count until its next exchange.
	for _, l := range limiters {
		if d := l.Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit); !d.Allowed || d.Remaining != 9 {
			t.Fatalf("first request: %+v", d)
		}
	}
	syncAll(t, limiters)
	// A load balancer alternates between a and b, with exchanges in
	// between: the figures are those of the shared count.
	for i := 2; i < 10; i++ {
		d := limiters[i%2].Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit)
		if !d.Allowed {
			t.Fatalf("request %d denied: %+v", i, d)
		}
		if d.Remaining != limit.Limit-i-1 {
			t.Errorf("request %d: Remaining %d, want %d (the shared count)", i, d.Remaining, limit.Limit-i-1)
		}
		syncAll(t, limiters)
	}
	// Both are full now; the retry is when the slot of 0 s stops
	// counting, 61 s after it (W plus the slot width), so 41 s from 20 s.
	clock.At(20 * time.Second)
	for _, l := range limiters {
		d := l.Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit)
		if d.Allowed || d.Remaining != 0 || d.RetryAfter != 41*time.Second || d.Reset != 41*time.Second {
			t.Errorf("over the shared limit: %+v, want denied, Remaining 0, RetryAfter and Reset 41 s", d)
		}
	}
	if u := b.Usage(key, helpdeskflow.RateTicketsCreate, limit); u.Used != 10 || u.Remaining != 0 {
		t.Errorf("Usage on b: %+v, want 10 used", u)
	}
	// Once they expire, both admit again, 10 in all.
	clock.At(61 * time.Second)
	syncAll(t, limiters)
	for i := range 11 {
		d := limiters[i%2].Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit)
		if d.Allowed != (i < 10) {
			t.Errorf("after the first slot expired, request %d: %+v", i, d)
		}
		syncAll(t, limiters)
	}
}

// TestShared_overshootIsOneExchange: without exchanges in between, each
// process admits what it sees room for; one exchange later the other
// processes' admissions count, so the excess is what the others admitted
// since the last exchange.
func TestShared_overshootIsOneExchange(t *testing.T) {
	limiters, _, _ := newLimiters(t, ratelimits.New(testenv.Postgres(t)), 4)
	workspace, key := uuid.New(), uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 100, Window: time.Minute}
	admitted := 0
	// Rounds of 8 requests (2 per process), then an exchange.
	for range 30 {
		for i := range 8 {
			if limiters[i%4].Allow(workspace, key, helpdeskflow.RateTicketsRead, limit).Allowed {
				admitted++
			}
		}
		syncAll(t, limiters)
	}
	// Each process sees every admission before the round: the round admits
	// at most 2 per process.
	if admitted < limit.Limit || admitted > limit.Limit+8-1 {
		t.Errorf("admitted %d, want between %d and %d", admitted, limit.Limit, limit.Limit+7)
	}
}

// TestShared_softThrottleFollowsTheWorkspace: denials of two keys of one
// workspace on two processes make one streak, and the workspace is
// throttled on every process, also for keys and processes that were never
// denied.
func TestShared_softThrottleFollowsTheWorkspace(t *testing.T) {
	limiters, regs, clock := newLimiters(t, ratelimits.New(testenv.Postgres(t)), 3)
	a, b, c := limiters[0], limiters[1], limiters[2]
	workspace, key1, key2 := uuid.New(), uuid.New(), uuid.New()
	hourly := helpdeskflow.RateLimit{Limit: 1, Window: time.Hour}
	a.Allow(workspace, key1, helpdeskflow.RateTicketsCreate, hourly)
	b.Allow(workspace, key2, helpdeskflow.RateTicketsCreate, hourly)
	c.Allow(workspace, uuid.New(), helpdeskflow.RateTicketsRead, hourly) // c only serves the workspace
	// a's key is denied every 30 s for the first 5 minutes, b's from then
	// on: neither process alone has a streak of 10 minutes.
	for s := 0; s <= 600; s += 30 {
		clock.At(time.Duration(s) * time.Second)
		l, key := a, key1
		if s > 300 {
			l, key = b, key2
		}
		if d := l.Allow(workspace, key, helpdeskflow.RateTicketsCreate, hourly); d.Allowed {
			t.Fatalf("at %d s: admitted", s)
		}
		syncAll(t, limiters)
	}
	for i, l := range limiters {
		if throttled, _ := l.SoftThrottled(workspace); !throttled {
			t.Errorf("process %d: the workspace is not throttled after 10 minutes of its keys' denials", i)
		}
		if got := testenv.Metric(t, regs[i], "helpdeskflow_soft_throttled_workspaces"); got != 1 {
			t.Errorf("process %d: soft_throttled_workspaces %v, want 1", i, got)
		}
	}
	if d := c.Allow(workspace, uuid.New(), helpdeskflow.RateTicketsRead, hourly); !d.Allowed || !d.SoftThrottled {
		t.Errorf("a new key of the workspace on c: %+v, want admitted and SoftThrottled", d)
	}
	if throttled, _ := c.SoftThrottled(uuid.New()); throttled {
		t.Error("another workspace is throttled")
	}
	// Five quiet minutes after the last denial, every process lets go.
	clock.At(15 * time.Minute)
	syncAll(t, limiters)
	for i, l := range limiters {
		if throttled, _ := l.SoftThrottled(workspace); throttled {
			t.Errorf("process %d: still throttled 5 minutes after the last denial", i)
		}
	}
}

// TestShared_failureFallsBackToLocalCounts: when Postgres cannot be
// reached, requests are still decided, on the counts the process has, and
// the failures are counted.
func TestShared_failureFallsBackToLocalCounts(t *testing.T) {
	db := testenv.Postgres(t)
	limiters, regs, _ := newLimiters(t, ratelimits.New(db), 2)
	a, b := limiters[0], limiters[1]
	workspace, key := uuid.New(), uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 4, Window: time.Minute}
	a.Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit)
	b.Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit)
	syncAll(t, limiters)
	db.Close()
	for _, l := range limiters {
		if err := l.Sync(context.Background()); err == nil {
			t.Fatal("Sync succeeded on a closed database")
		}
	}
	// a knows of 2 admissions: 2 more fit, then it denies.
	for i := range 3 {
		if d := a.Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit); d.Allowed != (i < 2) {
			t.Errorf("request %d with Postgres down: %+v", i, d)
		}
	}
	if got := testenv.Metric(t, regs[0], "helpdeskflow_rate_limit_sync_failures_total"); got != 1 {
		t.Errorf("sync failures %v, want 1", got)
	}
}

// TestShared_unsharedCategories: buckets of Config.Unshared categories
// stay in their process.
func TestShared_unsharedCategories(t *testing.T) {
	shared := ratelimits.New(testenv.Postgres(t))
	clock := &fakeClock{now: start}
	limiters := make([]*ratelimit.Limiter, 2)
	for i := range limiters {
		l, err := ratelimit.New(ratelimit.Config{Now: clock.Now, Shared: shared, Unshared: []string{"per-ip"}})
		if err != nil {
			t.Fatal(err)
		}
		limiters[i] = l
	}
	workspace, key := uuid.New(), uuid.New()
	limit := helpdeskflow.RateLimit{Limit: 1, Window: time.Minute}
	for _, l := range limiters {
		l.Allow(workspace, key, "per-ip", limit)
		l.Allow(workspace, key, helpdeskflow.RateTicketsRead, limit)
	}
	syncAll(t, limiters)
	for i, l := range limiters {
		if u := l.Usage(key, "per-ip", limit); u.Used != 1 {
			t.Errorf("process %d: unshared category used %d, want its own 1", i, u.Used)
		}
		if u := l.Usage(key, helpdeskflow.RateTicketsRead, limit); u.Used != 2 {
			t.Errorf("process %d: shared category used %d, want 2", i, u.Used)
		}
	}
}
