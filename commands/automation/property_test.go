package automation_test

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

var (
	propTags       = []any{"ta", "tb", "tc", "td", "te", "tf"}
	propPriorities = []any{"low", "normal", "high", "urgent"}
	propStatuses   = []any{"open", "pending", "on_hold", "solved", "closed"}
)

func pick(rng *rand.Rand, from []any) any { return from[rng.Intn(len(from))] }

func randomCondition(rng *rand.Rand) automation.Condition {
	switch rng.Intn(7) {
	case 0:
		return cond("ticket.tags", "includes", pick(rng, propTags))
	case 1:
		return cond("ticket.tags", "not_includes", pick(rng, propTags))
	case 2:
		return cond("ticket.priority", "is", pick(rng, propPriorities))
	case 3:
		return cond("ticket.status", "in", []any{pick(rng, propStatuses), pick(rng, propStatuses)})
	case 4:
		return cond("ticket.priority", "changed", nil)
	case 5:
		return cond("ticket.custom_fields.level", "greater_than", float64(rng.Intn(5)))
	default:
		return cond("ticket.team", "is", pick(rng, []any{"a", "b", nil}))
	}
}

func randomAction(rng *rand.Rand) automation.Action {
	switch rng.Intn(7) {
	case 0:
		return act("add_tags", []any{pick(rng, propTags)})
	case 1:
		return act("remove_tags", []any{pick(rng, propTags)})
	case 2:
		return act("set_priority", pick(rng, propPriorities))
	case 3:
		return act("set_status", pick(rng, propStatuses))
	case 4:
		return act("set_custom_field", map[string]any{"name": "level", "value": float64(rng.Intn(5))})
	case 5:
		return act("assign_team", pick(rng, []any{"a", "b", nil}))
	default:
		return act("notify_slack", map[string]any{"channel": "#x", "message": "m"})
	}
}

func randomRules(rng *rand.Rand) []automation.Rule {
	rules := make([]automation.Rule, 1+rng.Intn(25))
	for i := range rules {
		var c automation.Conditions
		for range rng.Intn(3) {
			c.All = append(c.All, randomCondition(rng))
		}
		for range rng.Intn(3) {
			c.Any = append(c.Any, randomCondition(rng))
		}
		r := newRule(i+1, rng.Intn(6), c, randomAction(rng))
		// A second action on another kind of field, so the rule stays valid.
		if a := randomAction(rng); a.Type != r.Actions[0].Type {
			r.Actions = append(r.Actions, a)
		}
		r.Active = rng.Intn(8) != 0
		rules[i] = r
	}
	return rules
}

// TestRun_RandomRules checks, for many random rule sets, that Run ends
// within the pass limit or with the limit's error, that only conflicts are
// refused, and that shuffling the rules changes nothing.
func TestRun_RandomRules(t *testing.T) {
	rng := rand.New(rand.NewSource(20250301))
	var ok, conflicts, capped int
	for iter := range 3000 {
		rules := randomRules(rng)
		for i := range rules {
			if err := rules[i].Validate(); err != nil {
				rules[i].Actions = rules[i].Actions[:1] // e.g. add and remove the same tag
			}
		}
		in := updateInput()
		in.Ticket.Status = pick(rng, propStatuses).(string)
		in.Ticket.CustomFields = map[string]any{"level": float64(rng.Intn(5))}
		opts := automation.Options{MaxPasses: 1 + rng.Intn(6)}
		want, wantErr := automation.Run(in, rules, opts)
		switch code := helpdeskflow.ErrorCode(wantErr); {
		case wantErr == nil:
			ok++
			if want.Passes > opts.MaxPasses {
				t.Fatalf("iteration %d: %d passes, limit %d", iter, want.Passes, opts.MaxPasses)
			}
		case code == helpdeskflow.EAutomationConflict:
			conflicts++
			if strings.Contains(helpdeskflow.ErrorMessage(wantErr), "still fire after") {
				capped++
			}
		default:
			t.Fatalf("iteration %d: unexpected error %v", iter, wantErr)
		}
		for range 3 {
			shuffled := append([]automation.Rule(nil), rules...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got, gotErr := automation.Run(in, shuffled, opts)
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
				t.Fatalf("iteration %d: shuffled rules give\n%+v, %v\nwant\n%+v, %v", iter, got, gotErr, want, wantErr)
			}
		}
	}
	if ok < 300 || conflicts < 300 || capped < 10 {
		t.Errorf("random rule sets too one-sided: %d ok, %d refused (%d at the pass limit)", ok, conflicts, capped)
	}
	t.Logf("%d ran, %d refused (%d at the pass limit)", ok, conflicts, capped)
}
