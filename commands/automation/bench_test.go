package automation_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

// benchRules returns n active rules of realistic shapes, of which about one
// in ten matches the bench ticket.
func benchRules(n int) []automation.Rule {
	rules := make([]automation.Rule, n)
	for i := range rules {
		var c automation.Conditions
		var a []automation.Action
		switch i % 5 {
		case 0:
			c = all(cond("ticket.subject", "contains", fmt.Sprintf("keyword%d", i)), cond("event.type", "in", []any{"ticket.created", "ticket.updated"}))
			a = []automation.Action{act("add_tags", []any{fmt.Sprintf("kw%d", i)}), act("set_priority", "high")}
		case 1:
			c = automation.Conditions{All: []automation.Condition{cond("customer.email_domain", "is", fmt.Sprintf("corp%d.com", i))},
				Any: []automation.Condition{cond("customer.custom_fields.tier", "is", "gold"), cond("customer.tags", "includes", "enterprise")}}
			a = []automation.Action{act("assign_team", fmt.Sprintf("team%d", i))}
		case 2:
			c = all(cond("ticket.priority", "changed_to", "urgent"), cond("ticket.tags", "not_includes", fmt.Sprintf("seen%d", i)))
			a = []automation.Action{act("notify_slack", map[string]any{"channel": "#urgent", "message": "urgent ticket"})}
		case 3:
			c = all(cond("customer.linked_profiles.shopify.data.total_spent", "greater_than", float64(100*i)), cond("ticket.body", "contains", "broken"))
			a = []automation.Action{act("set_custom_field", map[string]any{"name": fmt.Sprintf("vip%d", i), "value": true})}
		default:
			c = all(cond("ticket.status", "in", []any{"open", "pending"}), cond("ticket.channel", "is", "chat"))
			a = []automation.Action{act("add_tags", []any{"chat"})}
		}
		rules[i] = newRule(i+1, i, c, a...)
	}
	return rules
}

func BenchmarkRun(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			rules := benchRules(n)
			in := automation.Input{Trigger: helpdeskflow.EventTicketCreated, Ticket: ticket(), Customer: customer()}
			res, err := automation.Run(in, rules, automation.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(res.Fired)), "fired")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := automation.Run(in, rules, automation.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProgramRun is BenchmarkRun with the rules compiled once, as a
// workspace's rule set runs them for every command.
func BenchmarkProgramRun(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			p, err := automation.Compile(benchRules(n))
			if err != nil {
				b.Fatal(err)
			}
			in := automation.Input{Trigger: helpdeskflow.EventTicketCreated, Ticket: ticket(), Customer: customer()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Run(in, automation.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestProgram_RunsAsRun: rules compiled once give every command the result
// Run gives, run after run (the program is not changed by running), for
// less than half the allocations.
func TestProgram_RunsAsRun(t *testing.T) {
	rules := benchRules(100)
	p, err := automation.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, trigger := range []string{helpdeskflow.EventTicketCreated, helpdeskflow.EventTicketUpdated} {
		in := automation.Input{Trigger: trigger, Ticket: ticket(), Customer: customer()}
		want, werr := automation.Run(in, rules, automation.Options{})
		for range 3 {
			got, gerr := p.Run(in, automation.Options{})
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: the program gives %+v (%v), Run gives %+v (%v)", trigger, got, gerr, want, werr)
			}
		}
	}
	in := automation.Input{Trigger: helpdeskflow.EventTicketCreated, Ticket: ticket(), Customer: customer()}
	compiled := testing.AllocsPerRun(20, func() { p.Run(in, automation.Options{}) })             //nolint:errcheck // measured, checked above
	each := testing.AllocsPerRun(20, func() { automation.Run(in, rules, automation.Options{}) }) //nolint:errcheck // measured, checked above
	if compiled*2 > each {
		t.Errorf("the program allocates %.0f times per run, Run %.0f: want under half", compiled, each)
	}
}
