package http_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServer_Authentication(t *testing.T) {
	h := newHarness(t)
	valid := h.adminKey
	badChecksum := valid[:len(valid)-1] + map[bool]string{true: "A", false: "B"}[valid[len(valid)-1] != 'A']
	ticket := `{"subject":"s","customer":{"email":"a@example.com"},"message":{"body":"b"}}`

	cases := []struct {
		name, method, path, auth string
		body                     any
		status                   int
		code, reason             string
	}{
		{name: "no header", method: "GET", path: "/v1/tickets", status: 401, code: "unauthorized", reason: "missing"},
		{name: "basic scheme", method: "GET", path: "/v1/tickets", auth: "Basic " + valid, status: 401, code: "unauthorized", reason: "malformed"},
		{name: "bad checksum", method: "GET", path: "/v1/tickets", auth: "Bearer " + badChecksum, status: 401, code: "unauthorized", reason: "malformed"},
		{name: "unknown key", method: "GET", path: "/v1/tickets", auth: "Bearer " + newSecret(t), status: 401, code: "unauthorized", reason: "unknown_or_revoked"},
		{name: "key in query", method: "GET", path: "/v1/tickets?api_key=" + valid, status: 400, code: "key_in_wrong_place", reason: "key_in_wrong_place"},
		{name: "key in query with a valid header", method: "GET", path: "/v1/tickets?access_token=x", auth: "Bearer " + valid, status: 400, code: "key_in_wrong_place"},
		{name: "key in body, no header", method: "POST", path: "/v1/tickets", body: `{"api_key":"` + valid + `","subject":"s"}`, status: 400, code: "key_in_wrong_place"},
		{name: "key in body with a valid header", method: "POST", path: "/v1/tickets", auth: "Bearer " + valid, body: `{"api_key":"x"}`, status: 400, code: "key_in_wrong_place"},
		{name: "lower-case bearer", method: "POST", path: "/v1/tickets", auth: "bearer " + valid, body: ticket, status: 201},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.auth != "" {
				headers = []string{"Authorization", c.auth}
			}
			before := 0.0
			if c.reason != "" {
				before = testenv.Metric(t, h.reg, "helpdeskflow_auth_failures_total", "reason", c.reason)
			}
			r := h.do(c.method, c.path, "", c.body, headers...)
			h.want(r, c.status, c.code)
			if r.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if c.reason != "" {
				if got := testenv.Metric(t, h.reg, "helpdeskflow_auth_failures_total", "reason", c.reason) - before; got != 1 {
					t.Errorf("auth failures with reason %s grew by %v, want 1", c.reason, got)
				}
			}
			// The request log has every request, tied to the key when it
			// is known, never holding the key itself.
			entry := h.log.last()
			if entry.RequestID != r.header.Get("X-Request-Id") || entry.Status != c.status || entry.Route != "/v1/tickets" {
				t.Errorf("request log entry %+v does not match the response", entry)
			}
			if c.status == 201 && (entry.WorkspaceID != h.workspace || entry.KeyID == uuid.Nil) {
				t.Errorf("request log entry %+v is not tied to the key", entry)
			}
			if strings.Contains(fmt.Sprintf("%+v", entry), valid) {
				t.Errorf("request log entry holds the key: %+v", entry)
			}
		})
	}
}

