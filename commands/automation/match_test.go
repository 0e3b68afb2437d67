package automation_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

func TestMatches(t *testing.T) {
	tests := []struct {
		name  string
		conds automation.Conditions
		want  bool
	}{
		{"empty matches everything", automation.Conditions{}, true},
		{"priority in", all(cond("ticket.priority", "in", []any{"normal", "urgent"})), true},
		{"priority in, no", all(cond("ticket.priority", "in", []any{"high", "urgent"})), false},
		{"tags includes", all(cond("ticket.tags", "includes", "VIP")), true},
		{"customer custom field", all(cond("customer.custom_fields.tier", "is", "gold")), true},
		{"customer linked profile number", all(cond("customer.linked_profiles.shopify.data.total_spent", "greater_than", 1000.0)), true},
		{"all must hold", all(cond("ticket.tags", "includes", "vip"), cond("ticket.status", "is", "pending")), false},
		{"any: one holds", automation.Conditions{Any: []automation.Condition{cond("ticket.status", "is", "pending"), cond("customer.email_domain", "is", "example.com")}}, true},
		{"any: none holds", automation.Conditions{Any: []automation.Condition{cond("ticket.status", "is", "pending"), cond("customer.name", "contains", "babbage")}}, false},
		{"all and any", automation.Conditions{All: []automation.Condition{cond("ticket.team", "is", "support")},
			Any: []automation.Condition{cond("ticket.custom_fields.region", "is", "us"), cond("ticket.custom_fields.order_total", "greater_than", 100.0)}}, true},
		{"invalid conditions match nothing", all(cond("ticket.colour", "is", "red")), false},
		{"negative invalid conditions match nothing", all(cond("ticket.priority", "is_not", "critical")), false},
		{"changed is refused, so matches nothing", all(cond("ticket.priority", "changed", nil)), false},
		{"event.type is refused, so matches nothing", all(cond("event.type", "is_not", "ticket.deleted")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, c := ticket(), customer()
			if got := automation.Matches(tt.conds, tk, c); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(tk, ticket()) || !reflect.DeepEqual(c, customer()) {
				t.Fatal("Matches modified its arguments")
			}
		})
	}
}

// Matches agrees with Run: a rule with the same conditions fires exactly
// when Matches holds.
func TestMatches_AgreesWithRun(t *testing.T) {
	for i, c := range []automation.Condition{
		cond("ticket.subject", "contains", "refund"), cond("ticket.subject", "not_contains", "refund"),
		cond("ticket.team", "is", nil), cond("ticket.assignee_id", "is", nil),
		cond("ticket.custom_fields.count", "less_than", 8.0), cond("customer.metadata.plan", "is_not", "pro"),
		cond("customer.tags", "not_includes", "enterprise"), cond("ticket.body", "contains", "broken"),
	} {
		conds := all(c)
		in := updateInput()
		res := mustRun(t, in, []automation.Rule{newRule(1, 0, conds, act("add_tags", []any{"hit"}))}, automation.Options{})
		if got, want := automation.Matches(conds, in.Ticket, in.Customer), len(res.Fired) == 1; got != want {
			t.Errorf("condition %d %+v: Matches = %v, Run fired = %v", i, c, got, want)
		}
	}
}

func TestValidateConditions(t *testing.T) {
	valid := automation.Conditions{
		All: []automation.Condition{cond("ticket.priority", "in", []any{"high", "urgent"}), cond("customer.custom_fields.tier", "is", "gold")},
		Any: []automation.Condition{cond("ticket.tags", "includes", "vip")},
	}
	if got := automation.ValidateConditions(valid, "conditions"); got != nil {
		t.Fatalf("valid conditions: %v", got)
	}
	if got := automation.ValidateConditions(automation.Conditions{}, "conditions"); got != nil {
		t.Fatalf("empty conditions: %v", got)
	}
	bad := automation.Conditions{
		All: []automation.Condition{
			cond("event.type", "is", "ticket.created"),
			cond("ticket.priority", "changed", nil),
			cond("ticket.status", "changed_to", "solved"),
			cond("ticket.colour", "is", "red"),
			cond("customer.tags", "changed", nil),
		},
		Any: []automation.Condition{cond("ticket.priority", "is", "critical"), cond("event.type", "changed", nil)},
	}
	got := automation.ValidateConditions(bad, "sla.conditions")
	wantFields := []string{
		"sla.conditions.all[0].field",
		"sla.conditions.all[1].operator",
		"sla.conditions.all[2].operator",
		"sla.conditions.all[3].field",
		"sla.conditions.all[4].operator", // once: changed does not apply to customer fields anyway
		"sla.conditions.any[0].value",
		"sla.conditions.any[1].operator", // changed does not apply to event.type
		"sla.conditions.any[1].field",    // and event.type is refused
	}
	fields := make([]string, len(got))
	for i, p := range got {
		fields[i] = p.Field
		if p.Problem == "" {
			t.Errorf("%s: empty problem", p.Field)
		}
	}
	if !reflect.DeepEqual(fields, wantFields) {
		t.Fatalf("problem fields:\n got %q\nwant %q\n(%v)", fields, wantFields, got)
	}
	if got[0].Problem != "event.type is not available here: these conditions are matched against the ticket's state, not a command" {
		t.Errorf("event.type problem = %q", got[0].Problem)
	}
	if got[1].Problem != "changed is not available here: these conditions are matched against the ticket's state, not a command" {
		t.Errorf("changed problem = %q", got[1].Problem)
	}
}

func TestValidateConditions_Paths(t *testing.T) {
	bad := automation.Conditions{Any: []automation.Condition{cond("ticket.priority", "like", "x")}}
	for path, want := range map[string]string{"conditions": "conditions.any[0].operator", "": "any[0].operator", "policies[2].conditions": "policies[2].conditions.any[0].operator"} {
		got := automation.ValidateConditions(bad, path)
		if len(got) != 1 || got[0].Field != want {
			t.Errorf("path %q: problems %v, want one at %s", path, got, want)
		}
	}
	many := make([]automation.Condition, automation.MaxConditions+1)
	for i := range many {
		many[i] = cond("ticket.tags", "includes", fmt.Sprintf("t%d", i))
	}
	got := automation.ValidateConditions(automation.Conditions{All: many}, "conditions")
	if want := []helpdeskflow.FieldProblem{{Field: "conditions", Problem: fmt.Sprintf("must have at most %d conditions, got %d", automation.MaxConditions, automation.MaxConditions+1)}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("too many conditions: %v, want %v", got, want)
	}
}
