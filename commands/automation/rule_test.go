package automation_test

import (
	"reflect"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

func TestRule_Validate(t *testing.T) {
	valid := newRule(1, 0, all(cond("ticket.subject", "contains", "refund")), act("add_tags", []any{"refund"}))
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(r *automation.Rule)
		field string
	}{
		{"empty name", func(r *automation.Rule) { r.Name = " " }, "name"},
		{"negative position", func(r *automation.Rule) { r.Position = -1 }, "position"},
		{"no actions", func(r *automation.Rule) { r.Actions = nil }, "actions"},
		{"unknown field", func(r *automation.Rule) { r.Conditions.All[0].Field = "ticket.colour" }, "conditions.all[0].field"},
		{"empty custom field name", func(r *automation.Rule) { r.Conditions.All[0].Field = "ticket.custom_fields." }, "conditions.all[0].field"},
		{"bad linked profile path", func(r *automation.Rule) { r.Conditions.All[0].Field = "customer.linked_profiles.shopify.total" }, "conditions.all[0].field"},
		{"unknown operator", func(r *automation.Rule) { r.Conditions.All[0].Operator = "like" }, "conditions.all[0].operator"},
		{"operator not for kind", func(r *automation.Rule) { r.Conditions.All[0].Operator = "greater_than" }, "conditions.all[0].operator"},
		{"includes on text", func(r *automation.Rule) { r.Conditions.All[0].Operator = "includes" }, "conditions.all[0].operator"},
		{"changed on customer", func(r *automation.Rule) {
			r.Conditions.Any = []automation.Condition{cond("customer.tags", "changed", nil)}
		}, "conditions.any[0].operator"},
		{"contains on tags", func(r *automation.Rule) {
			r.Conditions.Any = []automation.Condition{cond("ticket.tags", "contains", "x")}
		}, "conditions.any[0].operator"},
		{"value type", func(r *automation.Rule) { r.Conditions.All[0].Value = 3.0 }, "conditions.all[0].value"},
		{"priority enum", func(r *automation.Rule) { r.Conditions.All[0] = cond("ticket.priority", "is", "critical") }, "conditions.all[0].value"},
		{"event type enum", func(r *automation.Rule) { r.Conditions.All[0] = cond("event.type", "is", "ticket.deleted") }, "conditions.all[0].value"},
		{"in element", func(r *automation.Rule) { r.Conditions.All[0] = cond("ticket.status", "in", []any{"open", "gone"}) }, "conditions.all[0].value[1]"},
		{"in not a list", func(r *automation.Rule) { r.Conditions.All[0] = cond("ticket.status", "in", "open") }, "conditions.all[0].value"},
		{"greater_than not a number", func(r *automation.Rule) {
			r.Conditions.All[0] = cond("ticket.custom_fields.total", "greater_than", "lots")
		}, "conditions.all[0].value"},
		{"changed with value", func(r *automation.Rule) { r.Conditions.All[0] = cond("ticket.status", "changed", "open") }, "conditions.all[0].value"},
		{"unknown action", func(r *automation.Rule) { r.Actions[0].Type = "delete_ticket" }, "actions[0].type"},
		{"tags not a list", func(r *automation.Rule) { r.Actions[0].Value = "refund" }, "actions[0].value"},
		{"tag with space", func(r *automation.Rule) { r.Actions[0].Value = []any{"ok", "two words"} }, "actions[0].value[1]"},
		{"tag not a string", func(r *automation.Rule) { r.Actions[0].Value = []any{1.0} }, "actions[0].value[0]"},
		{"priority value", func(r *automation.Rule) { r.Actions = append(r.Actions, act("set_priority", "asap")) }, "actions[1].value"},
		{"status value", func(r *automation.Rule) { r.Actions = append(r.Actions, act("set_status", nil)) }, "actions[1].value"},
		{"team value", func(r *automation.Rule) { r.Actions = append(r.Actions, act("assign_team", 5.0)) }, "actions[1].value"},
		{"custom field name", func(r *automation.Rule) {
			r.Actions = append(r.Actions, act("set_custom_field", map[string]any{"value": 1.0}))
		}, "actions[1].value.name"},
		{"custom field value", func(r *automation.Rule) {
			r.Actions = append(r.Actions, act("set_custom_field", map[string]any{"name": "x", "value": []any{1.0}}))
		}, "actions[1].value.value"},
		{"custom field unknown key", func(r *automation.Rule) {
			r.Actions = append(r.Actions, act("set_custom_field", map[string]any{"name": "x", "value": 1.0, "extra": 1.0}))
		}, "actions[1].value.extra"},
		{"slack channel", func(r *automation.Rule) {
			r.Actions = append(r.Actions, act("notify_slack", map[string]any{"message": "hi"}))
		}, "actions[1].value.channel"},
		{"slack message", func(r *automation.Rule) {
			r.Actions = append(r.Actions, act("notify_slack", map[string]any{"channel": "#x", "message": ""}))
		}, "actions[1].value.message"},
		{"same field twice", func(r *automation.Rule) {
			r.Actions = append(r.Actions, act("set_priority", "high"), act("set_priority", "low"))
		}, "actions[2].type"},
		{"add and remove a tag", func(r *automation.Rule) { r.Actions = append(r.Actions, act("remove_tags", []any{"Refund"})) }, "actions[1].value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRule(1, 0, all(cond("ticket.subject", "contains", "refund")), act("add_tags", []any{"refund"}))
			tt.edit(&r)
			err := r.Validate()
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
				t.Fatalf("code = %q (%v), want %q", got, err, want)
			}
			var fields []string
			for _, p := range helpdeskflow.ErrorDetails(err) {
				fields = append(fields, p.Field)
			}
			if !reflect.DeepEqual(fields, []string{tt.field}) {
				t.Errorf("problems at %v, want exactly [%s]: %v", fields, tt.field, helpdeskflow.ErrorDetails(err))
			}
		})
	}
}

func TestRule_ValidateListsEveryProblem(t *testing.T) {
	r := automation.Rule{Position: -2, Conditions: all(cond("x", "y", nil), cond("ticket.tags", "includes", 1.0)),
		Actions: []automation.Action{act("add_tags", nil), act("assign_agent", "")}}
	want := []string{"name", "position", "conditions.all[0].field", "conditions.all[0].operator", "conditions.all[1].value", "actions[0].value", "actions[1].value"}
	var got []string
	for _, p := range helpdeskflow.ErrorDetails(r.Validate()) {
		got = append(got, p.Field)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %v, want %v", got, want)
	}
}
