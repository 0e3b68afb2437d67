package http_test

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// rule is an automation rule body: conditions in all, then actions as
// type/value pairs.
func rule(name string, position int, all []any, actions ...any) map[string]any {
	var acts []any
	for i := 0; i < len(actions); i += 2 {
		acts = append(acts, map[string]any{"type": actions[i], "value": actions[i+1]})
	}
	return map[string]any{"name": name, "position": position, "conditions": map[string]any{"all": all}, "actions": acts}
}

func when(field, op string, value any) map[string]any {
	return map[string]any{"field": field, "operator": op, "value": value}
}

func (h *harness) createRule(body map[string]any) (id string) {
	h.t.Helper()
	r := h.do("POST", "/v1/automations", h.adminKey, body)
	h.want(r, 201, "")
	return r.body["id"].(string)
}

// storedEvents counts the workspace's events in the event store itself
// (the change feed lags behind open transactions of other tests).
func (h *harness) storedEvents() int {
	h.t.Helper()
	var n int
	if err := h.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE workspace_id = $1`, h.workspace).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// feedEvents waits until the change feed shows an event matching match,
// and returns the feed.
func (h *harness) feedEvents(match func(e map[string]any) bool) []map[string]any {
	h.t.Helper()
	var events []map[string]any
	testenv.Eventually(h.t, 30*time.Second, func() error {
		events = events[:0]
		found := false
		for _, e := range h.do("GET", "/v1/events?limit=1000", h.adminKey, nil).body["events"].([]any) {
			events = append(events, e.(map[string]any))
			found = found || match(e.(map[string]any))
		}
		if !found {
			return fmt.Errorf("the change feed does not show the event yet")
		}
		return nil
	})
	return events
}

// automationEntries returns the ticket's audit entries made by rules.
func (h *harness) automationEntries(ticketID string) []map[string]any {
	h.t.Helper()
	r := h.do("GET", "/v1/tickets/"+ticketID+"/audit", h.adminKey, nil)
	h.want(r, 200, "")
	var out []map[string]any
	for _, e := range r.body["data"].([]any) {
		if e := e.(map[string]any); e["channel"] == "automation" {
			out = append(out, e)
		}
	}
	return out
}

func TestAutomations_RunInsideCreate(t *testing.T) {
	h := newHarness(t)
	refund := h.createRule(rule("Refunds to billing", 1, []any{when("ticket.subject", "contains", "refund")},
		"add_tags", []string{"refund"}, "set_priority", "high", "assign_team", "billing"))
	h.createRule(rule("Never fires", 2, []any{when("customer.email_domain", "is", "nowhere.example")}, "add_tags", []string{"never"}))
	// A cascade: the first rule's priority makes this one fire in pass 2.
	cascade := h.createRule(rule("High priority is watched", 3, []any{when("ticket.priority", "changed_to", "high")},
		"add_tags", []string{"watched"}))

	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Refund for order 7"))
	h.want(r, 201, "")
	if fmt.Sprint(r.body["tags"]) != "[refund watched]" || r.body["priority"] != "high" || r.body["team"] != "billing" || r.body["version"] != 3.0 {
		t.Fatalf("automations did not shape the created ticket: %s", r.raw)
	}
	id := r.body["id"].(string)
	// The read agrees with the answer.
	if g := h.do("GET", "/v1/tickets/"+id, h.adminKey, nil); fmt.Sprint(g.body["tags"]) != "[refund watched]" || g.body["version"] != 3.0 {
		t.Fatalf("read after create: %s", g.raw)
	}
	entries := h.automationEntries(id)
	if len(entries) != 2 {
		t.Fatalf("want 2 automation entries in the audit, got %v", entries)
	}
	for i, want := range []string{refund, cascade} {
		e := entries[i]
		if e["rule_id"] != want || e["rule_version"] != 1.0 || e["actor"].(map[string]any)["type"] != "rule" || e["request_id"] == nil {
			t.Errorf("audit entry %d: %v", i, e)
		}
	}

	// A ticket the rules do not match is left alone.
	r = h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Where is my parcel"))
	if fmt.Sprint(r.body["tags"]) != "[]" || r.body["version"] != 1.0 {
		t.Errorf("unmatched ticket changed: %s", r.raw)
	}
}

func TestAutomations_RunInsideUpdatesAndMessages(t *testing.T) {
	h := newHarness(t)
	escalate := h.createRule(rule("Urgent goes to escalations", 1, []any{when("ticket.priority", "changed_to", "urgent")},
		"assign_team", "escalations", "notify_slack", map[string]any{"channel": "#escalations", "message": "urgent ticket"}))
	h.createRule(rule("Customer replies reopen the conversation", 2,
		[]any{when("event.type", "is", "ticket.message_added"), when("ticket.tags", "not_includes", "replied")}, "add_tags", []string{"replied"}))

	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Printer on fire"))
	h.want(r, 201, "")
	id := r.body["id"].(string)
	path := "/v1/tickets/" + id

	r = h.do("PATCH", path, h.adminKey, map[string]any{"priority": "urgent"})
	h.want(r, 200, "")
	if r.body["team"] != "escalations" || r.body["version"] != 4.0 {
		t.Fatalf("PATCH did not run the automation pass: %s", r.raw)
	}
	// The same PATCH again changes nothing, so no rule runs and no event
	// is appended.
	r = h.do("PATCH", path, h.adminKey, map[string]any{"priority": "urgent"})
	if r.body["version"] != 4.0 {
		t.Errorf("a no-op PATCH appended: %s", r.raw)
	}
	r = h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "still burning", "author_type": "customer"})
	h.want(r, 201, "")
	if !strings.Contains(fmt.Sprint(r.body["tags"]), "replied") {
		t.Fatalf("message did not trigger the rule: %s", r.raw)
	}

	// The notify action is an event for the dispatcher, from the rule.
	for _, e := range h.feedEvents(func(e map[string]any) bool { return e["type"] == "ticket.notification_requested" }) {
		if e["type"] == "ticket.notification_requested" {
			md := e["metadata"].(map[string]any)
			data := e["data"].(map[string]any)
			if md["rule_id"] != escalate || md["channel"] != "automation" || data["action"] != "notify_slack" ||
				data["value"].(map[string]any)["channel"] != "#escalations" {
				t.Errorf("notification event: %v", e)
			}
		}
	}
}

func TestAutomations_ConflictStoresNothing(t *testing.T) {
	h := newHarness(t)
	a := h.createRule(rule("High", 1, []any{when("ticket.subject", "contains", "order")}, "set_priority", "high"))
	b := h.createRule(rule("Low", 2, []any{when("ticket.subject", "contains", "order")}, "set_priority", "low"))
	before := h.storedEvents()

	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Order 12"))
	h.want(r, 409, "automation_conflict")
	if !strings.Contains(r.raw, a) || !strings.Contains(r.raw, b) {
		t.Errorf("the conflict does not name both rules: %s", r.raw)
	}
	if after := h.storedEvents(); after != before {
		t.Errorf("a refused create stored %d events", after-before)
	}
	if h.do("GET", "/v1/customers?email=ada@example.com", h.adminKey, nil).raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Error("a refused create left its customer behind")
	}

	// A rule reopening a closed ticket is refused, and the PATCH with it.
	h.do("DELETE", "/v1/automations/"+b, h.adminKey, nil)
	r = h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Order 13"))
	h.want(r, 201, "")
	path := "/v1/tickets/" + r.body["id"].(string)
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"status": "solved"}), 200, "")
	reopen := h.createRule(rule("Reopen", 3, []any{when("ticket.status", "changed_to", "closed")}, "set_status", "open"))
	r = h.do("PATCH", path, h.adminKey, map[string]any{"status": "closed"})
	h.want(r, 409, "automation_conflict")
	if !strings.Contains(r.raw, reopen) {
		t.Errorf("conflict does not name the reopening rule: %s", r.raw)
	}
	if g := h.do("GET", path, h.adminKey, nil); g.body["status"] != "solved" {
		t.Errorf("the refused PATCH changed the ticket: %s", g.raw)
	}

	// Conflicts are counted, without a series per rule (the rules are in
	// the log line): no metric is labelled with a rule id.
	resp, err := nethttp.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(raw)
	var conflicts float64
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "helpdeskflow_automation_conflicts_total "); ok {
			fmt.Sscan(v, &conflicts)
		}
	}
	if conflicts < 2 {
		t.Errorf("helpdeskflow_automation_conflicts_total = %v, want the 2 refused commands or more", conflicts)
	}
	for _, id := range []string{a, b, reopen} {
		if strings.Contains(metrics, id) {
			t.Errorf("a metric is labelled with rule id %s", id)
		}
	}
}

func TestAutomations_Versions(t *testing.T) {
	h := newHarness(t)
	id := h.createRule(rule("Tag", 1, nil, "add_tags", []string{"v1"}))
	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("first"))
	if fmt.Sprint(r.body["tags"]) != "[v1]" {
		t.Fatalf("v1 did not run: %s", r.raw)
	}
	// A new version takes effect on the very next command.
	r = h.do("PUT", "/v1/automations/"+id, h.adminKey, rule("Tag", 1, nil, "add_tags", []string{"v2"}), "If-Match", `"1"`)
	h.want(r, 200, "")
	if r.body["version"] != 2.0 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("replaced: %s", r.raw)
	}
	r = h.do("POST", "/v1/tickets", h.adminKey, ticketBody("second"))
	if fmt.Sprint(r.body["tags"]) != "[v2]" {
		t.Fatalf("v2 did not run: %s", r.raw)
	}
	if e := h.automationEntries(r.body["id"].(string)); len(e) != 1 || e[0]["rule_version"] != 2.0 {
		t.Errorf("audit does not name version 2: %v", e)
	}
	// Inactive, then deleted: neither runs.
	body := rule("Tag", 1, nil, "add_tags", []string{"v3"})
	body["active"] = false
	h.want(h.do("PUT", "/v1/automations/"+id, h.adminKey, body), 200, "")
	if r = h.do("POST", "/v1/tickets", h.adminKey, ticketBody("third")); fmt.Sprint(r.body["tags"]) != "[]" {
		t.Errorf("inactive rule ran: %s", r.raw)
	}
	h.want(h.do("DELETE", "/v1/automations/"+id, h.adminKey, nil), 200, "")
	h.want(h.do("GET", "/v1/automations/"+id, h.adminKey, nil), 404, "not_found")
	// The rule's history stays in the change feed.
	var types []string
	for _, e := range h.feedEvents(func(e map[string]any) bool { return e["type"] == "automation.deleted" }) {
		if e["stream_id"] == id {
			types = append(types, e["type"].(string))
		}
	}
	if fmt.Sprint(types) != "[automation.created automation.updated automation.updated automation.deleted]" {
		t.Errorf("rule history: %v", types)
	}
}

func TestAutomations_CRUD(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/automations", h.adminKey, map[string]any{"name": " ", "position": -1,
		"conditions": map[string]any{"all": []any{when("ticket.nope", "is", "x"), when("ticket.priority", "is", "sky-high")}},
		"actions":    []any{map[string]any{"type": "set_priority", "value": 3}, map[string]any{"type": "explode"}}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"name"`, `"position"`, `"conditions.all[0].field"`, `"conditions.all[1].value"`, `"actions[0].value"`, `"actions[1].type"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("the error does not name %s: %s", field, r.raw)
		}
	}
	agent := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"}).body["key"].(string)
	h.want(h.do("GET", "/v1/automations", agent, nil), 403, "forbidden")

	// Positions default to the end; the list is in run order and pages.
	var ids []string
	for i, pos := range []any{nil, 10, 5, nil} {
		body := rule(fmt.Sprintf("r%d", i), 0, nil, "add_tags", []string{"x"})
		if pos == nil {
			delete(body, "position")
		} else {
			body["position"] = pos
		}
		ids = append(ids, h.createRule(body))
	}
	var listed []string
	var positions []float64
	cursor := ""
	for {
		r := h.do("GET", "/v1/automations?limit=3"+cursor, h.adminKey, nil)
		h.want(r, 200, "")
		for _, a := range r.body["data"].([]any) {
			listed = append(listed, a.(map[string]any)["id"].(string))
			positions = append(positions, a.(map[string]any)["position"].(float64))
		}
		if r.body["next_cursor"] == nil {
			break
		}
		cursor = "&cursor=" + r.body["next_cursor"].(string)
	}
	if want := []string{ids[0], ids[2], ids[1], ids[3]}; !slices.Equal(listed, want) || fmt.Sprint(positions) != "[0 5 10 11]" {
		t.Errorf("list order %v positions %v, want %v", listed, positions, want)
	}
	h.want(h.do("GET", "/v1/automations?cursor=garbage", h.adminKey, nil), 400, "validation_failed")
	h.want(h.do("PUT", "/v1/automations/"+ids[0], h.adminKey, rule("r0", 0, nil, "add_tags", []string{"y"}), "If-Match", `"7"`), 412, "precondition_failed")
}

func TestAutomations_Simulate(t *testing.T) {
	h := newHarness(t)
	id := h.createRule(rule("VIP", 1, []any{when("customer.email_domain", "is", "example.com")}, "add_tags", []string{"vip"}, "set_priority", "urgent"))
	before := h.storedEvents()
	r := h.do("POST", "/v1/automations/simulate", h.adminKey, map[string]any{"ticket": ticketBody("hello")})
	h.want(r, 200, "")
	fired := r.body["fired"].([]any)
	if len(fired) != 1 || fired[0].(map[string]any)["rule_id"] != id || r.body["ticket"].(map[string]any)["priority"] != "urgent" || r.body["conflict"] != nil {
		t.Fatalf("simulation: %s", r.raw)
	}
	if after := h.storedEvents(); after != before {
		t.Errorf("the simulation stored %d events", after-before)
	}

	// An existing ticket with a change, against draft rules.
	created := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("hello"))
	r = h.do("POST", "/v1/automations/simulate", h.adminKey, map[string]any{"ticket_id": created.body["id"], "update": map[string]any{"team": "ops"},
		"rules": []any{rule("draft", 0, []any{when("ticket.team", "changed_to", "ops")}, "assign_agent", "agent-7")}})
	h.want(r, 200, "")
	if r.body["ticket"].(map[string]any)["assignee_id"] != "agent-7" || len(r.body["fired"].([]any)) != 1 {
		t.Errorf("draft simulation: %s", r.raw)
	}
	if g := h.do("GET", "/v1/tickets/"+created.body["id"].(string), h.adminKey, nil); g.body["team"] != nil {
		t.Errorf("the simulation changed the ticket: %s", g.raw)
	}
	r = h.do("POST", "/v1/automations/simulate", h.adminKey, map[string]any{"ticket_id": created.body["id"], "update": map[string]any{"priority": "nope"},
		"rules": []any{map[string]any{"name": "", "actions": []any{}}}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"update.priority"`, `"rules[0].name"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("the error does not name %s: %s", field, r.raw)
		}
	}
}

// TestAutomations_ConflictShape: automation_conflict carries the rule ids
// as an array beside the code, and one detail per conflicting field.
func TestAutomations_ConflictShape(t *testing.T) {
	h := newHarness(t)
	a := h.createRule(rule("Urgent", 1, nil, "set_priority", "urgent", "add_tags", []string{"vip"}))
	b := h.createRule(rule("Low", 2, nil, "set_priority", "low", "remove_tags", []string{"vip"}))

	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Order 12"))
	h.want(r, 409, "automation_conflict")
	e := r.body["error"].(map[string]any)
	ids, _ := e["rule_ids"].([]any)
	if !slices.Equal(ids, []any{a, b}) {
		t.Errorf("rule_ids = %v, want [%s %s]: %s", e["rule_ids"], a, b, r.raw)
	}
	want := map[string]string{
		"priority": "set to urgent by rule " + a + " and to low by rule " + b,
		"tags":     `tag "vip" added by rule ` + a + " and removed by rule " + b,
	}
	if got := details(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("details = %v, want %v", got, want)
	}

	// The simulator reports the same conflict in the same shape.
	r = h.do("POST", "/v1/automations/simulate", h.adminKey, map[string]any{"ticket": ticketBody("Order 12")})
	h.want(r, 200, "")
	conflict, _ := r.body["conflict"].(map[string]any)
	if ids, _ := conflict["rule_ids"].([]any); !slices.Equal(ids, []any{a, b}) || conflict["code"] != "automation_conflict" {
		t.Errorf("simulated conflict: %s", r.raw)
	}
}
