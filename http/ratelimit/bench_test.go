package ratelimit_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
)

// BenchmarkAllow is one key and one category from one goroutine, on a clock
// that moves 100 µs a call: "admitted" stays under its limit, "denied" is
// over it on every call after the first.
func BenchmarkAllow(b *testing.B) {
	for _, bc := range []struct {
		name  string
		limit helpdeskflow.RateLimit
	}{
		{"admitted", helpdeskflow.RateLimit{Limit: helpdeskflow.MaxRateLimit, Window: time.Minute}},
		{"denied", helpdeskflow.RateLimit{Limit: 1, Window: time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			now := start
			l, err := ratelimit.New(ratelimit.Config{Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			key := uuid.New()
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(100 * time.Microsecond)
				l.Allow(key, key, helpdeskflow.RateTicketsCreate, bc.limit)
			}
		})
	}
}

// BenchmarkAllowParallel spreads calls over 1,000 keys from GOMAXPROCS
// goroutines with the real clock; the limit is high enough that nearly
// every call is admitted.
func BenchmarkAllowParallel(b *testing.B) {
	l, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]uuid.UUID, 1000)
	for i := range keys {
		keys[i] = uuid.New()
	}
	limit := helpdeskflow.RateLimit{Limit: helpdeskflow.MaxRateLimit, Window: time.Second}
	for _, key := range keys {
		l.Allow(key, key, helpdeskflow.RateTicketsCreate, limit)
	}
	var next atomic.Uint64
	var denied atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1) * 7919)
		for pb.Next() {
			i++
			if !l.Allow(keys[i%len(keys)], keys[i%len(keys)], helpdeskflow.RateTicketsCreate, limit).Allowed {
				denied.Add(1)
			}
		}
	})
	b.ReportMetric(float64(denied.Load())/float64(b.N), "denied/op")
}
