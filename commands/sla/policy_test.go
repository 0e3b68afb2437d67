package sla_test

import (
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
)

func spec(minutes, warn int) *helpdeskflow.SLATargetSpec {
	return &helpdeskflow.SLATargetSpec{Minutes: minutes, WarnBeforeMinutes: warn}
}

func cond(field, op string, v any) automation.Condition {
	return automation.Condition{Field: field, Operator: op, Value: v}
}

// policyID returns a fixed id whose byte order follows n.
func policyID(n int) uuid.UUID { return uuid.UUID{15: byte(n)} }

func policy(n, position int, conds ...automation.Condition) sla.Policy {
	return sla.Policy{ID: policyID(n), Version: int64(10 + n), Name: "policy", Position: position, Active: true,
		Conditions: automation.Conditions{All: conds}, FirstResponse: spec(60, 10), Resolution: spec(480, 0)}
}

func problems(t *testing.T, err error) []helpdeskflow.FieldProblem {
	t.Helper()
	var e *helpdeskflow.Error
	if !errors.As(err, &e) || e.Code != helpdeskflow.EValidation {
		t.Fatalf("err = %v, want a %s *helpdeskflow.Error", err, helpdeskflow.EValidation)
	}
	return e.Details
}

func TestPolicy_Validate(t *testing.T) {
	valid := policy(1, 0, cond("ticket.priority", "in", []any{"high", "urgent"}))
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid policy: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(p *sla.Policy)
		field string // "" for valid
	}{
		{"one target is enough", func(p *sla.Policy) { p.FirstResponse = nil }, ""},
		{"no warning point", func(p *sla.Policy) { p.FirstResponse.WarnBeforeMinutes = 0 }, ""},
		{"warning a minute before", func(p *sla.Policy) { p.FirstResponse.WarnBeforeMinutes = 59 }, ""},
		{"a year", func(p *sla.Policy) { p.Resolution.Minutes = 525600 }, ""},
		{"name of 200 characters", func(p *sla.Policy) { p.Name = strings.Repeat("é", 200) }, ""},
		{"inactive and invalid is still invalid", func(p *sla.Policy) { p.Active = false; p.Name = "" }, "name"},
		{"blank name", func(p *sla.Policy) { p.Name = "  " }, "name"},
		{"name too long", func(p *sla.Policy) { p.Name = strings.Repeat("a", 201) }, "name"},
		{"negative position", func(p *sla.Policy) { p.Position = -1 }, "position"},
		{"zero minutes", func(p *sla.Policy) { p.FirstResponse.Minutes = 0 }, "first_response.minutes"},
		{"negative minutes", func(p *sla.Policy) { p.Resolution.Minutes = -1 }, "resolution.minutes"},
		{"more than a year", func(p *sla.Policy) { p.Resolution.Minutes = 525601 }, "resolution.minutes"},
		{"warning at the start", func(p *sla.Policy) { p.FirstResponse.WarnBeforeMinutes = 60 }, "first_response.warn_before_minutes"},
		{"negative warning", func(p *sla.Policy) { p.Resolution.WarnBeforeMinutes = -5 }, "resolution.warn_before_minutes"},
		{"no targets", func(p *sla.Policy) { p.FirstResponse, p.Resolution = nil, nil }, "targets"},
		{"bad condition", func(p *sla.Policy) { p.Conditions.All[0].Value = []any{"high", "asap"} }, "conditions.all[0].value[1]"},
		{"changed needs a command", func(p *sla.Policy) { p.Conditions.All[0] = cond("ticket.priority", "changed_to", "high") }, "conditions.all[0].operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy(1, 0, cond("ticket.priority", "in", []any{"high", "urgent"}))
			tt.edit(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			got := problems(t, err)
			if len(got) != 1 || got[0].Field != tt.field {
				t.Fatalf("problems %v, want one at %s", got, tt.field)
			}
		})
	}
}

