package http

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/ratelimit"
)

// BenchmarkAdmit measures what every authenticated request pays before its
// handler: Bearer parsing and key format check, the key lookup (a hit in
// the access cache, as for every request after a key's first), the IP
// blocklist, the rate limit with its five headers, and the role check.
// "public" is the same envelope for a route that needs no key: the
// difference is the cost of auth plus rate limiting.
//
//	go test -run '^$' -bench Admit -benchmem ./http/
func BenchmarkAdmit(b *testing.B) {
	store := testenv.Store(b)
	ctx, cancel := context.WithCancel(context.Background())
	access := eventstore.NewAccessCache(store, eventstore.AccessCacheConfig{})
	done := make(chan struct{})
	go func() { access.Run(ctx); close(done) }() //nolint:errcheck // nil when ctx ends
	b.Cleanup(func() { cancel(); <-done })
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}
	service := commands.New(commands.AdaptStore(store))
	workspaceID, key, err := service.CreateWorkspace(ctx, md, "bench")
	if err != nil {
		b.Fatal(err)
	}
	// A limit the benchmark never reaches: every call is admitted.
	_, err = service.SetRateLimits(ctx, md, workspaceID, commands.SetRateLimits{Limits: map[string]*helpdeskflow.RateLimitSetting{
		helpdeskflow.RateTicketsRead: {Limit: helpdeskflow.MaxRateLimit, WindowSeconds: 1},
	}})
	if err != nil {
		b.Fatal(err)
	}
	limiter, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{cfg: Config{Auth: access, Limiter: limiter}}
	s.authFailures, s.throttled = newAuthMetrics()
	// Warm the cache: it serves from memory once its listener is up.
	testenv.Eventually(b, 10*time.Second, func() error {
		_, err := access.Authenticate(ctx, key.Secret)
		return err
	})
	time.Sleep(100 * time.Millisecond)

	authenticated := route{method: "GET", path: "/v1/tickets", category: helpdeskflow.RateTicketsRead}
	public := route{method: "GET", path: "/healthz", public: true, probe: true}
	for _, bc := range []struct {
		name string
		rt   route
	}{{"public", public}, {"authenticated", authenticated}} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", bc.rt.path, nil)
			r.Header.Set("Authorization", "Bearer "+key.Secret)
			r.RemoteAddr = "192.0.2.1:1234"
			w := httptest.NewRecorder()
			var entry helpdeskflow.APIRequest
			b.ReportAllocs()
			for b.Loop() {
				rr := r.Clone(r.Context())
				if err := s.admit(w, rr, bc.rt, &entry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
