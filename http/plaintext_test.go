package http_test

import (
	"fmt"
	"testing"
)

// TestTickets_PlainTextCleaned: the subject from the review, and the other
// plain-text fields, are stored and served without markup or control
// characters; text that only looks like markup stays as typed.
func TestTickets_PlainTextCleaned(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/tickets", h.adminKey, map[string]any{
		"subject":  "<img src=x onerror=alert(1)>Refund: a < b & c",
		"customer": map[string]any{"email": "ada@example.com", "name": "Ada <script>x</script>\u0000"},
		"message":  map[string]any{"body": "<p>Hi</p>"}, "tags": []string{"<b>VIP</b>"},
		"custom_fields": map[string]any{"note": "line 1\r\n<!-- c -->line 2"},
	})
	h.want(r, 201, "")
	path := "/v1/tickets/" + r.body["id"].(string)
	g := h.do("GET", path, h.adminKey, nil)
	h.want(g, 200, "")
	if g.body["subject"] != "Refund: a < b & c" || g.body["customer"].(map[string]any)["name"] != "Ada x" ||
		fmt.Sprint(g.body["tags"]) != "[vip]" || g.body["custom_fields"].(map[string]any)["note"] != "line 1\nline 2" {
		t.Errorf("stored ticket: %s", g.raw)
	}

	r = h.do("PATCH", path, h.adminKey, map[string]any{"team": "<i>billing</i>", "assignee_id": "<b>", "subject": "<!-- -->"})
	h.want(r, 400, "validation_failed")
	got := details(t, r)
	if len(got) != 2 || got["assignee_id"] == "" || got["subject"] == "" {
		t.Errorf("PATCH emptying subject and assignee_id by cleaning: %s", r.raw)
	}
}
