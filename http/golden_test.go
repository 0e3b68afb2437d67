package http_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of response shapes")

var (
	uuidRE      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE      = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)
	requestIDRE = regexp.MustCompile(`req_[0-9a-f]{32}`)
	keyRE       = regexp.MustCompile(`hdf_[0-9A-Za-z]{8,36}`)
	cursorRE    = regexp.MustCompile(`"(next_cursor)":"[^"]+"`)
)

// normalize makes a response body comparable across runs: ids become
// <uuid-1>, <uuid-2>… in order of first appearance (so equal ids stay
// equal), times <time>, request ids, keys and cursors placeholders; then
// it is indented.
func normalize(t *testing.T, raw string) []byte {
	t.Helper()
	seen := map[string]string{}
	raw = uuidRE.ReplaceAllStringFunc(raw, func(id string) string {
		if _, ok := seen[id]; !ok {
			seen[id] = "<uuid-" + strconv.Itoa(len(seen)+1) + ">"
		}
		return seen[id]
	})
	raw = timeRE.ReplaceAllString(raw, "<time>")
	raw = requestIDRE.ReplaceAllString(raw, "<request-id>")
	raw = keyRE.ReplaceAllString(raw, "<key>")
	raw = cursorRE.ReplaceAllString(raw, `"$1":"<cursor>"`)
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(raw), "", "  "); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// golden compares a response with testdata/golden/<name>.json (-update
// rewrites it).
func golden(t *testing.T, name string, r response) {
	t.Helper()
	got := normalize(t, r.raw)
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./http/ -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the response shape changed (go test ./http/ -run Golden -update accepts it):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestServer_GoldenShapes pins the JSON shape of each kind of answer.
func TestServer_GoldenShapes(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/tickets", h.adminKey, map[string]any{
		"subject": "Printer on fire", "customer": map[string]any{"email": "ada@example.com", "name": "Ada"},
		"message": map[string]any{"body": "<p>It is <b>really</b> on fire</p><script>x</script>"}, "priority": "high",
		"tags": []string{"hardware"}, "custom_fields": map[string]any{"floor": 3}, "external_id": "ext-1",
	})
	golden(t, "ticket_created", r)
	id := r.body["id"].(string)
	golden(t, "ticket_updated", h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"status": "open", "assignee_id": "agent-7", "tags_add": []string{"urgent"}}))
	golden(t, "message_added", h.do("POST", "/v1/tickets/"+id+"/messages", h.adminKey, map[string]any{"body": "internal", "internal": true}))
	golden(t, "ticket_audit", h.do("GET", "/v1/tickets/"+id+"/audit?include_internal=true", h.adminKey, nil))
	golden(t, "customer", h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "ada@example.com", "tags": []string{"vip"},
		"metadata": map[string]any{"crm": "hubspot"}, "linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "c-1", "url": "https://shop.example/c/1"}}}))
	golden(t, "validation_failed", h.do("POST", "/v1/tickets", h.adminKey, map[string]any{"subject": "", "priority": "critical"}))
	golden(t, "invalid_json", h.do("POST", "/v1/tickets", h.adminKey, "{\n  \"subject\": \"x\",\n  oops\n}"))
	golden(t, "api_key_created", h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent", "name": "zapier"}))
	golden(t, "rate_limits", h.do("GET", "/v1/rate-limits", h.adminKey, nil))
}