func TestPolicy_ValidateListsEveryProblem(t *testing.T) {
	p := sla.Policy{Position: -3, Conditions: automation.Conditions{
		All: []automation.Condition{cond("event.type", "is", "ticket.created")},
		Any: []automation.Condition{cond("ticket.tags", "includes", 1.0)},
	}}
	got := problems(t, p.Validate())
	want := []helpdeskflow.FieldProblem{
		{Field: "name", Problem: "must not be empty"},
		{Field: "position", Problem: "must not be negative"},
		{Field: "conditions.all[0].field", Problem: "event.type is not available here: these conditions are matched against the ticket's state, not a command"},
		{Field: "conditions.any[0].value", Problem: "must be a non-empty string (a tag)"},
		{Field: "targets", Problem: "a policy needs first_response or resolution"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n got %v\nwant %v", got, want)
	}

	p = policy(1, 0)
	p.FirstResponse = spec(0, -1)
	p.Resolution = spec(30, 30)
	fields := []string{}
	for _, pr := range problems(t, p.Validate()) {
		fields = append(fields, pr.Field)
	}
	if want := []string{"first_response.minutes", "first_response.warn_before_minutes", "resolution.warn_before_minutes"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("target problems %q, want %q", fields, want)
	}
}

func TestSelect(t *testing.T) {
	tk := helpdeskflow.Ticket{Status: helpdeskflow.StatusOpen, Priority: helpdeskflow.PriorityUrgent, Tags: []string{"vip"}}
	cust := helpdeskflow.Customer{Email: "ada@example.com", CustomFields: map[string]any{"tier": "gold"}}

	inactive := policy(1, 0)
	inactive.Active = false
	policies := []sla.Policy{
		inactive, // would match everything, but is inactive
		policy(2, 1, cond("ticket.priority", "is", "low")),                                            // does not match
		policy(9, 2, cond("customer.custom_fields.tier", "is", "gold")),                               // matches, same position, larger id
		policy(4, 2, cond("ticket.tags", "includes", "vip"), cond("ticket.priority", "is", "urgent")), // matches: the answer
		policy(3, 5), // matches everything, later position
		policy(5, 2, cond("customer.email_domain", "is", "acme.io")), // same position, does not match
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		shuffled := append([]sla.Policy(nil), policies...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		before := append([]sla.Policy(nil), shuffled...)
		got := sla.Select(shuffled, tk, cust)
		if got == nil || got.ID != policyID(4) {
			t.Fatalf("shuffle %d: Select = %v, want policy %s", i, got, policyID(4))
		}
		if !reflect.DeepEqual(shuffled, before) {
			t.Fatalf("shuffle %d: Select modified the slice", i)
		}
	}

	tk.Priority = helpdeskflow.PriorityNormal
	if got := sla.Select(policies, tk, cust); got == nil || got.ID != policyID(9) {
		t.Fatalf("Select without urgent = %v, want policy %s", got, policyID(9))
	}
	cust.CustomFields = nil
	if got := sla.Select(policies, tk, cust); got == nil || got.ID != policyID(3) {
		t.Fatalf("Select with nothing specific = %v, want the catch-all %s", got, policyID(3))
	}
	if got := sla.Select(policies[:3], tk, cust); got != nil {
		t.Fatalf("Select without a match = %+v, want nil", got)
	}
	if got := sla.Select(nil, tk, cust); got != nil {
		t.Fatalf("Select of no policies = %+v, want nil", got)
	}
}

func TestApplied(t *testing.T) {
	p := policy(7, 0)
	p.Name = "VIP"
	got := sla.Applied(&p)
	if got.PolicyID == nil || *got.PolicyID != p.ID || got.PolicyVersion != 17 || got.PolicyName != "VIP" ||
		!reflect.DeepEqual(got.FirstResponse, spec(60, 10)) || !reflect.DeepEqual(got.Resolution, spec(480, 0)) {
		t.Fatalf("Applied = %+v", got)
	}
	got.FirstResponse.Minutes = 1
	*got.PolicyID = uuid.Nil
	if p.FirstResponse.Minutes != 60 || p.ID != policyID(7) {
		t.Fatal("Applied shares its targets or id with the policy")
	}
	if got := sla.Applied(nil); !reflect.DeepEqual(got, helpdeskflow.SLAPolicyApplied{}) {
		t.Fatalf("Applied(nil) = %+v, want the removal", got)
	}
}

func TestNeedsApply(t *testing.T) {
	p := policy(7, 0) // version 17
	current := &helpdeskflow.TicketSLA{PolicyID: p.ID, PolicyVersion: p.Version}
	newer := p
	newer.Version++
	other := policy(8, 0)
	other.Version = p.Version
	tests := []struct {
		name    string
		current *helpdeskflow.TicketSLA
		p       *sla.Policy
		want    bool
	}{
		{"no SLA, no policy", nil, nil, false},
		{"no SLA, a policy", nil, &p, true},
		{"an SLA, no policy", current, nil, true},
		{"same policy and version", current, &p, false},
		{"new version", current, &newer, true},
		{"another policy", current, &other, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sla.NeedsApply(tt.current, tt.p); got != tt.want {
				t.Fatalf("NeedsApply = %v, want %v", got, tt.want)
			}
		})
	}
}

// Applied events fold into the clocks NeedsApply then considers current.
func TestApplied_Folds(t *testing.T) {
	p := policy(7, 0)
	ne, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketSLAPolicyApplied, sla.Applied(&p))
	if err != nil {
		t.Fatal(err)
	}
	tk := helpdeskflow.Ticket{Status: helpdeskflow.StatusOpen}
	e := helpdeskflow.Event{Type: ne.Type, Data: ne.Data, Version: 2, OccurredAt: ne.OccurredAt}
	if err := helpdeskflow.ApplyTicket(&tk, e); err != nil {
		t.Fatal(err)
	}
	if sla.NeedsApply(tk.SLA, &p) {
		t.Fatal("NeedsApply after applying the policy")
	}
	if got, want := tk.SLA.Resolution.StartedAt, ne.OccurredAt; !got.Equal(want) {
		t.Fatalf("resolution started at %v, want %v", got, want)
	}
}
