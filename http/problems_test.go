package http_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestDecode_EveryProblemAtOnce: a body with wrongly typed values, unknown
// fields and values that fail validation gets one 400 validation_failed
// naming each of them, on every route that takes a body; a field whose
// value did not decode is named for its type only (not also as
// "required").
func TestDecode_EveryProblemAtOnce(t *testing.T) {
	h := newHarness(t)
	ticket := h.newTicket(h.adminKey)
	customer := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "grace@example.com"})
	h.want(customer, 201, "")
	webhook := h.do("POST", "/v1/webhooks", h.adminKey, map[string]any{"url": "https://hooks.example.com/x", "event_types": []string{"*"}})
	h.want(webhook, 201, "")
	automation := h.createRule(rule("VIP", 1, nil, "add_tags", []string{"vip"}))

	cases := []struct {
		name, method, path, body string
		// want maps each field that must be named to a part of its problem.
		want map[string]string
	}{
		{"the issue's example", "POST", "/v1/tickets", `{"subject": 5, "customer": {"email": "not-an-email"}}`,
			map[string]string{"subject": "must be a string, got a number", "customer.email": "must be an email address", "message.body": "required"}},
		{"ticket: types, unknown fields and validation", "POST", "/v1/tickets",
			`{"subject": ["x"], "customer": {"email": 7, "nmae": "Ada"}, "message": {"body": "hi", "author_type": "robot"},
			  "priority": "critical", "tags": ["ok", 3], "custom_fields": {"a": {"b": 1}}, "external_id": 12, "colour": "red"}`,
			map[string]string{"subject": "must be a string, got an array", "customer.email": "must be a string, got a number",
				"customer.nmae": "unknown field", "message.author_type": "must be one of", "priority": "must be one of",
				"tags[1]": "must be a string, got a number", "custom_fields.a": "must be a string, number, boolean or null",
				"external_id": "must be a string, got a number", "colour": "unknown field"}},
		{"ticket: an object where a string goes, and a string where an object goes", "POST", "/v1/tickets",
			`{"subject": {"text": "s"}, "customer": "ada@example.com", "message": {"body": "hi"}}`,
			map[string]string{"subject": "must be a string, got an object", "customer": "must be an object, got a string"}},
		{"ticket PATCH", "PATCH", "/v1/tickets/" + ticket,
			`{"priority": 1, "status": "done", "team": false, "assignee_id": 9, "tags_add": "vip", "custom_fields": [], "subjcet": "x"}`,
			map[string]string{"priority": "must be a string, got a number", "status": "must be one of", "team": "must be a string, got a boolean",
				"assignee_id": "must be a string, got a number", "tags_add": "must be an array, got a string",
				"custom_fields": "must be an object, got an array", "subjcet": "unknown field"}},
		{"message", "POST", "/v1/tickets/" + ticket + "/messages", `{"body": "", "author_type": "bot", "internal": "yes", "attachments": []}`,
			map[string]string{"body": "required", "author_type": "must be one of", "internal": "must be a boolean, got a string", "attachments": "unknown field"}},
		{"customer upsert", "POST", "/v1/customers",
			`{"email": "nope", "name": 1, "linked_profiles": [{"provider": "Shop!", "external_id": "1", "data": 5, "extra": true}]}`,
			map[string]string{"email": "must be an email address", "name": "must be a string, got a number",
				"linked_profiles[0].data": "must be an object, got a number", "linked_profiles[0].extra": "unknown field"}},
		{"customer PATCH", "PATCH", "/v1/customers/" + customer.body["id"].(string), `{"email": 7, "tags": ["a b"], "metadata": "x"}`,
			map[string]string{"email": "must be a string, got a number", "tags[0]": "must not contain white space", "metadata": "must be an object, got a string"}},
		{"customer merge", "POST", "/v1/customers/" + customer.body["id"].(string) + "/merge", `{"source_customer_id": 5, "force": true}`,
			map[string]string{"source_customer_id": "must be a string, got a number", "force": "unknown field"}},
		{"automation rule", "POST", "/v1/automations", `{"name": "", "position": "first", "actions": [{"type": "nope"}], "conditions": {"all": [{"feild": "x"}]}}`,
			map[string]string{"name": "", "position": "must be an integer, got a string", "actions[0].type": "unknown action type",
				"conditions.all[0].feild": "unknown field"}},
		{"automation rule PUT", "PUT", "/v1/automations/" + automation, `{"name": "x", "active": "yes", "actions": {}}`,
			map[string]string{"active": "must be a boolean, got a string", "actions": "must be an array, got an object"}},
		{"SLA policy", "POST", "/v1/sla-policies", `{"name": "x", "first_response": {"minutes": 1.5}, "resolution": {"minutes": 0}}`,
			map[string]string{"first_response.minutes": "must be an integer, got number 1.5", "resolution.minutes": ""}},
		{"webhook", "POST", "/v1/webhooks", `{"url": "ftp://x", "event_types": ["ticket.nope"], "active": 1}`,
			map[string]string{"url": "", "event_types[0]": "unknown event type", "active": "must be a boolean, got a number"}},
		{"webhook PATCH", "PATCH", "/v1/webhooks/" + webhook.body["id"].(string), `{"active": "no", "event_types": ["ticket.nope"]}`,
			map[string]string{"active": "must be a boolean, got a string", "event_types[0]": "unknown event type"}},
		{"webhook rotation", "POST", "/v1/webhooks/" + webhook.body["id"].(string) + "/rotate-secret", `{"overlap_seconds": "60", "now": true}`,
			map[string]string{"overlap_seconds": "must be an integer, got a string", "now": "unknown field"}},
		{"rate limits", "PUT", "/v1/rate-limits", `{"limits": {"tickets.read": {"limit": "many", "window_seconds": 7200}}, "soft_throttle_delay_ms": -1}`,
			map[string]string{"limits.tickets.read.limit": "must be an integer, got a string", "soft_throttle_delay_ms": "must be between"}},
		{"API key", "POST", "/v1/api-keys", `{"role": "owner", "name": 5}`,
			map[string]string{"role": "must be one of", "name": "must be a string, got a number"}},
		{"IP blocklist", "PUT", "/v1/ip-blocklist", `{"cidrs": ["10.0.0.0/8", 7], "allow": []}`,
			map[string]string{"cidrs[1]": "must be a string, got a number", "allow": "unknown field"}},
		{"Slack", "PUT", "/v1/integrations/slack", `{"bot_token": "nope", "channels": {"new_ticket": 5, "general": "#x"}}`,
			map[string]string{"bot_token": "xoxb-", "channels.new_ticket": "must be a string, got a number", "channels.general": "unknown field"}},
		{"Outlook", "POST", "/v1/integrations/outlook/connect", `{"imap_port": "993", "imap_security": "maybe"}`,
			map[string]string{"imap_port": "must be an integer, got a string", "imap_security": "must be tls, starttls or none", "imap_host": "", "password": ""}},
		{"simulation", "POST", "/v1/automations/simulate", `{"ticket_id": "not-a-uuid", "update": {"priority": "nope", "team": 1}}`,
			map[string]string{"ticket_id": "must be a UUID", "update.priority": "must be one of", "update.team": "must be a string, got a number"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			r := h.do(tc.method, tc.path, h.adminKey, tc.body)
			h.want(r, 400, "validation_failed")
			got := details(t, r)
			for field, part := range tc.want {
				problem, ok := got[field]
				if !ok {
					t.Errorf("%s is not named", field)
				} else if !strings.Contains(problem, part) {
					t.Errorf("%s: %q does not say %q", field, problem, part)
				}
			}
			if t.Failed() {
				t.Logf("answer: %s", r.raw)
			}
		})
	}
	h.t = t

	// The example from the issue, exactly: the type problem is not
	// repeated as "required".
	r := h.do("POST", "/v1/tickets", h.adminKey, `{"subject": 5, "customer": {"email": "not-an-email"}}`)
	want := map[string]string{
		"subject":        "must be a string, got a number",
		"customer.email": "must be an email address like name@example.com",
		"message.body":   "required",
	}
	if got := details(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("details = %v, want %v", got, want)
	}

	// Malformed JSON is still invalid_json with the line and column.
	r = h.do("POST", "/v1/tickets", h.adminKey, "{\n  \"subject\": 5,\n  \"customer\": }")
	h.want(r, 400, "invalid_json")
	if msg := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "line 3, column 15") {
		t.Errorf("message %q does not name line 3, column 15", msg)
	}
}

// TestDecode_ValidBodiesStillWork: the walk over the body changes nothing
// for bodies that decode: field names in another case, null where a value
// may be absent, nested lists of objects.
func TestDecode_ValidBodiesStillWork(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/tickets", h.adminKey, `{"Subject": "Case", "customer": {"EMAIL": "ada@example.com", "name": null},
		"message": {"body": "hi"}, "tags": null, "custom_fields": {"n": 1, "s": "x", "b": true, "z": null}}`)
	h.want(r, 201, "")
	if r.body["subject"] != "Case" {
		t.Errorf("subject %v, want Case: %s", r.body["subject"], r.raw)
	}
	r = h.do("POST", "/v1/customers", h.adminKey, `{"email": "grace@example.com",
		"linked_profiles": [{"provider": "shopify", "external_id": "1", "data": {"orders": [1, {"a": null}]}}]}`)
	h.want(r, 201, "")
	r = h.do("POST", "/v1/automations/simulate", h.adminKey, map[string]any{"ticket_id": uuid.NewString(), "update": map[string]any{"team": nil}})
	h.want(r, 404, "not_found")
}
