package tickets_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestCreateTicket_CleansPlainText: a new ticket's plain-text fields are
// stored cleaned, its body sanitized as HTML, and a required field that
// cleaning empties is refused by name.
func TestCreateTicket_CleansPlainText(t *testing.T) {
	svc := tickets.New(postgres.Tickets(testenv.Store(t)))
	ctx, workspace := context.Background(), uuid.New()
	cmd := validTicket()
	cmd.Subject = " <img src=x onerror=alert(1)>Refund for a < b\r\n & c "
	cmd.Customer.Name = "Tom & <i>Jerry</i>\x00"
	cmd.Tags = []string{"<b>VIP</b>", "a<!-- -->b"}
	cmd.CustomFields = map[string]any{"note": "line 1\r\n<script>x</script>\tline 2\x07", "n": 3.0}
	cmd.Message.Body = `<p>Hi <img src=x onerror=alert(1)></p>`
	tk, err := svc.CreateTicket(ctx, workspace, md, cmd)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := svc.GetTicket(ctx, workspace, tk.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stored.Subject, "Refund for a < b  & c"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	if got, want := stored.Customer.Name, "Tom & Jerry"; got != want {
		t.Errorf("customer name = %q, want %q", got, want)
	}
	if got, want := stored.Tags, []string{"vip", "ab"}; !slices.Equal(got, want) {
		t.Errorf("tags = %q, want %q", got, want)
	}
	if got, want := stored.CustomFields["note"], "line 1\nx\tline 2"; got != want {
		t.Errorf("custom field = %q, want %q", got, want)
	}
	if got := stored.Messages[0].Body; strings.Contains(got, "onerror") {
		t.Errorf("body %q was not sanitized", got)
	}

	for _, tc := range []struct {
		name   string
		modify func(c *tickets.CreateTicket)
		field  string
	}{
		{"subject of nothing but a tag", func(c *tickets.CreateTicket) { c.Subject = `<img src=x onerror=alert(1)>` }, "subject"},
		{"subject of a comment and controls", func(c *tickets.CreateTicket) { c.Subject = "<!-- x -->\x00\r\n" }, "subject"},
		{"tag of nothing but markup", func(c *tickets.CreateTicket) { c.Tags = []string{"ok", "<br>"} }, "tags[1]"},
		{"custom field name with markup", func(c *tickets.CreateTicket) { c.CustomFields = map[string]any{"<b>x</b>": "v"} }, "custom_fields.<b>x</b>"},
		{"custom field name with a newline", func(c *tickets.CreateTicket) { c.CustomFields = map[string]any{"a\nb": "v"} }, "custom_fields.a\nb"},
		{"external id with markup", func(c *tickets.CreateTicket) { id := "zd-<b>1</b>"; c.ExternalID = &id }, "external_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := validTicket()
			tc.modify(&cmd)
			_, err := svc.CreateTicket(ctx, workspace, md, cmd)
			if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EValidation {
				t.Fatalf("error code = %q (%v), want %q", got, err, helpdeskflow.EValidation)
			}
			if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0].Field != tc.field {
				t.Errorf("details = %+v, want one naming %q", d, tc.field)
			}
		})
	}
}

