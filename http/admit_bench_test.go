package http

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	commandaccess "github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/access"
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
	f := newAdmitFixture(b)
	// A limit the benchmark never reaches: every call is admitted.
	_, err := f.service.SetRateLimits(context.Background(), f.md, f.workspaceID, commandaccess.SetRateLimits{Limits: map[string]*helpdeskflow.RateLimitSetting{
		helpdeskflow.RateTicketsRead: {Limit: helpdeskflow.MaxRateLimit, WindowSeconds: 1},
	}})
	if err != nil {
		b.Fatal(err)
	}
	s := f.server(b, Config{Auth: f.cache})
	key := f.key

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

// admitFixture is what admit needs around it: a running access cache on a
// new event store, and a workspace whose admin key the cache holds in
// memory.
type admitFixture struct {
	cache       *access.Cache
	service     *commandaccess.Service
	md          helpdeskflow.Metadata
	workspaceID uuid.UUID
	key         commandaccess.NewKey
}

func newAdmitFixture(tb testing.TB) admitFixture {
	tb.Helper()
	store := testenv.NewRooms(tb)
	ctx, cancel := context.WithCancel(context.Background())
	f := admitFixture{cache: access.NewCache(store.AccessStore, access.CacheConfig{}), service: commandaccess.New(postgres.Access(store.EventStore)),
		md: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}}
	done := make(chan struct{})
	go func() { f.cache.Run(ctx); close(done) }() //nolint:errcheck // nil when ctx ends
	tb.Cleanup(func() { cancel(); <-done })
	var err error
	if f.workspaceID, f.key, err = f.service.CreateWorkspace(ctx, f.md, "admit"); err != nil {
		tb.Fatal(err)
	}
	// The cache serves from memory once its listener is up.
	testenv.Eventually(tb, 10*time.Second, func() error {
		_, err := f.cache.Authenticate(ctx, f.key.Secret)
		if _, ok := f.cache.Cached(f.key.Secret); err == nil && !ok {
			return errors.New("the key is not held in memory yet")
		}
		return err
	})
	return f
}

// server is a Server with cfg and a limiter of its own.
func (f admitFixture) server(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	limiter, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Limiter = limiter
	s := &Server{cfg: cfg}
	s.authFailures, s.throttled = newAuthMetrics()
	return s
}
