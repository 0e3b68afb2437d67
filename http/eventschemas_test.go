package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// definedEventTypes lists the event types the root package defines: the
// values of its string constants named Event… that look like "area.what".
func definedEventTypes(t *testing.T) []string {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), "..", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range pkgs["helpdeskflow"].Files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Event") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if v, _ := strconv.Unquote(lit.Value); strings.Contains(v, ".") {
						out = append(out, v)
					}
				}
			}
		}
	}
	slices.Sort(out)
	if len(out) < 30 {
		t.Fatalf("found %d event types in the root package, want at least 30: %v", len(out), out)
	}
	return out
}

// eventBodySchema is the schema of a type's delivery body in the
// document's webhooks section.
func eventBodySchema(doc *openapi3.T, eventType string) *openapi3.Schema {
	item := doc.Webhooks[eventType]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil {
		return nil
	}
	media := item.Post.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil {
		return nil
	}
	return media.Schema.Value
}

// TestOpenAPI_EveryEventTypeHasASchema: the webhooks section has a body
// schema for every event type the code defines, and nothing else.
func TestOpenAPI_EveryEventTypeHasASchema(t *testing.T) {
	doc := loadOpenAPI(t)
	types := definedEventTypes(t)
	for _, typ := range types {
		s := eventBodySchema(doc, typ)
		if s == nil {
			t.Errorf("event type %s has no schema in the webhooks section", typ)
			continue
		}
		if p := s.Properties["type"]; p == nil || len(p.Value.Enum) != 1 || p.Value.Enum[0] != typ {
			t.Errorf("%s: the body's type is not fixed to %q", typ, typ)
		}
		if s.Properties["data"] == nil || s.Properties["schema_version"] == nil {
			t.Errorf("%s: the body has no data or schema_version", typ)
		}
	}
	for name := range doc.Webhooks {
		if !slices.Contains(types, name) {
			t.Errorf("the webhooks section has %s, which is no event type", name)
		}
	}
}

// undocumented returns the keys of v (however deep) that schema does not
// name: the schemas stay open for additive changes, so kin-openapi's
// validation alone would not notice a field the document forgot.
func undocumented(s *openapi3.Schema, v any, where string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, alt := range append(append(openapi3.SchemaRefs{}, s.AnyOf...), s.OneOf...) {
		if got := undocumented(alt.Value, v, where); len(got) == 0 {
			return nil
		} else {
			out = got
		}
	}
	if len(out) > 0 {
		return out
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if p := s.Properties[k]; p != nil {
				out = append(out, undocumented(p.Value, x, where+"."+k)...)
			} else if ap := s.AdditionalProperties.Schema; ap != nil {
				out = append(out, undocumented(ap.Value, x, where+"."+k)...)
			} else if len(s.Properties) > 0 || s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
				out = append(out, where+"."+k)
			} else if s.MaxProps != nil && *s.MaxProps == 0 {
				out = append(out, where+"."+k)
			}
		}
	case []any:
		if s.Items != nil {
			for i, x := range v {
				out = append(out, undocumented(s.Items.Value, x, fmt.Sprintf("%s[%d]", where, i))...)
			}
		}
	}
	return out
}