func TestServer_APIKeys(t *testing.T) {
	h := newHarness(t)

	// Validation names each field.
	r := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "owner", "name": strings.Repeat("n", 201)})
	h.want(r, 400, "validation_failed")
	if !strings.Contains(r.raw, `"role"`) || !strings.Contains(r.raw, `"name"`) {
		t.Errorf("validation error does not name role and name: %s", r.raw)
	}

	r = h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent", "name": "zapier"})
	h.want(r, 201, "")
	agentKey, _ := r.body["key"].(string)
	agentID, _ := r.body["id"].(string)
	if !helpdeskflow.ValidAPIKeyFormat(agentKey) || r.body["prefix"] != helpdeskflow.APIKeyDisplayPrefix(agentKey) || r.body["role"] != "agent" {
		t.Fatalf("created key: %s", r.raw)
	}

	// The list shows prefixes only, never keys.
	r = h.do("GET", "/v1/api-keys", h.adminKey, nil)
	h.want(r, 200, "")
	if strings.Contains(r.raw, agentKey) || strings.Contains(r.raw, h.adminKey) || !strings.Contains(r.raw, agentID) {
		t.Fatalf("list: %s", r.raw)
	}
	if data, _ := r.body["data"].([]any); len(data) != 2 {
		t.Fatalf("list has %d keys, want 2: %s", len(data), r.raw)
	}

	// An agent key works on tickets but not on configuration or internal notes.
	h.want(h.do("GET", "/v1/tickets", agentKey, nil), 200, "")
	h.want(h.do("GET", "/v1/api-keys", agentKey, nil), 403, "forbidden")
	h.want(h.do("PUT", "/v1/ip-blocklist", agentKey, map[string]any{"cidrs": []string{}}), 403, "forbidden")
	h.want(h.do("GET", "/v1/tickets/"+uuid.NewString()+"?include_internal=true", agentKey, nil), 403, "forbidden")
	h.want(h.do("GET", "/v1/rate-limits", agentKey, nil), 200, "")

	// Last used is recorded (within a heartbeat of the access cache).
	testenv.Eventually(t, 10*time.Second, func() error {
		r := h.do("GET", "/v1/api-keys", h.adminKey, nil)
		if !strings.Contains(r.raw, `"last_used_at":"`) || strings.Count(r.raw, `"last_used_at":null`) > 0 {
			return fmt.Errorf("last_used_at not set on both keys: %s", r.raw)
		}
		return nil
	})

	// Revocation: refused at once, then gone.
	h.want(h.do("DELETE", "/v1/api-keys/"+agentID, h.adminKey, nil), 200, "")
	h.want(h.do("GET", "/v1/tickets", agentKey, nil), 401, "unauthorized")
	h.want(h.do("DELETE", "/v1/api-keys/"+agentID, h.adminKey, nil), 404, "not_found")
	h.want(h.do("DELETE", "/v1/api-keys/not-a-uuid", h.adminKey, nil), 404, "not_found")

	// The last admin key cannot be revoked: the workspace would be locked out.
	r = h.do("GET", "/v1/api-keys", h.adminKey, nil)
	adminID := r.body["data"].([]any)[0].(map[string]any)["id"].(string)
	h.want(h.do("DELETE", "/v1/api-keys/"+adminID, h.adminKey, nil), 409, "conflict")

	// Rotation: create a second admin key, revoke the first with it.
	r = h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "admin"})
	h.want(r, 201, "")
	newAdmin := r.body["key"].(string)
	h.want(h.do("DELETE", "/v1/api-keys/"+adminID, newAdmin, nil), 200, "")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil), 401, "unauthorized")
	h.want(h.do("GET", "/v1/tickets", newAdmin, nil), 200, "")

	// Creating and revoking are events on the workspace's stream.
	events, err := h.store.Load(t.Context(), h.workspace, h.workspace)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := "workspace.created api_key.created api_key.created api_key.revoked api_key.created api_key.revoked"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("workspace events: %s, want %s", got, want)
	}
	if md := events[3].Metadata; md.Actor.Type != helpdeskflow.ActorAPIKey || md.RequestID == "" {
		t.Errorf("revocation metadata %+v does not name the key and request", md)
	}
}

