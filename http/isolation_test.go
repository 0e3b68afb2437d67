package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/http"
)

// TestServer_TenantIsolation calls every route of the route table with a
// key of one workspace and the ids of another: an id of another workspace
// is 404, lists never show another workspace's data, and writes never touch
// it. A new route fails this test until it says how it is isolated.
func TestServer_TenantIsolation(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}

	// Workspace A, the victim, with a ticket and a second key.
	victim, victimAdmin := h.newWorkspace()
	ticket, err := h.service.Tickets.CreateTicket(ctx, victim, md, tickets.CreateTicket{
		Subject: "secret", Customer: tickets.CustomerRef{Email: "victim@example.com"}, Message: tickets.NewTicketMessage{Body: "private"},
	})
	if err != nil {
		t.Fatal(err)
	}
	victimKey, err := h.service.Access.CreateAPIKey(ctx, md, victim, access.CreateAPIKey{Role: helpdeskflow.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := h.service.Rules.CreateAutomation(ctx, victim, md, rules.AutomationRule{Name: "victim rule",
		Actions: []automation.Action{{Type: automation.ActionAddTags, Value: []any{"victim"}}}})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := h.service.Rules.CreateSLAPolicy(ctx, victim, md, rules.SLAPolicyWrite{Name: "victim policy",
		FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 60}})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := h.service.Outbound.CreateWebhook(ctx, victim, md, outbound.CreateWebhook{URL: "https://victim.example.com/hook", EventTypes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	h.failedDelivery(victim, hook.ID)
	connection, _, err := h.cfg.Connections.Connect(ctx, victim, "google", "")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{http.IDTicket: ticket.ID.String(), http.IDAPIKey: victimKey.ID.String(), http.IDCustomer: ticket.CustomerID.String(),
		http.IDAutomation: rule.ID.String(), http.IDSLAPolicy: policy.ID.String(), http.IDWebhook: hook.ID.String(),
		http.IDIntegration: connection.ID.String()}
	attacker, _, err := h.service.Tickets.UpsertCustomer(ctx, h.workspace, md, tickets.UpsertCustomer{Email: "attacker@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// The victim's email is not among them: the attacker may have a
	// customer with the same address in its own workspace (POST
	// /v1/customers below creates one), which must stay a separate customer.
	secrets := []string{victim.String(), ticket.ID.String(), victimKey.ID.String(), ticket.CustomerID.String(), victimKey.Prefix, rule.ID.String(), "victim rule", policy.ID.String(), "victim policy", hook.ID.String(), "victim.example.com", connection.ID.String()}
	victimVersion := func() int64 {
		events, err := h.store.Load(ctx, victim, victim)
		if err != nil {
			t.Fatal(err)
		}
		return events[len(events)-1].Version
	}
	versionBefore := victimVersion()

	// Writes without an id act on the caller's own workspace by
	// construction; each is called with a valid body and the victim is
	// checked afterwards.
	ownWorkspaceWrites := map[string]any{
		"POST /v1/tickets":     map[string]any{"subject": "s", "customer": map[string]any{"email": "attacker@example.com"}, "message": map[string]any{"body": "b"}},
		"POST /v1/api-keys":    map[string]any{"role": "agent"},
		"PUT /v1/ip-blocklist": map[string]any{"cidrs": []string{"128.0.0.0/1"}},
		"PUT /v1/rate-limits":  map[string]any{"limits": map[string]any{"tickets.read": map[string]any{"limit": 1, "window_seconds": 3600}}},
		"POST /v1/automations": map[string]any{"name": "mine", "actions": []any{map[string]any{"type": "add_tags", "value": []string{"mine"}}}},
		// The simulator runs the caller's rules, never the victim's.
		"POST /v1/automations/simulate": map[string]any{"ticket": map[string]any{"subject": "s", "customer": map[string]any{"email": "victim@example.com"}, "message": map[string]any{"body": "b"}}},
		"PUT /v1/automations/:id":       map[string]any{"name": "pwned"},
		"POST /v1/webhooks":             map[string]any{"url": "https://mine.example.com/h", "event_types": []string{"*"}},
		"PATCH /v1/webhooks/:id":        map[string]any{"active": false},
		"POST /v1/webhooks/:id/replay":  map[string]any{"from": "2000-01-01T00:00:00Z"},
		"POST /v1/sla-policies":         map[string]any{"name": "mine", "first_response": map[string]any{"minutes": 30}},
		"PUT /v1/sla-policies/:id":      map[string]any{"name": "pwned", "first_response": map[string]any{"minutes": 1}},
		// Bodies for routes with an id, so that only the id can fail them.
		"PATCH /v1/tickets/:id":         map[string]any{"priority": "urgent"},
		"POST /v1/tickets/:id/messages": map[string]any{"body": "hijack"},
		"PATCH /v1/customers/:id":       map[string]any{"name": "pwned"},
		"POST /v1/customers":            map[string]any{"email": "victim@example.com", "name": "pwned"},
		// A batch upserts the email in the caller's workspace, never the
		// victim's customer of the same email.
		"POST /v1/batch/customers": map[string]any{"items": []any{map[string]any{"email": "victim@example.com", "name": "pwned"}}},
		"POST /v1/batch/tickets": map[string]any{"items": []any{map[string]any{"subject": "s", "customer": map[string]any{"email": "victim@example.com"},
			"message": map[string]any{"body": "b"}}}},
		"POST /v1/customers/:id/merge": map[string]any{"source_customer_id": attacker.ID.String()},
	}

	for _, rt := range h.server.Routes() {
		name := rt.Method + " " + rt.Path
		t.Run(name, func(t *testing.T) {
			switch {
			case rt.Public:
				return
			case rt.IDKind != "":
				id, ok := ids[rt.IDKind]
				if !ok {
					t.Fatalf("no victim id of kind %q: add one to this test", rt.IDKind)
				}
				path := strings.Replace(rt.Path, ":id", id, 1)
				h.want(h.do(rt.Method, path, h.adminKey, ownWorkspaceWrites[name]), 404, "not_found")
			case rt.Method == "GET":
				// Lookups that need a query ask for the victim's data.
				queries := map[string]string{"GET /v1/customers": "?email=victim@example.com"}
				r := h.do(rt.Method, rt.Path+queries[name], h.adminKey, nil)
				h.want(r, 200, "")
				for _, s := range secrets {
					if strings.Contains(r.raw, s) {
						t.Errorf("%s shows the other workspace's %s: %s", name, s, r.raw)
					}
				}
			default:
				body, ok := ownWorkspaceWrites[name]
				if !ok {
					t.Fatalf("%s: add it to ownWorkspaceWrites (or give it an IDKind) so its isolation is tested", name)
				}
				r := h.do(rt.Method, rt.Path, h.adminKey, body)
				if r.status >= 300 {
					t.Fatalf("%s: %d %s", name, r.status, r.raw)
				}
			}
		})
	}

	// The victim is untouched: its stream did not move, its settings are
	// the defaults, and both its keys still work from anywhere.
	if v := victimVersion(); v != versionBefore {
		t.Errorf("victim workspace stream moved from version %d to %d", versionBefore, v)
	}
	settings, err := h.store.WorkspaceSettings(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if len(settings.IPBlocklist) != 0 || len(settings.RateLimits) != 0 {
		t.Errorf("victim settings changed: %+v", settings)
	}
	for _, key := range []string{victimAdmin, victimKey.Secret} {
		h.want(h.do("GET", "/v1/tickets/"+ticket.ID.String(), key, nil), 200, "")
	}
}
