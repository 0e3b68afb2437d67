package http_test

import (
	"net/url"
	"strings"
	"testing"
)

// connectGoogle runs the OAuth flow through the API against the fake
// provider and returns the callback's answer.
func (h *harness) connectGoogle() response {
	h.t.Helper()
	r := h.do("POST", "/v1/integrations/google/connect", h.adminKey, nil)
	h.want(r, 201, "")
	authURL := r.body["authorization_url"].(string)
	code, err := h.oauth.Authorize(authURL)
	if err != nil {
		h.t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	return h.do("GET", "/v1/integrations/google/callback?state="+url.QueryEscape(u.Query().Get("state"))+"&code="+url.QueryEscape(code), "", nil)
}

func TestIntegrations_OAuthFlow(t *testing.T) {
	h := newHarness(t)
	r := h.connectGoogle()
	h.want(r, 200, "")
	id := r.body["id"].(string)
	if r.body["status"] != "active" || r.body["explanation"] != "Working." || strings.Contains(r.raw, "at-") {
		t.Fatalf("callback: %s", r.raw)
	}
	list := h.do("GET", "/v1/integrations", h.adminKey, nil)
	if data := list.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id {
		t.Errorf("list: %s", list.raw)
	}
	if g := h.do("GET", "/v1/integrations/"+id, h.adminKey, nil); g.body["provider"] != "google" || g.body["token_expires_at"] == nil {
		t.Errorf("get: %s", g.raw)
	}
	// The state authenticates the callback: a forged one is refused.
	h.want(h.do("GET", "/v1/integrations/google/callback?state=forged&code=x", "", nil), 400, "validation_failed")
	h.want(h.do("GET", "/v1/integrations/google/callback", "", nil), 400, "validation_failed")
	h.want(h.do("POST", "/v1/integrations/myspace/connect", h.adminKey, nil), 404, "not_found")
	h.want(h.do("POST", "/v1/integrations/"+id+"/revalidate", h.adminKey, nil), 404, "not_found")
	h.want(h.do("DELETE", "/v1/integrations/"+id, h.adminKey, nil), 200, "")
	h.want(h.do("GET", "/v1/integrations/"+id, h.adminKey, nil), 404, "not_found")
}