// TestUpdateTicket_CleansPlainText: PATCH fields are cleaned as a create's.
func TestUpdateTicket_CleansPlainText(t *testing.T) {
	svc := tickets.New(postgres.Tickets(testenv.Store(t)))
	ctx, workspace := context.Background(), uuid.New()
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	subject, team, assignee := "New <b>subject</b>", "<i>billing</i>\n", "agent<script>7</script>"
	tk, err = svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{
		Subject: &subject, Team: commands.Nullable[string]{Set: true, Value: &team}, AssigneeID: commands.Nullable[string]{Set: true, Value: &assignee},
		TagsAdd: []string{"<u>Urgent</u>"}, CustomFields: map[string]any{"note": "<b>x</b>\r\ny"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Subject != "New subject" || *tk.Team != "billing" || *tk.AssigneeID != "agent7" || !slices.Equal(tk.Tags, []string{"urgent"}) ||
		tk.CustomFields["note"] != "x\ny" {
		t.Errorf("after update: subject %q team %q assignee %q tags %q custom fields %q", tk.Subject, *tk.Team, *tk.AssigneeID, tk.Tags, tk.CustomFields)
	}

	empty := "<img src=x onerror=alert(1)>"
	_, err = svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{
		Subject: &empty, Team: commands.Nullable[string]{Set: true, Value: &empty}}, true)
	var fields []string
	for _, d := range helpdeskflow.ErrorDetails(err) {
		fields = append(fields, d.Field)
	}
	if helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation || !slices.Equal(fields, []string{"subject", "team"}) {
		t.Errorf("emptied subject and team: %v, fields %v; want validation_failed naming subject and team", err, fields)
	}
}

// TestUpsertCustomer_CleansPlainText: names, tags, and every string of
// custom fields, metadata and linked profile data, however deep, are
// cleaned; keys that are not plain text are refused by name.
func TestUpsertCustomer_CleansPlainText(t *testing.T) {
	svc := tickets.New(postgres.Tickets(testenv.Store(t)))
	ctx, workspace := context.Background(), uuid.New()
	name := "<b>Grace</b> Hopper\t"
	c, _, err := svc.UpsertCustomer(ctx, workspace, md, tickets.UpsertCustomer{
		Email: "grace@example.com", Name: &name, Tags: []string{"<i>Navy</i>"},
		CustomFields: customFields(t, `{"rank": "<b>Rear</b> Admiral\u0000"}`),
		Metadata:     customFields(t, `{"crm": {"owner": "<img src=x onerror=alert(1)>sam", "notes": ["a<!-- -->b", 1, {"x": "<i>y</i>"}]}}`),
		LinkedProfiles: []helpdeskflow.LinkedProfile{{Provider: "shopify", ExternalID: "c-1",
			Data: customFields(t, `{"tags": ["<script>vip</script>"], "note": "line\r\nnext"}`)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%q %q %v %v %v", c.Name, c.Tags, c.CustomFields, c.Metadata, c.LinkedProfiles[0].Data)
	want := fmt.Sprintf("%q %q %v %v %v", "Grace Hopper", []string{"navy"}, map[string]any{"rank": "Rear Admiral"},
		map[string]any{"crm": map[string]any{"owner": "sam", "notes": []any{"ab", 1.0, map[string]any{"x": "y"}}}},
		map[string]any{"tags": []any{"vip"}, "note": "line\nnext"})
	if got != want {
		t.Errorf("stored customer:\n%s\nwant\n%s", got, want)
	}

	_, err = svc.UpdateCustomer(ctx, workspace, md, c.ID, nil, tickets.UpdateCustomer{
		Metadata: customFields(t, `{"a": {"<b>k</b>": 1}, "b\u0007": 2}`),
		LinkedProfiles: []helpdeskflow.LinkedProfile{{Provider: "stripe", ExternalID: "cus_<b>1</b>",
			Data: customFields(t, `{"x": {"y\nz": 1}}`)}},
	})
	var fields []string
	for _, d := range helpdeskflow.ErrorDetails(err) {
		fields = append(fields, d.Field)
	}
	wantFields := []string{"metadata.a.<b>k</b>", "metadata.b\x07", "linked_profiles[0].external_id", "linked_profiles[0].data.x.y\nz"}
	if helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation || !slices.Equal(fields, wantFields) {
		t.Errorf("keys and ids with markup: %v, fields %q; want validation_failed naming %q", err, fields, wantFields)
	}
}

// TestAutomation_ActionsCleaned: an automation rule's actions that write
// text into tickets are cleaned when the rule is saved, so what rules
// write is plain text too.
func TestAutomation_ActionsCleaned(t *testing.T) {
	store := testenv.Store(t)
	svc, automations := tickets.New(postgres.Tickets(store)), rules.New(postgres.Rules(store))
	ctx, workspace := context.Background(), uuid.New()
	rule, err := automations.CreateAutomation(ctx, workspace, md, rules.AutomationRule{Name: "<b>VIP</b>\n rule",
		Actions: []automation.Action{
			{Type: automation.ActionAddTags, Value: []any{"<b>VIP</b>"}},
			{Type: automation.ActionAssignTeam, Value: "<i>billing</i>"},
			{Type: automation.ActionAssignAgent, Value: "agent<!-- -->7"},
			{Type: automation.ActionSetCustomField, Value: map[string]any{"name": "note", "value": "<script>x</script>\r\ny"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(rule.Name, rule.Actions), fmt.Sprint("VIP  rule", []automation.Action{
		{Type: automation.ActionAddTags, Value: []any{"VIP"}}, // as given; rules lowercase tags when they apply
		{Type: automation.ActionAssignTeam, Value: "billing"},
		{Type: automation.ActionAssignAgent, Value: "agent7"},
		{Type: automation.ActionSetCustomField, Value: map[string]any{"name": "note", "value": "x\ny"}},
	}); got != want {
		t.Errorf("stored rule = %s, want %s", got, want)
	}
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tk.Tags, []string{"vip"}) || *tk.Team != "billing" || *tk.AssigneeID != "agent7" || tk.CustomFields["note"] != "x\ny" {
		t.Errorf("ticket after the rule: tags %q team %q assignee %q custom fields %v", tk.Tags, *tk.Team, *tk.AssigneeID, tk.CustomFields)
	}

	_, err = automations.CreateAutomation(ctx, workspace, md, rules.AutomationRule{Name: "x",
		Actions: []automation.Action{{Type: automation.ActionAssignTeam, Value: "<b></b>"}}})
	if d := helpdeskflow.ErrorDetails(err); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation || len(d) != 1 || d[0].Field != "actions[0].value" {
		t.Errorf("a team that cleaning empties: %v %+v, want validation_failed naming actions[0].value", err, d)
	}
}