func TestServer_IPBlocklist(t *testing.T) {
	h := newHarness(t, netip.MustParsePrefix("127.0.0.1/32"))
	r := h.do("PUT", "/v1/ip-blocklist", h.adminKey, map[string]any{"cidrs": []string{"10.0.0.0/8", "nonsense", "2001:db8::/129", "127.0.0.0/8"}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{"cidrs[1]", "cidrs[2]", "cidrs[3]"} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("error does not name %s: %s", field, r.raw)
		}
	}
	if strings.Contains(r.raw, "cidrs[0]") {
		t.Errorf("a valid entry is reported: %s", r.raw)
	}

	r = h.do("PUT", "/v1/ip-blocklist", h.adminKey, map[string]any{"cidrs": []string{"203.0.113.77/24", "2001:db8::1", "203.0.113.0/24"}})
	h.want(r, 200, "")
	if got := fmt.Sprint(r.body["cidrs"]); got != "[203.0.113.0/24 2001:db8::1/128]" {
		t.Errorf("stored list %s, want canonical and deduplicated", got)
	}
	h.want(h.do("GET", "/v1/ip-blocklist", h.adminKey, nil), 200, "")

	// 127.0.0.1 is a trusted proxy: the client is the right-most untrusted
	// X-Forwarded-For address.
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil, "X-Forwarded-For", "203.0.113.9"), 401, "unauthorized")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil, "X-Forwarded-For", "203.0.113.9, 127.0.0.1"), 401, "unauthorized")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil, "X-Forwarded-For", "2001:db8::1"), 401, "unauthorized")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil, "X-Forwarded-For", "203.0.113.9, 198.51.100.1"), 200, "")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil), 200, "")
	if got := testenv.Metric(t, h.reg, "helpdeskflow_auth_failures_total", "reason", "blocked_ip"); got != 3 {
		t.Errorf("blocked_ip failures %v, want 3", got)
	}
	// Another workspace is not affected by this one's list.
	_, other := h.newWorkspace()
	h.want(h.do("GET", "/v1/tickets", other, nil, "X-Forwarded-For", "203.0.113.9"), 200, "")
}

func TestServer_IPBlocklistIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	h := newHarness(t) // no trusted proxies
	h.want(h.do("PUT", "/v1/ip-blocklist", h.adminKey, map[string]any{"cidrs": []string{"203.0.113.0/24"}}), 200, "")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil, "X-Forwarded-For", "203.0.113.9"), 200, "")
	if got := h.log.last().ClientIP; got != "127.0.0.1" {
		t.Errorf("logged client IP %s, want the socket's 127.0.0.1", got)
	}
}

func TestServer_RateLimits(t *testing.T) {
	h := newHarness(t)
	r := h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{
		"limits":                 map[string]any{"tickets.read": map[string]any{"limit": 0, "window_seconds": 7200}, "tickets.nope": nil},
		"soft_throttle_delay_ms": 99999,
	})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{"limits.tickets.read.limit", "limits.tickets.read.window_seconds", "limits.tickets.nope", "soft_throttle_delay_ms"} {
		if !strings.Contains(r.raw, `"`+field+`"`) {
			t.Errorf("error does not name %s: %s", field, r.raw)
		}
	}
	h.want(h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{
		"limits": map[string]any{"tickets.read": map[string]any{"limit": 3, "window_seconds": 60}},
	}), 200, "")

	for i := 2; i >= 0; i-- {
		r := h.do("GET", "/v1/tickets", h.adminKey, nil)
		h.want(r, 200, "")
		if got := r.header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(i) {
			t.Errorf("remaining %s, want %d", got, i)
		}
		if got, want := r.header.Get("RateLimit-Policy"), `"tickets.read";q=3;w=60`; got != want {
			t.Errorf("RateLimit-Policy %q, want %q", got, want)
		}
		if got, want := r.header.Get("RateLimit"), fmt.Sprintf(`"tickets.read";r=%d;t=61`, i); got != want {
			t.Errorf("RateLimit %q, want %q", got, want)
		}
		if r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("X-RateLimit headers: %v", r.header)
		}
	}
	r = h.do("GET", "/v1/tickets/"+uuid.NewString(), h.adminKey, nil)
	h.want(r, 429, "rate_limited")
	if !strings.Contains(r.raw, "tickets.read") {
		t.Errorf("429 does not name the category: %s", r.raw)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 61 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Other categories have their own buckets; so do other keys.
	h.want(h.do("GET", "/v1/rate-limits", h.adminKey, nil), 200, "")
	r = h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"})
	h.want(r, 201, "")
	h.want(h.do("GET", "/v1/tickets", r.body["key"].(string), nil), 200, "")

	// Waiting one second less than Retry-After is not enough; waiting it is.
	h.clock.Advance(time.Duration(retry-1) * time.Second)
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil), 429, "rate_limited")
	h.clock.Advance(time.Second)
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil), 200, "")

	r = h.do("GET", "/v1/rate-limits", h.adminKey, nil)
	h.want(r, 200, "")
	limits := r.body["limits"].([]any)
	if len(limits) != len(helpdeskflow.RateLimitCategories) {
		t.Fatalf("rate-limits lists %d categories: %s", len(limits), r.raw)
	}
	for _, l := range limits {
		l := l.(map[string]any)
		// The first three have left the window; the one after the wait counts.
		if l["category"] == "tickets.read" && (l["limit"] != 3.0 || l["used"] != 1.0 || l["remaining"] != 2.0) {
			t.Errorf("tickets.read usage %v, want limit 3, used 1, remaining 2", l)
		}
		if l["category"] == "tickets.create" && l["limit"] != 1200.0 {
			t.Errorf("tickets.create limit %v, want the default 1200", l["limit"])
		}
	}
	if testenv.Metric(t, h.reg, "helpdeskflow_rate_limited_requests_total", "category", "tickets.read") != 2 {
		t.Error("rate_limited_requests_total{category=tickets.read} is not 2")
	}
	// Setting a category to null restores its default.
	r = h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{"limits": map[string]any{"tickets.read": nil}})
	h.want(r, 200, "")
	h.want(h.do("GET", "/v1/tickets", h.adminKey, nil), 200, "")
}

