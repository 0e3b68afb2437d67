package http_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestServer_OnBehalfOf: an admin key's change made with
// X-HDF-On-Behalf-Of is recorded with channel agent and the agent as actor,
// the key kept in api_key_id; the change feed shows the same metadata.
func TestServer_OnBehalfOf(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	path := "/v1/tickets/" + id
	const agent = "zendesk-agent:4711 José"
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"priority": "high"}, "X-HDF-On-Behalf-Of", agent), 200, "")
	h.want(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "On it"}, "X-HDF-On-Behalf-Of", "agent-2"), 201, "")

	r := h.do("GET", path+"/audit", h.adminKey, nil)
	h.want(r, 200, "")
	entries := r.body["data"].([]any)
	if len(entries) != 3 {
		t.Fatalf("audit has %d entries, want 3: %s", len(entries), r.raw)
	}
	created, updated, replied := entries[0].(map[string]any), entries[1].(map[string]any), entries[2].(map[string]any)
	if created["channel"] != "api" || created["actor"].(map[string]any)["type"] != "api_key" || created["api_key_id"] != nil {
		t.Errorf("the creation without the header: %v", created)
	}
	keyID := created["actor"].(map[string]any)["id"]
	for _, c := range []struct {
		entry map[string]any
		agent string
	}{{updated, agent}, {replied, "agent-2"}} {
		actor := c.entry["actor"].(map[string]any)
		if c.entry["channel"] != "agent" || actor["type"] != "agent" || actor["id"] != c.agent || c.entry["api_key_id"] != keyID {
			t.Errorf("entry %v: want channel agent, actor agent %q, api_key_id %v", c.entry, c.agent, keyID)
		}
	}

	// The change feed (below the commit horizon, so waited for).
	events := h.feedEvents(func(e map[string]any) bool { return e["type"] == "ticket.message_added" })
	found := false
	for _, e := range events {
		if e["type"] == "ticket.updated" {
			found = true
			if got, want := fmt.Sprint(e["metadata"]), fmt.Sprintf("actor:map[id:%s type:agent] api_key_id:%s channel:agent", agent, keyID); !strings.Contains(got, want) {
				t.Errorf("the change feed's metadata %s lacks %s", got, want)
			}
		}
	}
	if !found {
		t.Errorf("the change feed lacks the update")
	}
}

// TestServer_OnBehalfOf_refused: the header needs an admin key (403) and a
// well-formed value (400), both naming it; a refused request changes
// nothing.
func TestServer_OnBehalfOf_refused(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	path := "/v1/tickets/" + id
	patch := map[string]any{"priority": "low"}
	agentKey := h.agentKey()
	for _, c := range []struct {
		name, key string
		headers   []string
		status    int
		code      string
	}{
		{"an agent key", agentKey, []string{"X-HDF-On-Behalf-Of", "agent-1"}, 403, "forbidden"},
		{"too long", h.adminKey, []string{"X-HDF-On-Behalf-Of", strings.Repeat("é", 256)}, 400, "validation_failed"},
		{"a control character", h.adminKey, []string{"X-HDF-On-Behalf-Of", "agent\tone"}, 400, "validation_failed"},
		{"sent twice", h.adminKey, []string{"X-HDF-On-Behalf-Of", "a", "X-HDF-On-Behalf-Of", "b"}, 400, "validation_failed"},
		{"not UTF-8", h.adminKey, []string{"X-HDF-On-Behalf-Of", "agent\xff"}, 400, "validation_failed"},
	} {
		r := h.do("PATCH", path, c.key, patch, c.headers...)
		if r.status != c.status || r.errorCode() != c.code || !strings.Contains(r.raw, "X-HDF-On-Behalf-Of") {
			t.Errorf("%s: got %d %s, want %d %s naming X-HDF-On-Behalf-Of", c.name, r.status, r.raw, c.status, c.code)
		}
	}
	// 255 characters are fine.
	h.want(h.do("PATCH", path, h.adminKey, patch, "X-HDF-On-Behalf-Of", strings.Repeat("é", 255)), 200, "")
	r := h.do("GET", path+"/audit", h.adminKey, nil)
	if n := len(r.body["data"].([]any)); n != 2 {
		t.Errorf("audit has %d entries, want 2 (the refused requests changed nothing): %s", n, r.raw)
	}
}

// TestServer_OnBehalfOf_idempotency: the same Idempotency-Key for another
// agent is another request.
func TestServer_OnBehalfOf_idempotency(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	path := "/v1/tickets/" + id + "/messages"
	body := map[string]any{"body": "Hello"}
	h.want(h.do("POST", path, h.adminKey, body, "Idempotency-Key", "k1", "X-HDF-On-Behalf-Of", "ann"), 201, "")
	r := h.do("POST", path, h.adminKey, body, "Idempotency-Key", "k1", "X-HDF-On-Behalf-Of", "ann")
	h.want(r, 201, "")
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same agent's retry was not replayed: %v", r.header)
	}
	h.want(h.do("POST", path, h.adminKey, body, "Idempotency-Key", "k1", "X-HDF-On-Behalf-Of", "bob"), 422, "idempotency_key_reused")
}
