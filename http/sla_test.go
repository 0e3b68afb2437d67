package http_test

import (
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// withSLAClock returns a copy of h whose service stamps events with clock
// and whose server shows SLA status at it, and an SLA timer worker on the
// same clock.
func (h *harness) withSLAClock(clock *testenv.Clock) (*harness, *pollers.SLAWorker) {
	h.t.Helper()
	service := testenv.NewCommands(h.store.EventStore, testenv.CommandOptions{Clock: clock.Now})
	cfg := h.cfg
	cfg.Tickets, cfg.Customers, cfg.Automations, cfg.Simulator, cfg.SLAPolicies = service.Tickets, service.Tickets, service.Rules, service.Tickets, service.Rules
	cfg.Registerer, cfg.Gatherer = nil, nil
	cfg.Now = clock.Now
	server, err := http.NewServer(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(server)
	h.t.Cleanup(srv.Close)
	c := *h
	c.url, c.server, c.service = srv.URL, server, service
	worker, err := pollers.NewSLAWorker(pollers.SLAWorkerConfig{Timers: h.store, Checker: service.Tickets, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.t.Fatal(err)
	}
	return &c, worker
}

func slaTarget(t *testing.T, r response, target string) map[string]any {
	t.Helper()
	sla, ok := r.body["sla"].(map[string]any)
	if !ok {
		t.Fatalf("no sla: %s", r.raw)
	}
	for _, x := range sla["targets"].([]any) {
		if x := x.(map[string]any); x["target"] == target {
			return x
		}
	}
	t.Fatalf("no %s target: %s", target, r.raw)
	return nil
}

func TestSLA_StatusThroughTheAPI(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	h, worker := newHarness(t).withSLAClock(clock)
	r := h.do("POST", "/v1/sla-policies", h.adminKey, map[string]any{"name": "Gold customers",
		"conditions":     map[string]any{"all": []any{when("customer.email_domain", "is", "example.com")}},
		"first_response": map[string]any{"minutes": 30, "warn_before_minutes": 5}, "resolution": map[string]any{"minutes": 120}})
	h.want(r, 201, "")
	policyID := r.body["id"].(string)
	h.want(h.do("POST", "/v1/sla-policies", h.adminKey, map[string]any{"name": "bad", "first_response": map[string]any{"minutes": 10, "warn_before_minutes": 10}}), 400, "validation_failed")

	r = h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Broken"))
	h.want(r, 201, "")
	id := r.body["id"].(string)
	fr := slaTarget(t, r, "first_response")
	if r.body["sla"].(map[string]any)["policy_id"] != policyID || fr["state"] != "active" || fr["due_at"] != "2026-03-02T09:30:00.000Z" || fr["warn_at"] != "2026-03-02T09:25:00.000Z" {
		t.Fatalf("SLA on create: %s", r.raw)
	}
	// The read shows the state at the time of the read; the worker records
	// the warning.
	clock.Advance(26 * time.Minute)
	if n, err := worker.Tick(t.Context()); err != nil || n != 1 {
		t.Fatalf("tick: %d %v", n, err)
	}
	r = h.do("GET", "/v1/tickets/"+id, h.adminKey, nil)
	if fr := slaTarget(t, r, "first_response"); fr["state"] != "warning" {
		t.Errorf("after 26 minutes: %v", fr)
	}
	// On hold pauses both clocks; the answer to the PATCH already says so.
	r = h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"status": "on_hold"})
	if res := slaTarget(t, r, "resolution"); res["state"] != "paused" || res["due_at"] != nil {
		t.Errorf("on hold: %v", res)
	}
	clock.Advance(time.Hour)
	r = h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"status": "open"})
	if res := slaTarget(t, r, "resolution"); res["due_at"] != "2026-03-02T12:00:00.000Z" || res["paused_seconds"] != 3600.0 {
		t.Errorf("resumed: %v", res)
	}
	// The first public agent reply fulfils first response.
	r = h.do("POST", "/v1/tickets/"+id+"/messages", h.adminKey, map[string]any{"body": "Looking into it"})
	if fr := slaTarget(t, r, "first_response"); fr["state"] != "fulfilled" || fr["fulfilled_at"] != "2026-03-02T10:26:00.000Z" {
		t.Errorf("after the reply: %v", fr)
	}
	// The audit shows the SLA events with the system as actor.
	var slaEntries int
	for _, e := range h.do("GET", "/v1/tickets/"+id+"/audit", h.adminKey, nil).body["data"].([]any) {
		switch e := e.(map[string]any); e["event_type"] {
		case "ticket.sla_policy_applied", "ticket.sla_warning":
			slaEntries++
			if e["channel"] != "system" {
				t.Errorf("SLA audit entry: %v", e)
			}
		}
	}
	if slaEntries != 2 {
		t.Errorf("want the policy and the warning in the audit, got %d entries", slaEntries)
	}
}

// TestSLA_KeptEncodingShowsStatusAtReadTime: a ticket read twice without
// a change between is answered from the encoding kept with the cached
// ticket, yet its SLA status is the one at the time of each read; the rest
// of the answer is byte for byte the same.
func TestSLA_KeptEncodingShowsStatusAtReadTime(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	h, _ := newHarness(t).withSLAClock(clock)
	h.want(h.do("POST", "/v1/sla-policies", h.adminKey, map[string]any{"name": "All",
		"first_response": map[string]any{"minutes": 30, "warn_before_minutes": 5}, "resolution": map[string]any{"minutes": 120}}), 201, "")
	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Broken"))
	h.want(r, 201, "")
	id := r.body["id"].(string)

	first := h.do("GET", "/v1/tickets/"+id, h.adminKey, nil)
	if fr := slaTarget(t, first, "first_response"); fr["state"] != "active" {
		t.Fatalf("at first: %v", fr)
	}
	clock.Advance(26 * time.Minute) // past warn_at; no event recorded (no worker ran)
	second := h.do("GET", "/v1/tickets/"+id, h.adminKey, nil)
	if fr := slaTarget(t, second, "first_response"); fr["state"] != "warning" {
		t.Fatalf("after 26 minutes the read shows %v, want the warning state", fr)
	}
	if first.header.Get("ETag") != second.header.Get("ETag") {
		t.Fatalf("the ticket changed between the reads: ETag %s then %s", first.header.Get("ETag"), second.header.Get("ETag"))
	}
	withoutSLA := func(raw string) string {
		i, j := strings.LastIndex(raw, `"sla":`), strings.LastIndex(raw, `,"version":`)
		if i < 0 || j < i {
			t.Fatalf("no top-level sla in %s", raw)
		}
		return raw[:i] + raw[j:]
	}
	if a, b := withoutSLA(first.raw), withoutSLA(second.raw); a != b {
		t.Fatalf("the answers differ beyond the SLA status:\n%s\n%s", a, b)
	}
	if got, want := second.header.Get("Content-Length"), strconv.Itoa(len(second.raw)); got != want {
		t.Fatalf("Content-Length %s, body %s bytes", got, want)
	}
}
