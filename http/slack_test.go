package http_test

import (
	"strings"
	"testing"
)

func TestSlack_API(t *testing.T) {
	h := newHarness(t)
	h.want(h.do("GET", "/v1/integrations/slack", h.adminKey, nil), 404, "not_found")
	r := h.do("PUT", "/v1/integrations/slack", h.adminKey, map[string]any{"bot_token": "xoxp-user", "channels": map[string]any{"new_ticket": "Support!"}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"bot_token"`, `"channels.new_ticket"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("the error does not name %s: %s", field, r.raw)
		}
	}
	r = h.do("PUT", "/v1/integrations/slack", h.adminKey, map[string]any{"bot_token": "xoxb-not-valid", "channels": map[string]any{"new_ticket": "#support"}})
	h.want(r, 400, "validation_failed")
	if !strings.Contains(r.raw, "invalid_auth") {
		t.Errorf("Slack's answer is not named: %s", r.raw)
	}
	r = h.do("PUT", "/v1/integrations/slack", h.adminKey, map[string]any{"bot_token": "xoxb-test-token", "channels": map[string]any{"new_ticket": "#support", "sla_breach": "C0123ABCD"}})
	h.want(r, 200, "")
	if r.body["status"] != "active" || r.body["team"] != "Fake" || strings.Contains(r.raw, "xoxb-test-token") {
		t.Fatalf("connected: %s", r.raw)
	}
	for _, path := range []string{"/v1/integrations/slack", "/v1/events?limit=1000"} {
		if g := h.do("GET", path, h.adminKey, nil); strings.Contains(g.raw, "xoxb-test-token") {
			t.Errorf("%s shows the token", path)
		}
	}
	// Slack starts refusing the token: revalidation marks the integration.
	h.slack.Revoke("xoxb-test-token")
	r = h.do("POST", "/v1/integrations/slack/revalidate", h.adminKey, nil)
	h.want(r, 200, "")
	if r.body["status"] != "needs_revalidation" || r.body["last_error"] != "token_revoked" {
		t.Errorf("revalidate with a revoked token: %s", r.raw)
	}
	h.want(h.do("GET", "/v1/integrations/slack/notifications?status=skipped", h.adminKey, nil), 200, "")
	h.want(h.do("GET", "/v1/integrations/slack/notifications?status=nope", h.adminKey, nil), 400, "validation_failed")
	h.want(h.do("DELETE", "/v1/integrations/slack", h.adminKey, nil), 200, "")
	h.want(h.do("DELETE", "/v1/integrations/slack", h.adminKey, nil), 404, "not_found")
}
