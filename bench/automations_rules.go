package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"slices"
	"strings"
)

// ruleJSON is the body of POST /v1/automations.
type ruleJSON struct {
	Name       string         `json:"name"`
	Position   int            `json:"position"`
	Active     bool           `json:"active"`
	Conditions ruleConditions `json:"conditions"`
	Actions    []ruleAction   `json:"actions"`
}

type ruleConditions struct {
	All []ruleCondition `json:"all"`
	Any []ruleCondition `json:"any"`
}

type ruleCondition struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

type ruleAction struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

func cond(field, op string, value any) ruleCondition {
	return ruleCondition{Field: field, Operator: op, Value: value}
}

// firingRules are the rules that match the bench's tickets (every body has
// a customer at example.com; priorities low, normal ×3, high, urgent; 1–3
// of ten tags; one subject template in eight mentions a refund). Their
// changes are few (about one per ticket: most of the cost measured is
// evaluating the rules), and they never conflict: one sets the priority,
// the others add tags or set the team; the last fires in the second pass
// on a ticket the first raised to high.
func firingRules() []ruleJSON {
	return []ruleJSON{
		{Name: "example.com customers: low and normal become high",
			Conditions: ruleConditions{All: []ruleCondition{
				cond("customer.email_domain", "is", automationBodyDomain),
				cond("ticket.priority", "in", []string{"low", "normal"})}},
			Actions: []ruleAction{{Type: "set_priority", Value: "high"}}},
		{Name: "escalate urgent",
			Conditions: ruleConditions{All: []ruleCondition{cond("ticket.priority", "changed_to", "urgent")}},
			Actions:    []ruleAction{{Type: "add_tags", Value: []string{"escalated"}}}},
		{Name: "tag refunds",
			Conditions: ruleConditions{All: []ruleCondition{cond("ticket.subject", "contains", "refund")}},
			Actions:    []ruleAction{{Type: "add_tags", Value: []string{"refund"}}}},
		{Name: "high-priority VIPs go to the VIP desk",
			Conditions: ruleConditions{All: []ruleCondition{
				cond("ticket.priority", "changed_to", "high"),
				cond("ticket.tags", "includes", "vip")}},
			Actions: []ruleAction{{Type: "assign_team", Value: "vip-desk"}}},
	}
}

// quietRule is rule i of those that never match the bench's tickets: their
// keywords, addresses, tags and domains appear in no body. Five shapes in
// turn, so evaluation touches the subject, the message text, the customer's
// address and domain, the tags and the priority.
func quietRule(i int) ruleJSON {
	r := ruleJSON{Name: fmt.Sprintf("rule %d", i)}
	kw := fmt.Sprintf("keyword-%d", i)
	switch i % 5 {
	case 0:
		r.Conditions.All = []ruleCondition{cond("ticket.subject", "contains", kw)}
		r.Actions = []ruleAction{{Type: "add_tags", Value: []string{fmt.Sprintf("kw-%d", i)}}}
	case 1:
		r.Conditions.All = []ruleCondition{cond("ticket.body", "contains", kw)}
		r.Conditions.Any = []ruleCondition{cond("ticket.tags", "includes", "billing"), cond("ticket.tags", "includes", "invoice")}
		r.Actions = []ruleAction{{Type: "add_tags", Value: []string{fmt.Sprintf("kw-%d", i)}}, {Type: "assign_team", Value: "billing"}}
	case 2:
		r.Conditions.All = []ruleCondition{cond("customer.email", "is", fmt.Sprintf("vip-%d@partner.example.org", i))}
		r.Actions = []ruleAction{{Type: "set_priority", Value: "urgent"}, {Type: "add_tags", Value: []string{"vip"}}}
	case 3:
		r.Conditions.All = []ruleCondition{cond("ticket.tags", "includes", fmt.Sprintf("topic-%d", i))}
		r.Actions = []ruleAction{{Type: "assign_team", Value: fmt.Sprintf("team-%d", i)}}
	case 4:
		r.Conditions.All = []ruleCondition{
			cond("customer.email_domain", "is", fmt.Sprintf("partner-%d.example.net", i)),
			cond("ticket.priority", "in", []string{"high", "urgent"})}
		r.Actions = []ruleAction{{Type: "add_tags", Value: []string{fmt.Sprintf("partner-%d", i)}}}
	}
	return r
}