func TestServer_SoftThrottle(t *testing.T) {
	h := newHarness(t)
	h.want(h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{
		"limits":                 map[string]any{"tickets.read": map[string]any{"limit": 1, "window_seconds": 1}},
		"soft_throttle_delay_ms": 5,
	}), 200, "")
	overLimit := func() response {
		h.do("GET", "/v1/tickets", h.adminKey, nil)
		return h.do("GET", "/v1/tickets", h.adminKey, nil)
	}
	// Over the limit every 30 s for 10 minutes: not yet throttled.
	for i := 0; i < 20; i++ {
		if r := overLimit(); r.status != 429 || r.header.Get("X-HDF-Soft-Throttle-Delay-Ms") != "" {
			t.Fatalf("minute %.1f: %d, throttle header %q", float64(i)/2, r.status, r.header.Get("X-HDF-Soft-Throttle-Delay-Ms"))
		}
		h.clock.Advance(30 * time.Second)
	}
	// Past 10 minutes of exceeding: soft-throttled, on every response.
	r := overLimit()
	if got := r.header.Get("X-HDF-Soft-Throttle-Delay-Ms"); got != "5" || r.status != 429 {
		t.Fatalf("after 10 minutes over the limit: %d, throttle header %q, want 429 and 5", r.status, got)
	}
	// The 429 whose denial crossed the 10 minutes is already delayed.
	if got := testenv.Metric(t, h.reg, "helpdeskflow_soft_throttle_delayed_requests_total"); got != 1 {
		t.Errorf("delayed responses %v, want 1", got)
	}
	h.clock.Advance(2 * time.Second)
	r = h.do("GET", "/v1/rate-limits", h.adminKey, nil)
	if r.header.Get("X-HDF-Soft-Throttle-Delay-Ms") != "5" || !strings.Contains(r.raw, `"soft_throttle":{"active":true`) {
		t.Errorf("rate-limits while throttled: %v %s", r.header, r.raw)
	}
	if testenv.Metric(t, h.reg, "helpdeskflow_soft_throttled_workspaces") != 1 {
		t.Error("soft_throttled_workspaces is not 1")
	}
	// Soft throttle follows the workspace: its other keys, new ones
	// included, are throttled too; another workspace's are not.
	other := h.agentKey()
	r = h.do("GET", "/v1/rate-limits", other, nil)
	if r.header.Get("X-HDF-Soft-Throttle-Delay-Ms") != "5" || !strings.Contains(r.raw, `"soft_throttle":{"active":true`) {
		t.Errorf("another key of the throttled workspace: %v %s", r.header, r.raw)
	}
	_, stranger := h.newWorkspace()
	if r := h.do("GET", "/v1/rate-limits", stranger, nil); r.header.Get("X-HDF-Soft-Throttle-Delay-Ms") != "" {
		t.Errorf("another workspace's key is throttled: %v", r.header)
	}
	// Under the limit for a while: back to normal.
	h.clock.Advance(6 * time.Minute)
	r = h.do("GET", "/v1/tickets", h.adminKey, nil)
	h.want(r, 200, "")
	if got := r.header.Get("X-HDF-Soft-Throttle-Delay-Ms"); got != "" {
		t.Errorf("after 6 quiet minutes: throttle header %q, want none", got)
	}
}
