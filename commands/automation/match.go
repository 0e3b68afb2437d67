package automation

import (
	"fmt"

	"github.com/helpdeskflow/helpdeskflow"
)

// ValidateConditions reports every problem of c as a condition over a
// ticket's state alone, the way SLA policies use the condition language:
// the problems Rule.Validate reports for conditions, plus a refusal of the
// event.type field and of the changed and changed_to operators, which need a
// triggering command. Each problem's Field is a path under path (with path
// "conditions": conditions, conditions.all[0].field,
// conditions.any[2].value[1], …; with an empty path: all[0].field, …). It
// returns nil when c is valid; empty conditions are valid.
func ValidateConditions(c Conditions, path string) []helpdeskflow.FieldProblem {
	var p problems
	var cc compiled
	cc.compileState(&c, path, &p)
	if len(p) == 0 {
		return nil
	}
	return p
}

// Matches reports whether c holds for ticket t of customer cust, evaluated
// exactly as Run evaluates a rule's conditions (see the package
// documentation), with no triggering command. Empty conditions match every
// ticket. Conditions that ValidateConditions refuses match nothing, so an
// invalid stored policy never applies by accident. Matches is pure and safe
// to call concurrently; it does not modify its arguments.
func Matches(c Conditions, t helpdeskflow.Ticket, cust helpdeskflow.Customer) bool {
	var p problems
	var cc compiled
	r := cc.compileState(&c, "", &p)
	if len(p) > 0 {
		return false
	}
	e := engine{in: &Input{Ticket: t, Customer: cust}, state: t}
	return e.matches(&r)
}

// compileState compiles c into a rule without actions, adding the problems
// of conditions that need a triggering command. Problems come in condition
// order, each condition's own problems first.
func (cc *compiled) compileState(c *Conditions, path string, p *problems) rule {
	prefix := path
	if prefix != "" {
		prefix += "."
	}
	if n := len(c.All) + len(c.Any); n > MaxConditions {
		field := path
		if field == "" {
			field = "conditions"
		}
		p.add(field, "must have at most %d conditions, got %d", MaxConditions, n)
	}
	cc.conds = make([]condition, 0, len(c.All)+len(c.Any))
	for _, list := range []struct {
		name  string
		conds []Condition
	}{{prefix + "all", c.All}, {prefix + "any", c.Any}} {
		for i := range list.conds {
			before := len(*p)
			cd := compileCondition(&list.conds[i], list.name, i, p)
			refuseTriggered(cd, list.conds[i].Operator, list.name, i, (*p)[before:], p)
			cc.conds = append(cc.conds, cd)
		}
	}
	mid := len(c.All)
	return rule{all: cc.conds[:mid:mid], any: cc.conds[mid:]}
}

// refuseTriggered reports a condition that only makes sense for a command
// (event.type, changed, changed_to), unless compileCondition already
// reported a problem with the same path (reported holds its problems).
func refuseTriggered(cd condition, operator, list string, i int, reported problems, p *problems) {
	already := func(field string) bool {
		for _, r := range reported {
			if r.Field == field {
				return true
			}
		}
		return false
	}
	if cd.field.id == fEventType {
		if field := fmt.Sprintf("%s[%d].field", list, i); !already(field) {
			p.add(field, "event.type is not available here: these conditions are matched against the ticket's state, not a command")
		}
	}
	if cd.op == opChanged || cd.op == opChangedTo {
		if field := fmt.Sprintf("%s[%d].operator", list, i); !already(field) {
			p.add(field, "%s is not available here: these conditions are matched against the ticket's state, not a command", operator)
		}
	}
}