// automationRuleSet is the n rules of a rule workspace, positions 0..n-1:
// the firing ones at positions 5, 25, 45, … (as many as fit), the rest
// quiet. It also returns how many fire.
func automationRuleSet(n int) ([]ruleJSON, int) {
	firing := firingRules()
	out := make([]ruleJSON, n)
	fired := 0
	for i := range out {
		if i%20 == 5 && (i-5)/20 < len(firing) {
			out[i] = firing[(i-5)/20]
			fired++
		} else {
			out[i] = quietRule(i)
		}
		out[i].Position, out[i].Active = i, true
		if out[i].Conditions.Any == nil {
			out[i].Conditions.Any = []ruleCondition{}
		}
	}
	return out, fired
}

// automationProbeBody matches rule 0 (subject keyword-0) and the firing
// rules but "escalate urgent" (the VIP desk in the second pass); the answer
// must show their effects.
func automationProbeBody() ([]byte, string, []string) {
	subject := "Probe keyword-0: refund please"
	b := createBody{Subject: subject, Priority: "normal", Tags: []string{"probe", "vip"}}
	b.Customer.Email, b.Customer.Name = "probe@"+automationBodyDomain, "Probe Customer"
	b.Message.Body = "<p>Automation probe.</p>"
	raw, _ := json.Marshal(b)
	return raw, subject, []string{"priority=high", "tag:kw-0", "tag:refund", "team=vip-desk"}
}

// errNoAutomationsAPI is POST /v1/automations answering 404 or 405: the
// server has no rules API, so there is nothing to measure.
var errNoAutomationsAPI = errors.New("POST /v1/automations is not served")

// createRule creates one rule through the admin API; it answers 201 with
// the rule (id, version, …).
func createRule(ctx context.Context, client *nethttp.Client, baseURL, key string, r ruleJSON) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	status, raw, err := send(ctx, client, "POST", baseURL+"/v1/automations", key, body)
	if err != nil {
		return fmt.Errorf("create rule %q: %w", r.Name, err)
	}
	if status == nethttp.StatusNotFound || status == nethttp.StatusMethodNotAllowed {
		return fmt.Errorf("%w: status %d: %s", errNoAutomationsAPI, status, trimBody(raw))
	}
	if status != nethttp.StatusCreated {
		return fmt.Errorf("create rule %q: status %d: %s", r.Name, status, trimBody(raw))
	}
	var got struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.ID == "" {
		return fmt.Errorf("create rule %q: the 201 has no rule id (%v): %s", r.Name, err, trimBody(raw))
	}
	return nil
}

// probeAutomations creates the probe ticket and compares its answer (the
// ticket as GET returns it) with the rules' expected effects.
func probeAutomations(ctx context.Context, client *nethttp.Client, baseURL, key string) automationProbe {
	body, subject, expected := automationProbeBody()
	p := automationProbe{Subject: subject, Expected: expected}
	status, raw, err := send(ctx, client, "POST", baseURL+"/v1/tickets", key, body)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	if status != nethttp.StatusCreated {
		p.Error = fmt.Sprintf("status %d: %s", status, trimBody(raw))
		return p
	}
	var got struct {
		Priority string   `json:"priority"`
		Team     *string  `json:"team"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		p.Error = fmt.Sprintf("decode the ticket: %v: %s", err, trimBody(raw))
		return p
	}
	p.Priority, p.Team, p.Tags = got.Priority, got.Team, got.Tags
	for _, e := range expected {
		var ok bool
		switch {
		case strings.HasPrefix(e, "priority="):
			ok = got.Priority == strings.TrimPrefix(e, "priority=")
		case strings.HasPrefix(e, "team="):
			ok = got.Team != nil && *got.Team == strings.TrimPrefix(e, "team=")
		case strings.HasPrefix(e, "tag:"):
			ok = slices.Contains(got.Tags, strings.TrimPrefix(e, "tag:"))
		}
		if !ok {
			p.Missing = append(p.Missing, e)
		}
	}
	p.Fired = len(p.Missing) < len(expected)
	return p
}
