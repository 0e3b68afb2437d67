package http

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/access"
)

// countingAuth counts the lookups that reach the event store.
type countingAuth struct {
	*access.Cache
	lookups atomic.Int64
}

func (c *countingAuth) Authenticate(ctx context.Context, key string) (helpdeskflow.Access, error) {
	if _, ok := c.Cached(key); !ok {
		c.lookups.Add(1)
	}
	return c.Cache.Authenticate(ctx, key)
}

// TestAdmit_UnauthenticatedPerClientIP: requests without a valid key are
// counted per client IP in their own bucket. Over it they get 429 (with
// Retry-After, naming the category) instead of 401, a made-up key is no
// longer looked up in the database and a body is not read; another IP and
// a valid key this process holds are not affected. Probes are not counted.
func TestAdmit_UnauthenticatedPerClientIP(t *testing.T) {
	f := newAdmitFixture(t)
	auth := &countingAuth{Cache: f.cache}
	s := f.server(t, Config{Auth: auth, UnauthenticatedLimit: helpdeskflow.RateLimit{Limit: 3, Window: time.Minute}})
	key := f.key

	tickets := route{method: "GET", path: "/v1/tickets", category: helpdeskflow.RateTicketsRead}
	admit := func(ip, bearer, body string, rt route) (*httptest.ResponseRecorder, error) {
		r := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		r.RemoteAddr = ip + ":1234"
		r = r.WithContext(context.WithValue(r.Context(), clientIPKey, clientIP(r, nil)))
		w := httptest.NewRecorder()
		var entry helpdeskflow.APIRequest
		return w, s.admit(w, r, rt, &entry)
	}
	unknown, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := admit("192.0.2.7", unknown, "", tickets); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
			t.Fatalf("unknown key %d: %v, want unauthorized", i, err)
		}
	}
	if n := auth.lookups.Load(); n != 3 {
		t.Fatalf("%d lookups of the unknown key, want 3", n)
	}
	w, err := admit("192.0.2.7", unknown, "", tickets)
	if helpdeskflow.ErrorCode(err) != helpdeskflow.ERateLimited || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Header().Get("RateLimit-Policy"), `"unauthenticated";q=3`) {
		t.Fatalf("over the budget: %v, headers %v; want rate_limited with Retry-After", err, w.Header())
	}
	if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0].Problem != RateUnauthenticated {
		t.Errorf("details = %+v, want the category %q", d, RateUnauthenticated)
	}
	if n := auth.lookups.Load(); n != 3 {
		t.Errorf("the refused key was looked up (%d lookups, want 3)", n)
	}
	// Missing keys, keys in the body and public routes share the budget.
	if _, err := admit("192.0.2.7", "", `{"api_key": "`+unknown+`"}`, tickets); helpdeskflow.ErrorCode(err) != helpdeskflow.ERateLimited {
		t.Errorf("a key in the body over the budget: %v, want rate_limited", err)
	}
	if _, err := admit("192.0.2.7", "", "", route{method: "GET", path: "/v1/openapi.json", public: true}); helpdeskflow.ErrorCode(err) != helpdeskflow.ERateLimited {
		t.Errorf("a public route over the budget: %v, want rate_limited", err)
	}
	// What is not affected: probes, a valid key from the same address,
	// another address.
	if _, err := admit("192.0.2.7", "", "", route{method: "GET", path: "/healthz", public: true, probe: true}); err != nil {
		t.Errorf("a probe: %v", err)
	}
	if _, err := admit("192.0.2.7", key.Secret, "", tickets); err != nil {
		t.Errorf("a valid key from the limited address: %v", err)
	}
	if _, err := admit("198.51.100.9", "", `{"api_key": "x"}`, tickets); helpdeskflow.ErrorCode(err) != helpdeskflow.EKeyInWrongPlace {
		t.Errorf("another address: %v, want key_in_wrong_place", err)
	}
	// IPv6 addresses count per /64.
	for i := range 3 {
		admit("2001:db8::"+string(rune('1'+i)), "", "", tickets) //nolint:errcheck // counting
	}
	if _, err := admit("2001:db8::ffff", "", "", tickets); helpdeskflow.ErrorCode(err) != helpdeskflow.ERateLimited {
		t.Errorf("a fourth address of the same /64: %v, want rate_limited", err)
	}
}