// TestOpenAPI_EventBodiesMatchTheirSchemas: events produced through the
// commands, read from GET /v1/events and put in the delivery envelope
// (as the dispatcher sends them), validate against their type's schema
// in the webhooks section, and name no field the schema does not; every
// event type is covered (the SLA points through the SLA command's own
// decision, sla.Due).
func TestOpenAPI_EventBodiesMatchTheirSchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	h := newHarness(t)
	must := func(r response, status int) response {
		t.Helper()
		h.want(r, status, "")
		return r
	}
	// Workspace settings, keys, rules, policies, webhooks, Slack.
	key := must(h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent", "name": "zapier"}), 201)
	must(h.do("DELETE", "/v1/api-keys/"+key.body["id"].(string), h.adminKey, nil), 200)
	must(h.do("PUT", "/v1/ip-blocklist", h.adminKey, map[string]any{"cidrs": []string{"203.0.113.0/24"}}), 200)
	must(h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{"limits": map[string]any{"tickets.read": map[string]any{"limit": 500, "window_seconds": 60}},
		"soft_throttle_delay_ms": 50}), 200)
	must(h.do("PUT", "/v1/integrations/slack", h.adminKey, map[string]any{"bot_token": "xoxb-test-token", "channels": map[string]any{"new_ticket": "#support"}}), 200)
	rule := must(h.do("POST", "/v1/automations", h.adminKey, map[string]any{"name": "vip",
		"conditions": map[string]any{"all": []any{map[string]any{"field": "ticket.subject", "operator": "contains", "value": "VIP"}}},
		"actions":    []any{map[string]any{"type": "add_tags", "value": []string{"vip"}}, map[string]any{"type": "notify_slack", "value": map[string]any{"channel": "#vip", "message": "VIP"}}}}), 201)
	must(h.do("PUT", "/v1/automations/"+rule.body["id"].(string), h.adminKey, map[string]any{"name": "vip 2",
		"conditions": map[string]any{"all": []any{map[string]any{"field": "ticket.subject", "operator": "contains", "value": "VIP"}}},
		"actions":    []any{map[string]any{"type": "set_priority", "value": "high"}, map[string]any{"type": "notify_slack", "value": map[string]any{"channel": "#vip", "message": "VIP"}}}}), 200)
	temp := must(h.do("POST", "/v1/automations", h.adminKey, map[string]any{"name": "temporary", "actions": []any{map[string]any{"type": "add_tags", "value": []string{"t"}}}}), 201)
	must(h.do("DELETE", "/v1/automations/"+temp.body["id"].(string), h.adminKey, nil), 200)
	policy := must(h.do("POST", "/v1/sla-policies", h.adminKey, map[string]any{"name": "All",
		"first_response": map[string]any{"minutes": 30, "warn_before_minutes": 5}, "resolution": map[string]any{"minutes": 120}}), 201)
	must(h.do("PUT", "/v1/sla-policies/"+policy.body["id"].(string), h.adminKey, map[string]any{"name": "All tickets",
		"first_response": map[string]any{"minutes": 60, "warn_before_minutes": 10}}), 200)
	tempPolicy := must(h.do("POST", "/v1/sla-policies", h.adminKey, map[string]any{"name": "none", "position": 5,
		"conditions": map[string]any{"all": []any{map[string]any{"field": "ticket.subject", "operator": "contains", "value": "never"}}},
		"resolution": map[string]any{"minutes": 10}}), 201)
	must(h.do("DELETE", "/v1/sla-policies/"+tempPolicy.body["id"].(string), h.adminKey, nil), 200)
	hook := must(h.do("POST", "/v1/webhooks", h.adminKey, map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{"*"}}), 201)
	hookPath := "/v1/webhooks/" + hook.body["id"].(string)
	must(h.do("PATCH", hookPath, h.adminKey, map[string]any{"active": false}), 200)
	must(h.do("POST", hookPath+"/rotate-secret", h.adminKey, map[string]any{"overlap_seconds": 60}), 200)
	must(h.do("DELETE", hookPath, h.adminKey, nil), 200)

	// Tickets and customers: created, changed, replied to, merged.
	a := must(h.do("POST", "/v1/tickets", h.adminKey, map[string]any{"subject": "VIP refund", "customer": map[string]any{"email": "a@example.com", "name": "A"},
		"message": map[string]any{"body": "<p>hi</p>"}, "tags": []string{"refund"}, "custom_fields": map[string]any{"order": 1042}, "external_id": "o-1"}), 201)
	ticketPath := "/v1/tickets/" + a.body["id"].(string)
	must(h.do("PATCH", ticketPath, h.adminKey, map[string]any{"status": "open", "assignee_id": "agent-1", "team": "billing", "tags_add": []string{"x"},
		"custom_fields": map[string]any{"order": nil, "tier": "gold"}}), 200)
	must(h.do("POST", ticketPath+"/messages", h.adminKey, map[string]any{"body": "note", "author_type": "agent", "internal": true}), 201)
	b := must(h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "b@example.com", "name": "B", "external_id": "crm-b", "tags": []string{"t"},
		"custom_fields": map[string]any{"tier": "gold"}, "metadata": map[string]any{"crm": map[string]any{"id": 7}},
		"linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "s-1", "url": "https://shop.example/s/1", "data": map[string]any{"orders": 2}}}}), 201)
	must(h.do("PATCH", "/v1/customers/"+b.body["id"].(string), h.adminKey, map[string]any{"name": "B.", "metadata": map[string]any{"crm": nil}}), 200)
	must(h.do("POST", "/v1/customers/"+b.body["id"].(string)+"/merge", h.adminKey,
		map[string]any{"source_customer_id": a.body["customer"].(map[string]any)["id"]}), 200)

	// Slack refuses the token, then takes it again.
	h.slack.SetToken("xoxb-another")
	must(h.do("POST", "/v1/integrations/slack/revalidate", h.adminKey, nil), 200)
	h.slack.SetToken("xoxb-test-token")
	must(h.do("POST", "/v1/integrations/slack/revalidate", h.adminKey, nil), 200)
	must(h.do("DELETE", "/v1/integrations/slack", h.adminKey, nil), 200)

	// The feed shows events below the commit horizon, which other
	// transactions of the server may hold back for a moment.
	var bodies []map[string]any
	after, last := "", false
	testenv.Eventually(t, 20*time.Second, func() error {
		r := must(h.do("GET", "/v1/events?limit=1000&after="+url.QueryEscape(after), h.adminKey, nil), 200)
		for _, e := range r.body["events"].([]any) {
			e := e.(map[string]any)
			bodies = append(bodies, map[string]any{"id": e["id"], "type": e["type"], "schema_version": e["schema_version"],
				"workspace_id": h.workspace.String(), "occurred_at": e["occurred_at"], "data": e["data"]})
			last = last || e["type"] == helpdeskflow.EventIntegrationDisconnected
		}
		after = r.body["next_cursor"].(string)
		if !last {
			return fmt.Errorf("%d events so far, not yet the last command's", len(bodies))
		}
		return nil
	})
	// The SLA points the timer worker's command decides for the ticket.
	ticket, err := h.service.Tickets.GetTicket(context.Background(), h.workspace, mustUUID(t, a.body["id"].(string)), true)
	if err != nil {
		t.Fatal(err)
	}
	warned, err := sla.Due(ticket, ticket.CreatedAt.Add(55*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	breached, err := sla.Due(ticket, ticket.CreatedAt.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(warned, breached...) {
		var data any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, map[string]any{"id": e.ID.String(), "type": e.Type, "schema_version": float64(e.SchemaVersion),
			"workspace_id": h.workspace.String(), "occurred_at": "2026-01-02T03:04:05.000Z", "data": data})
	}

	seen := map[string]int{}
	for _, body := range bodies {
		typ := body["type"].(string)
		seen[typ]++
		s := eventBodySchema(doc, typ)
		if s == nil {
			t.Errorf("%s: no schema", typ)
			continue
		}
		if err := s.VisitJSON(body, openapi3.EnableFormatValidation()); err != nil {
			raw, _ := json.Marshal(body)
			t.Errorf("%s does not validate: %v\n%s", typ, err, raw)
		}
		if extra := undocumented(s, body, typ); len(extra) > 0 {
			t.Errorf("%s has fields its schema does not name: %v", typ, extra)
		}
	}
	// integration.token_expired needs an OAuth provider refusing a
	// refresh (integrations' own tests); its data is integration.*'s.
	for _, typ := range definedEventTypes(t) {
		if seen[typ] == 0 && typ != helpdeskflow.EventIntegrationTokenExpired {
			t.Errorf("no %s event was produced to check its schema", typ)
		}
	}
}
