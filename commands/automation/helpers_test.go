package automation_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

// ruleID returns a fixed id whose byte order follows n.
func ruleID(n int) uuid.UUID { return uuid.UUID{14: byte(n >> 8), 15: byte(n)} }

func newRule(n, position int, conds automation.Conditions, actions ...automation.Action) automation.Rule {
	return automation.Rule{ID: ruleID(n), Version: int64(n + 100), Name: "rule", Position: position, Active: true, Conditions: conds, Actions: actions}
}

func all(cs ...automation.Condition) automation.Conditions { return automation.Conditions{All: cs} }

func cond(field, op string, v any) automation.Condition {
	return automation.Condition{Field: field, Operator: op, Value: v}
}

func act(typ string, v any) automation.Action { return automation.Action{Type: typ, Value: v} }

func strp(s string) *string { return &s }

func ticket() helpdeskflow.Ticket {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return helpdeskflow.Ticket{
		ID: uuid.MustParse("7d9f0000-0000-4000-8000-000000000001"), Subject: "Refund for order 1042",
		Status: helpdeskflow.StatusOpen, Priority: helpdeskflow.PriorityNormal, Type: "question", Channel: "email",
		Tags: []string{"billing", "vip"}, Team: strp("support"),
		CustomFields: map[string]any{"order_total": 120.5, "region": "EU", "sku_list": []any{"A1", "B2"}, "count": "7"},
		Messages: []helpdeskflow.Message{
			{AuthorType: helpdeskflow.AuthorCustomer, BodyText: "first message"},
			{AuthorType: helpdeskflow.AuthorCustomer, BodyText: "My order ARRIVED broken, please help"},
		},
		Version: 3, CreatedAt: at, UpdatedAt: at,
	}
}

func customer() helpdeskflow.Customer {
	return helpdeskflow.Customer{
		Email: "ada@Example.com", Name: "Ada Lovelace", Tags: []string{"enterprise"},
		CustomFields: map[string]any{"tier": "gold", "seats": 250.0},
		Metadata:     map[string]any{"plan": "pro"},
		LinkedProfiles: []helpdeskflow.LinkedProfile{
			{Provider: "shopify", ExternalID: "42", Data: map[string]any{"total_spent": "1999.50", "orders": 12.0}},
		},
	}
}

func updateInput() automation.Input {
	before := ticket()
	after := ticket()
	after.Tags = []string{"billing", "vip"}
	return automation.Input{Trigger: helpdeskflow.EventTicketUpdated, Before: &before, Ticket: after, Customer: customer()}
}

func mustRun(t *testing.T, in automation.Input, rules []automation.Rule, opts automation.Options) automation.Result {
	t.Helper()
	res, err := automation.Run(in, rules, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}
