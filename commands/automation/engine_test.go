package automation_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

func TestRun_Operators(t *testing.T) {
	changedPriority := func(in *automation.Input) { in.Ticket.Priority = helpdeskflow.PriorityUrgent }
	create := func(in *automation.Input) { in.Before, in.Trigger = nil, helpdeskflow.EventTicketCreated }
	unassigned := func(in *automation.Input) { in.Ticket.Team = nil }
	tests := []struct {
		name  string
		cond  automation.Condition
		setup func(*automation.Input)
		want  bool
	}{
		{"subject contains, case-insensitive", cond("ticket.subject", "contains", "REFUND"), nil, true},
		{"subject contains, missing", cond("ticket.subject", "contains", "invoice"), nil, false},
		{"subject not_contains", cond("ticket.subject", "not_contains", "invoice"), nil, true},
		{"body is the latest message", cond("ticket.body", "contains", "arrived broken"), nil, true},
		{"body ignores earlier messages", cond("ticket.body", "contains", "first"), nil, false},
		{"body contains non-ASCII", cond("ticket.body", "contains", "ÄRGER"), func(in *automation.Input) {
			in.Ticket.Messages = []helpdeskflow.Message{{BodyText: "großer ärger"}}
		}, true},
		{"subject is", cond("ticket.subject", "is", "refund for ORDER 1042"), nil, true},
		{"subject is_not", cond("ticket.subject", "is_not", "other"), nil, true},
		{"channel is", cond("ticket.channel", "is", "email"), nil, true},
		{"type in", cond("ticket.type", "in", []any{"incident", "question"}), nil, true},
		{"type in, none", cond("ticket.type", "in", []any{"incident", "problem"}), nil, false},
		{"priority is", cond("ticket.priority", "is", "normal"), nil, true},
		{"priority is_not", cond("ticket.priority", "is_not", "normal"), nil, false},
		{"status in", cond("ticket.status", "in", []any{"open", "pending"}), nil, true},
		{"team is", cond("ticket.team", "is", "Support"), nil, true},
		{"team is null, assigned", cond("ticket.team", "is", nil), nil, false},
		{"team is null, unassigned", cond("ticket.team", "is", nil), unassigned, true},
		{"team is_not x, unassigned", cond("ticket.team", "is_not", "support"), unassigned, true},
		{"team contains, unassigned", cond("ticket.team", "contains", "s"), unassigned, false},
		{"assignee is null", cond("ticket.assignee_id", "is", nil), nil, true},
		{"tags includes", cond("ticket.tags", "includes", "VIP"), nil, true},
		{"tags includes, missing", cond("ticket.tags", "includes", "spam"), nil, false},
		{"tags not_includes", cond("ticket.tags", "not_includes", "spam"), nil, true},
		{"custom field is number", cond("ticket.custom_fields.order_total", "is", 120.5), nil, true},
		{"custom field greater_than", cond("ticket.custom_fields.order_total", "greater_than", 100.0), nil, true},
		{"custom field less_than", cond("ticket.custom_fields.order_total", "less_than", 100.0), nil, false},
		{"custom field numeric string greater_than", cond("ticket.custom_fields.count", "greater_than", 5.0), nil, true},
		{"custom field number is numeric string", cond("ticket.custom_fields.count", "is", 7.0), nil, true},
		{"custom field non-number greater_than", cond("ticket.custom_fields.region", "greater_than", 0.0), nil, false},
		{"custom field missing is null", cond("ticket.custom_fields.nope", "is", nil), nil, true},
		{"custom field missing is_not x", cond("ticket.custom_fields.nope", "is_not", "x"), nil, true},
		{"custom field includes (list)", cond("ticket.custom_fields.sku_list", "includes", "b2"), nil, true},
		{"custom field in", cond("ticket.custom_fields.region", "in", []any{"US", "eu"}), nil, true},
		{"custom field contains", cond("ticket.custom_fields.region", "contains", "e"), nil, true},
		{"custom field contains on number", cond("ticket.custom_fields.order_total", "contains", "120"), nil, false},
		{"customer email", cond("customer.email", "is", "ada@example.com"), nil, true},
		{"customer email_domain", cond("customer.email_domain", "is", "example.com"), nil, true},
		{"customer email_domain in", cond("customer.email_domain", "in", []any{"acme.io"}), nil, false},
		{"customer name contains", cond("customer.name", "contains", "lovelace"), nil, true},
		{"customer tags includes", cond("customer.tags", "includes", "enterprise"), nil, true},
		{"customer custom field", cond("customer.custom_fields.tier", "is", "Gold"), nil, true},
		{"customer custom field number", cond("customer.custom_fields.seats", "greater_than", 100.0), nil, true},
		{"customer metadata", cond("customer.metadata.plan", "in", []any{"pro", "team"}), nil, true},
		{"linked profile data string number", cond("customer.linked_profiles.shopify.data.total_spent", "greater_than", 1000.0), nil, true},
		{"linked profile data number", cond("customer.linked_profiles.shopify.data.orders", "less_than", 10.0), nil, false},
		{"linked profile missing provider", cond("customer.linked_profiles.stripe.data.total", "is", nil), nil, true},
		{"event.type is", cond("event.type", "is", "ticket.updated"), nil, true},
		{"event.type in", cond("event.type", "in", []any{"ticket.created"}), nil, false},
		{"changed, unchanged", cond("ticket.priority", "changed", nil), nil, false},
		{"changed", cond("ticket.priority", "changed", nil), changedPriority, true},
		{"changed on create", cond("ticket.priority", "changed", nil), create, true},
		{"changed_to", cond("ticket.priority", "changed_to", "urgent"), changedPriority, true},
		{"changed_to other value", cond("ticket.priority", "changed_to", "high"), changedPriority, false},
		{"changed_to, unchanged but equal", cond("ticket.priority", "changed_to", "normal"), nil, false},
		{"tags changed", cond("ticket.tags", "changed", nil), func(in *automation.Input) { in.Ticket.Tags = []string{"billing"} }, true},
		{"team changed to null", cond("ticket.team", "changed_to", nil), unassigned, true},
		{"custom field changed", cond("ticket.custom_fields.region", "changed", nil), func(in *automation.Input) {
			in.Ticket.CustomFields = map[string]any{"region": "US"}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := updateInput()
			if tt.setup != nil {
				tt.setup(&in)
			}
			r := newRule(1, 0, all(tt.cond), act("add_tags", []any{"hit"}))
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			res := mustRun(t, in, []automation.Rule{r}, automation.Options{})
			if got := len(res.Fired) == 1; got != tt.want {
				t.Errorf("fired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRun_AllAndAny(t *testing.T) {
	tests := []struct {
		name  string
		conds automation.Conditions
		want  bool
	}{
		{"no conditions", automation.Conditions{}, true},
		{"all hold", all(cond("ticket.priority", "is", "normal"), cond("ticket.tags", "includes", "vip")), true},
		{"one of all fails", all(cond("ticket.priority", "is", "normal"), cond("ticket.tags", "includes", "x")), false},
		{"any: one holds", automation.Conditions{Any: []automation.Condition{cond("ticket.priority", "is", "high"), cond("ticket.tags", "includes", "vip")}}, true},
		{"any: none holds", automation.Conditions{Any: []automation.Condition{cond("ticket.priority", "is", "high")}}, false},
		{"all holds, any fails", automation.Conditions{All: []automation.Condition{cond("ticket.priority", "is", "normal")}, Any: []automation.Condition{cond("ticket.priority", "is", "high")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRun(t, updateInput(), []automation.Rule{newRule(1, 0, tt.conds, act("add_tags", []any{"hit"}))}, automation.Options{})
			if got := len(res.Fired) == 1; got != tt.want {
				t.Errorf("fired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRun_OrderByPosition(t *testing.T) {
	rules := []automation.Rule{
		newRule(1, 5, all(), act("add_tags", []any{"fifth"})),
		newRule(3, 1, all(), act("add_tags", []any{"first-b"})),
		newRule(2, 1, all(), act("add_tags", []any{"first-a"})), // same position: lower id first
		newRule(4, 0, all(), act("add_tags", []any{"zero"})),
		{ID: ruleID(9), Name: "inactive", Position: -1, Actions: []automation.Action{act("add_tags", []any{"never"})}},
	}
	res := mustRun(t, updateInput(), rules, automation.Options{})
	if got, want := res.Fired, []uuid.UUID{ruleID(4), ruleID(2), ruleID(3), ruleID(1)}; !slices.Equal(got, want) {
		t.Errorf("Fired = %v, want %v", got, want)
	}
	if got, want := res.Ticket.Tags, []string{"billing", "vip", "zero", "first-a", "first-b", "fifth"}; !slices.Equal(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	if got, want := res.Passes, 1; got != want {
		t.Errorf("Passes = %d, want %d", got, want)
	}
}

func TestRun_Cascade(t *testing.T) {
	// B sits before A, but matches only once A raised the priority: next pass.
	a := newRule(1, 2, all(cond("ticket.subject", "contains", "refund")), act("set_priority", "high"))
	b := newRule(2, 1, all(cond("ticket.priority", "changed_to", "high")), act("assign_team", "escalations"))
	c := newRule(3, 3, all(cond("ticket.team", "is", "escalations")), act("add_tags", []any{"escalated"}))
	res := mustRun(t, updateInput(), []automation.Rule{c, b, a}, automation.Options{})
	if got, want := res.Fired, []uuid.UUID{ruleID(1), ruleID(2), ruleID(3)}; !slices.Equal(got, want) {
		t.Errorf("Fired = %v, want %v", got, want)
	}
	if got, want := res.Passes, 3; got != want {
		t.Errorf("Passes = %d, want %d", got, want)
	}
	if got, want := len(res.Effects), 3; got != want {
		t.Fatalf("%d effects, want %d", got, want)
	}
	if u := res.Effects[1].Update; u.Team == nil || *u.Team.Old != "support" || *u.Team.New != "escalations" {
		t.Errorf("effect 2 = %+v, want team support → escalations", u)
	}
	if got, want := res.Effects[1].RuleVersion, int64(102); got != want {
		t.Errorf("RuleVersion = %d, want %d", got, want)
	}
}

func TestRun_EachRuleFiresOnce(t *testing.T) {
	// Both rules keep matching after every pass; each still fires once.
	rules := []automation.Rule{
		newRule(1, 0, all(cond("ticket.tags", "includes", "vip")), act("add_tags", []any{"a"})),
		newRule(2, 1, all(cond("ticket.tags", "includes", "a")), act("remove_tags", []any{"a"})),
	}
	res := mustRun(t, updateInput(), rules, automation.Options{})
	if got, want := res.Fired, []uuid.UUID{ruleID(1), ruleID(2)}; !slices.Equal(got, want) {
		t.Errorf("Fired = %v, want %v", got, want)
	}
	if got, want := res.Ticket.Tags, []string{"billing", "vip"}; !slices.Equal(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	if got, want := res.Passes, 2; got != want {
		t.Errorf("Passes = %d, want %d", got, want)
	}
}

// chain returns n rules where rule i matches only after rule i-1 added its tag.
func chain(n int) []automation.Rule {
	rules := make([]automation.Rule, n)
	for i := range rules {
		rules[i] = newRule(i+1, n-i, all(cond("ticket.tags", "includes", tagN(i))), act("add_tags", []any{tagN(i + 1)}))
	}
	return rules
}

func tagN(i int) string { return "t" + string(rune('a'+i)) }

func TestRun_PassCap(t *testing.T) {
	in := updateInput()
	in.Ticket.Tags = []string{tagN(0)}
	res := mustRun(t, in, chain(4), automation.Options{MaxPasses: 4})
	if got, want := res.Passes, 4; got != want {
		t.Errorf("Passes = %d, want %d", got, want)
	}
	_, err := automation.Run(in, chain(4), automation.Options{MaxPasses: 3})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EAutomationConflict; got != want {
		t.Fatalf("code = %q (%v), want %q", got, err, want)
	}
	if got, want := helpdeskflow.ErrorRuleIDs(err), []uuid.UUID{ruleID(4)}; !reflect.DeepEqual(got, want) {
		t.Errorf("rule ids = %v, want %v", got, want)
	}
	if got := helpdeskflow.ErrorDetails(err); got != nil {
		t.Errorf("details = %v, want none (no field conflicts)", got)
	}
	if msg := helpdeskflow.ErrorMessage(err); !strings.Contains(msg, ruleID(4).String()) || !strings.Contains(msg, "3 passes") {
		t.Errorf("message %q does not name the rule and the limit", msg)
	}
	// The default limit is 10.
	in.Ticket.Tags = []string{tagN(0)}
	if _, err := automation.Run(in, chain(11), automation.Options{}); helpdeskflow.ErrorCode(err) != helpdeskflow.EAutomationConflict {
		t.Errorf("11 cascading rules under the default limit: %v, want a conflict", err)
	}
	if res := mustRun(t, in, chain(10), automation.Options{}); res.Passes != 10 {
		t.Errorf("Passes = %d, want 10", res.Passes)
	}
}

func TestRun_Conflicts(t *testing.T) {
	always := all()
	one, two := ruleID(1).String(), ruleID(2).String()
	tests := []struct {
		name   string
		a, b   automation.Action
		status string
		want   bool
		// The one detail the conflict must have.
		field, problem string
	}{
		{"priority", act("set_priority", "high"), act("set_priority", "low"), "", true,
			"priority", "set to high by rule " + one + " and to low by rule " + two},
		{"priority agrees", act("set_priority", "high"), act("set_priority", "high"), "", false, "", ""},
		{"status", act("set_status", "pending"), act("set_status", "solved"), "", true,
			"status", "set to pending by rule " + one + " and to solved by rule " + two},
		{"team", act("assign_team", "a"), act("assign_team", nil), "", true,
			"team", `set to "a" by rule ` + one + " and to null by rule " + two},
		{"assignee", act("assign_agent", "u1"), act("assign_agent", "u2"), "", true,
			"assignee_id", `set to "u1" by rule ` + one + ` and to "u2" by rule ` + two},
		{"custom field", act("set_custom_field", map[string]any{"name": "x", "value": 1.0}), act("set_custom_field", map[string]any{"name": "x", "value": "1"}), "", true,
			"custom_fields.x", `set to 1 by rule ` + one + ` and to "1" by rule ` + two},
		{"different custom fields", act("set_custom_field", map[string]any{"name": "x", "value": 1.0}), act("set_custom_field", map[string]any{"name": "y", "value": 2.0}), "", false, "", ""},
		{"add and remove a tag", act("add_tags", []any{"a", "b"}), act("remove_tags", []any{"B"}), "", true,
			"tags", `tag "b" added by rule ` + one + " and removed by rule " + two},
		{"remove and add a tag", act("remove_tags", []any{"vip"}), act("add_tags", []any{"vip"}), "", true,
			"tags", `tag "vip" added by rule ` + two + " and removed by rule " + one},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := []automation.Rule{newRule(1, 0, always, tt.a), newRule(2, 1, always, tt.b), newRule(3, 2, always, act("add_tags", []any{"z"}))}
			res, err := automation.Run(updateInput(), rules, automation.Options{})
			if !tt.want {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if len(res.Fired) != len(rules) {
					t.Errorf("Fired = %v", res.Fired)
				}
				return
			}
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EAutomationConflict; got != want {
				t.Fatalf("code = %q (%v), want %q", got, err, want)
			}
			if got := helpdeskflow.ErrorRuleIDs(err); len(got) != 2 || !slices.Contains(got, ruleID(1)) || !slices.Contains(got, ruleID(2)) {
				t.Errorf("rule ids = %v, want rules 1 and 2", got)
			}
			if got, want := helpdeskflow.ErrorDetails(err), []helpdeskflow.FieldProblem{{Field: tt.field, Problem: tt.problem}}; !reflect.DeepEqual(got, want) {
				t.Errorf("details = %v, want %v", got, want)
			}
			msg := helpdeskflow.ErrorMessage(err)
			if !strings.Contains(msg, one) || !strings.Contains(msg, two) || !strings.Contains(msg, tt.field) {
				t.Errorf("message %q should name both rules and %s", msg, tt.field)
			}
		})
	}
}

// TestRun_EveryConflictAtOnce: rules that conflict over several fields in
// one pass get one error naming every field, with the rule ids of all.
func TestRun_EveryConflictAtOnce(t *testing.T) {
	rules := []automation.Rule{
		newRule(1, 0, all(), act("set_priority", "urgent"), act("add_tags", []any{"vip"})),
		newRule(2, 1, all(), act("set_priority", "low")),
		newRule(3, 2, all(), act("remove_tags", []any{"vip"}), act("assign_team", "billing")),
		newRule(4, 3, all(), act("assign_team", "support")),
	}
	_, err := automation.Run(updateInput(), rules, automation.Options{})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EAutomationConflict; got != want {
		t.Fatalf("code = %q (%v), want %q", got, err, want)
	}
	if got, want := helpdeskflow.ErrorRuleIDs(err), []uuid.UUID{ruleID(1), ruleID(2), ruleID(3), ruleID(4)}; !reflect.DeepEqual(got, want) {
		t.Errorf("rule ids = %v, want %v", got, want)
	}
	want := []helpdeskflow.FieldProblem{
		{Field: "priority", Problem: "set to urgent by rule " + ruleID(1).String() + " and to low by rule " + ruleID(2).String()},
		{Field: "team", Problem: `set to "billing" by rule ` + ruleID(3).String() + ` and to "support" by rule ` + ruleID(4).String()},
		{Field: "tags", Problem: `tag "vip" added by rule ` + ruleID(1).String() + " and removed by rule " + ruleID(3).String()},
	}
	if got := helpdeskflow.ErrorDetails(err); !reflect.DeepEqual(got, want) {
		t.Errorf("details =\n%v\nwant\n%v", got, want)
	}
}

func TestRun_ConflictsOnlyWithinAPass(t *testing.T) {
	// A sets high in pass 1; B, matching only then, sets low in pass 2: the later pass wins.
	a := newRule(1, 0, all(), act("set_priority", "high"))
	b := newRule(2, 1, all(cond("ticket.priority", "is", "high")), act("set_priority", "low"))
	res := mustRun(t, updateInput(), []automation.Rule{a, b}, automation.Options{})
	if got, want := res.Ticket.Priority, "low"; got != want {
		t.Errorf("priority = %q, want %q", got, want)
	}
}

func TestRun_Lifecycle(t *testing.T) {
	tests := []struct {
		from, to string
		refused  bool
	}{
		{helpdeskflow.StatusClosed, helpdeskflow.StatusOpen, true},
		{helpdeskflow.StatusOpen, helpdeskflow.StatusNew, true},
		{helpdeskflow.StatusOpen, helpdeskflow.StatusClosed, true},
		{helpdeskflow.StatusSolved, helpdeskflow.StatusClosed, false},
		{helpdeskflow.StatusClosed, helpdeskflow.StatusClosed, false}, // no change
		{helpdeskflow.StatusNew, helpdeskflow.StatusOpen, false},
	}
	for _, tt := range tests {
		t.Run(tt.from+"→"+tt.to, func(t *testing.T) {
			in := updateInput()
			in.Ticket.Status = tt.from
			_, err := automation.Run(in, []automation.Rule{newRule(7, 0, all(), act("set_status", tt.to))}, automation.Options{})
			if !tt.refused {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EAutomationConflict; got != want {
				t.Fatalf("code = %q (%v), want %q", got, err, want)
			}
			if got, want := helpdeskflow.ErrorRuleIDs(err), []uuid.UUID{ruleID(7)}; !reflect.DeepEqual(got, want) {
				t.Errorf("rule ids = %v, want %v", got, want)
			}
			if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0].Field != "status" || !strings.Contains(d[0].Problem, "set to "+tt.to+" by rule "+ruleID(7).String()) {
				t.Errorf("details = %v, want one naming status, the rule and %s", d, tt.to)
			}
		})
	}
}

func TestRun_NoOpActions(t *testing.T) {
	rules := []automation.Rule{newRule(1, 0, all(),
		act("set_priority", "normal"), act("set_status", "open"), act("assign_team", "support"), act("assign_agent", nil),
		act("add_tags", []any{"VIP"}), act("remove_tags", []any{"spam"}),
		act("set_custom_field", map[string]any{"name": "region", "value": "EU"}),
		act("set_custom_field", map[string]any{"name": "missing", "value": nil}))}
	res := mustRun(t, updateInput(), rules, automation.Options{})
	if got, want := res.Fired, []uuid.UUID{ruleID(1)}; !slices.Equal(got, want) {
		t.Errorf("Fired = %v, want %v", got, want)
	}
	if len(res.Effects) != 0 {
		t.Errorf("Effects = %+v, want none", res.Effects)
	}
	if !reflect.DeepEqual(res.Ticket, updateInput().Ticket) {
		t.Errorf("ticket changed: %+v", res.Ticket)
	}
}

func TestRun_Effects(t *testing.T) {
	in := updateInput()
	orig := updateInput()
	rules := []automation.Rule{newRule(1, 0, all(),
		act("set_priority", "urgent"), act("set_status", "pending"), act("assign_team", nil), act("assign_agent", "agent-7"),
		act("add_tags", []any{" Refund ", "vip"}), act("remove_tags", []any{"billing"}),
		act("set_custom_field", map[string]any{"name": "region", "value": nil}),
		act("set_custom_field", map[string]any{"name": "rma", "value": true}))}
	res := mustRun(t, in, rules, automation.Options{})
	want := helpdeskflow.TicketUpdated{
		Priority:   &helpdeskflow.Change[string]{Old: "normal", New: "urgent"},
		Status:     &helpdeskflow.Change[string]{Old: "open", New: "pending"},
		Team:       &helpdeskflow.Change[*string]{Old: strp("support"), New: nil},
		AssigneeID: &helpdeskflow.Change[*string]{Old: nil, New: strp("agent-7")},
		Tags:       &helpdeskflow.Change[[]string]{Old: []string{"billing", "vip"}, New: []string{"vip", "refund"}},
		CustomFields: map[string]helpdeskflow.Change[any]{
			"region": {Old: "EU", New: nil},
			"rma":    {Old: nil, New: true},
		},
	}
	if len(res.Effects) != 1 {
		t.Fatalf("Effects = %+v, want one", res.Effects)
	}
	if got := res.Effects[0]; got.RuleID != ruleID(1) || got.RuleVersion != 101 || !reflect.DeepEqual(got.Update, want) {
		t.Errorf("effect = %+v\nwant update %+v", got, want)
	}
	// Folding the effect into the input ticket gives Result.Ticket.
	folded := in.Ticket
	if folded.Priority, folded.Status, folded.Team, folded.AssigneeID, folded.Tags = "urgent", "pending", nil, strp("agent-7"), []string{"vip", "refund"}; true {
		folded.CustomFields = map[string]any{"order_total": 120.5, "sku_list": []any{"A1", "B2"}, "count": "7", "rma": true}
	}
	if !reflect.DeepEqual(res.Ticket, folded) {
		t.Errorf("ticket = %+v\nwant %+v", res.Ticket, folded)
	}
	if !reflect.DeepEqual(in, orig) {
		t.Errorf("Run modified its input")
	}
}

func TestRun_AsyncActions(t *testing.T) {
	slack := map[string]any{"channel": "#vip", "message": "VIP ticket"}
	rules := []automation.Rule{
		newRule(1, 0, all(cond("ticket.tags", "includes", "vip")), act("notify_slack", slack)),
		newRule(2, 1, all(cond("ticket.tags", "includes", "nope")), act("notify_slack", slack)),
	}
	res := mustRun(t, updateInput(), rules, automation.Options{})
	want := []automation.AsyncAction{{RuleID: ruleID(1), RuleVersion: 101, Type: "notify_slack", Value: slack}}
	if !reflect.DeepEqual(res.Async, want) {
		t.Errorf("Async = %+v, want %+v", res.Async, want)
	}
	if len(res.Effects) != 0 {
		t.Errorf("Effects = %+v, want none", res.Effects)
	}
}

func TestRun_Errors(t *testing.T) {
	in := updateInput()
	in.Trigger = "ticket.deleted"
	if _, err := automation.Run(in, nil, automation.Options{}); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Errorf("unknown trigger: %v, want %s", err, helpdeskflow.EValidation)
	}
	bad := newRule(1, 0, all(cond("ticket.nope", "is", "x")), act("add_tags", []any{"a"}))
	_, err := automation.Run(updateInput(), []automation.Rule{bad}, automation.Options{})
	if got, want := helpdeskflow.ErrorDetails(err), []helpdeskflow.FieldProblem{{Field: "rules[" + ruleID(1).String() + "].conditions.all[0].field", Problem: "unknown field"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("invalid rule: details %v, want %v", got, want)
	}
	bad.Active = false
	if _, err := automation.Run(updateInput(), []automation.Rule{bad}, automation.Options{}); err != nil {
		t.Errorf("inactive invalid rule: %v", err)
	}
	dup := newRule(1, 0, all(), act("add_tags", []any{"a"}))
	if _, err := automation.Run(updateInput(), []automation.Rule{dup, dup}, automation.Options{}); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Errorf("duplicate ids: %v, want %s", err, helpdeskflow.EValidation)
	}
}
