package ratelimits_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/ratelimits"
)

// BenchmarkOvershoot measures how far over its limit a key gets when a
// client alternates between 4 API processes (4 limiters in this process,
// each exchanging through one Postgres table every 100 ms, as `serve`
// does) for 12 s against a limit of 500 per 5 s (100 a second), sending
// twice ("2x", 200 a second) or ten times ("10x", 1,000 a second) the
// limit's rate. It reports the most admissions in any 5 s window as
// overshoot_% over the limit; "per_process" is the same without sharing
// (each limiter alone, as before), the baseline. Run it with
// -benchtime=1x: each iteration is a whole 12 s run.
func BenchmarkOvershoot(b *testing.B) {
	db := testenv.Postgres(b)
	limit := helpdeskflow.RateLimit{Limit: 500, Window: 5 * time.Second}
	for _, rate := range []struct {
		name string
		rate int
	}{{"2x", 200}, {"10x", 1000}} {
		for _, c := range []struct {
			name   string
			shared ratelimit.Shared
		}{{"per_process", nil}, {"shared", ratelimits.New(db)}} {
			b.Run(rate.name+"/"+c.name, func(b *testing.B) {
				worst := 0.0
				for range b.N {
					worst = max(worst, overshoot(b, c.shared, 4, limit, rate.rate, 12*time.Second))
				}
				b.ReportMetric(worst, "overshoot_%")
			})
		}
	}
}

// overshoot runs processes limiters on shared, a client sending rate
// requests a second for d, alternating between them, and returns the most
// admissions in any window of limit.Window as a percentage over the limit.
func overshoot(b *testing.B, shared ratelimit.Shared, processes int, limit helpdeskflow.RateLimit, rate int, d time.Duration) float64 {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	limiters := make([]*ratelimit.Limiter, processes)
	for i := range limiters {
		l, err := ratelimit.New(ratelimit.Config{Shared: shared})
		if err != nil {
			b.Fatal(err)
		}
		limiters[i] = l
		wg.Add(1)
		go func() { defer wg.Done(); l.Run(ctx) }() //nolint:errcheck // returns nil when ctx ends
	}
	defer func() { cancel(); wg.Wait() }()

	workspace, key := uuid.New(), uuid.New()
	var admitted []time.Time
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		if limiters[i%processes].Allow(workspace, key, helpdeskflow.RateTicketsCreate, limit).Allowed {
			admitted = append(admitted, time.Now())
		}
	}
	sort.Slice(admitted, func(i, j int) bool { return admitted[i].Before(admitted[j]) })
	most := 0
	for lo, hi := 0, 0; hi < len(admitted); hi++ {
		for admitted[hi].Sub(admitted[lo]) > limit.Window {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	b.Logf("%d admitted of %d sent; at most %d in a window of %s (limit %d)", len(admitted), int(d.Seconds())*rate, most, limit.Window, limit.Limit)
	return 100 * float64(most-limit.Limit) / float64(limit.Limit)
}
