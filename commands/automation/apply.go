package automation

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// intent is one firing rule's action, as seen by the conflict check.
type intent struct {
	rule *rule
	act  *action
}

// fieldNames are the ticket fields the set actions change, as the API names
// them.
var fieldNames = map[actKind]string{aStatus: "status", aPriority: "priority", aTeam: "team", aAgent: "assignee_id"}

// checkPass refuses the pass when its firing rules contradict each other or
// the ticket's state at the start of the pass, naming every field they
// conflict over at once. Checks run in a fixed order, so the same conflict
// is always described the same way.
func (e *engine) checkPass(rs []rule, firing []int) error {
	var sets, custom, tagIntents, removed []intent
	for _, i := range firing {
		r := &rs[i]
		for j := range r.actions {
			a := &r.actions[j]
			switch a.kind {
			case aStatus, aPriority, aTeam, aAgent:
				sets = append(sets, intent{r, a})
			case aCustom:
				custom = append(custom, intent{r, a})
			case aAddTags:
				tagIntents = append(tagIntents, intent{r, a})
			case aRemoveTags:
				tagIntents = append(tagIntents, intent{r, a})
				removed = append(removed, intent{r, a})
			}
		}
	}
	var c conflicts
	for _, k := range []actKind{aStatus, aPriority, aTeam, aAgent} {
		var group []intent
		for _, in := range sets {
			if in.act.kind == k {
				group = append(group, in)
			}
		}
		if len(group) == 0 {
			continue
		}
		first := group[0].act
		if slices.ContainsFunc(group[1:], func(in intent) bool { return in.act.null != first.null || in.act.s != first.s }) {
			parts := make([]string, len(group))
			for i, g := range group {
				parts[i] = "to " + display(g.act) + " by rule " + g.rule.src.ID.String()
			}
			c.add(fieldNames[k], group, "set "+joinAnd(parts))
			continue
		}
		if k == aStatus && first.s != e.state.Status {
			if ok, allowed := helpdeskflow.TicketTransitionAllowed(e.state.Status, first.s); !ok {
				to := "no other status"
				if len(allowed) > 0 {
					to = strings.Join(allowed, ", ")
				}
				c.add("status", group, fmt.Sprintf("set to %s by %s, which a %s ticket cannot take (it may go to %s)",
					first.s, rulesNamed(ruleIDs(group)), e.state.Status, to))
			}
		}
	}
	if len(custom) > 1 {
		slices.SortStableFunc(custom, func(a, b intent) int { return strings.Compare(a.act.s, b.act.s) })
		for start := 0; start < len(custom); {
			end := start + 1
			for end < len(custom) && custom[end].act.s == custom[start].act.s {
				end++
			}
			group := custom[start:end]
			if slices.ContainsFunc(group[1:], func(in intent) bool { return !reflect.DeepEqual(in.act.value, group[0].act.value) }) {
				parts := make([]string, len(group))
				for i, g := range group {
					parts[i] = "to " + displayValue(g.act.value) + " by rule " + g.rule.src.ID.String()
				}
				c.add("custom_fields."+group[0].act.s, group, "set "+joinAnd(parts))
			}
			start = end
		}
	}
	var tagProblems []string
	var tagGroup []intent
	for _, rm := range removed {
		for _, tag := range rm.act.tags {
			var adders []intent
			for _, in := range tagIntents {
				if in.act.kind == aAddTags && oneOf(tag, in.act.tags) {
					adders = append(adders, in)
				}
			}
			if len(adders) > 0 {
				tagProblems = append(tagProblems, fmt.Sprintf("tag %q added by %s and removed by rule %s",
					tag, rulesNamed(ruleIDs(adders)), rm.rule.src.ID))
				tagGroup = append(append(tagGroup, adders...), rm)
			}
		}
	}
	if len(tagProblems) > 0 {
		c.add("tags", tagGroup, strings.Join(tagProblems, "; "))
	}
	return c.err()
}

// conflicts collects the conflicts of one pass: one FieldProblem per field,
// and the rules involved in any of them, in order of first mention.
type conflicts struct {
	details []helpdeskflow.FieldProblem
	ids     []uuid.UUID
}

func (c *conflicts) add(field string, group []intent, problem string) {
	c.details = append(c.details, helpdeskflow.FieldProblem{Field: field, Problem: problem})
	for _, id := range ruleIDs(group) {
		if !slices.Contains(c.ids, id) {
			c.ids = append(c.ids, id)
		}
	}
}

// err is the EAutomationConflict naming the rules and the fields, or nil
// when there is no conflict.
func (c *conflicts) err() error {
	if len(c.details) == 0 {
		return nil
	}
	fields := make([]string, len(c.details))
	for i, d := range c.details {
		fields[i] = d.Field
	}
	msg := fmt.Sprintf("automation %s conflict over %s", rulesNamed(c.ids), joinAnd(fields))
	if len(c.details) == 1 {
		msg += ": " + c.details[0].Problem
	} else {
		msg += "; see details"
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EAutomationConflict, Message: msg, Details: c.details, RuleIDs: c.ids}
}

// rulesNamed is "rule <id>" or "rules <id>, <id> and <id>".
func rulesNamed(ids []uuid.UUID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	if len(s) == 1 {
		return "rule " + s[0]
	}
	return "rules " + joinAnd(s)
}

// joinAnd is "a", "a and b" or "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// ruleIDs lists the distinct rule ids of group, in order.
func ruleIDs(group []intent) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(group))
	for _, in := range group {
		if !slices.Contains(ids, in.rule.src.ID) {
			ids = append(ids, in.rule.src.ID)
		}
	}
	return ids
}

// display shows the value a set action gives: priorities and statuses as
// they are, team and assignee quoted, or null.
func display(a *action) string {
	switch {
	case a.null:
		return "null"
	case a.kind == aPriority || a.kind == aStatus:
		return a.s
	}
	return fmt.Sprintf("%q", a.s)
}

// displayValue shows a custom field value as JSON would.
func displayValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// apply applies one firing rule's actions to the state and records its
// Effect and async actions. Slices and maps of the state are copied before
// they change, so earlier Effects and the input are never modified.
func (e *engine) apply(r *rule) {
	var u helpdeskflow.TicketUpdated
	st := &e.state
	oldTags, ownTags := st.Tags, false
	for i := range r.actions {
		a := &r.actions[i]
		switch a.kind {
		case aAddTags:
			for _, tag := range a.tags {
				if slices.Contains(st.Tags, tag) {
					continue
				}
				if !ownTags {
					st.Tags, ownTags = slices.Clip(slices.Clone(st.Tags)), true
				}
				st.Tags = append(st.Tags, tag)
			}
		case aRemoveTags:
			if slices.ContainsFunc(st.Tags, func(t string) bool { return slices.Contains(a.tags, t) }) {
				kept := make([]string, 0, len(st.Tags))
				for _, t := range st.Tags {
					if !slices.Contains(a.tags, t) {
						kept = append(kept, t)
					}
				}
				st.Tags, ownTags = kept, true
			}
		case aPriority:
			if st.Priority != a.s {
				u.Priority = &helpdeskflow.Change[string]{Old: st.Priority, New: a.s}
				st.Priority = a.s
			}
		case aStatus:
			if st.Status != a.s {
				u.Status = &helpdeskflow.Change[string]{Old: st.Status, New: a.s}
				st.Status = a.s
			}
		case aTeam:
			if c := assign(&st.Team, a); c != nil {
				u.Team = c
			}
		case aAgent:
			if c := assign(&st.AssigneeID, a); c != nil {
				u.AssigneeID = c
			}
		case aCustom:
			old, present := st.CustomFields[a.s]
			if (a.value == nil && !present) || (present && a.value != nil && reflect.DeepEqual(old, a.value)) {
				continue
			}
			if !e.ownsCF {
				st.CustomFields, e.ownsCF = maps.Clone(st.CustomFields), true
				if st.CustomFields == nil {
					st.CustomFields = map[string]any{}
				}
			}
			if a.value == nil {
				delete(st.CustomFields, a.s)
			} else {
				st.CustomFields[a.s] = a.value
			}
			if u.CustomFields == nil {
				u.CustomFields = map[string]helpdeskflow.Change[any]{}
			}
			u.CustomFields[a.s] = helpdeskflow.Change[any]{Old: old, New: a.value}
		case aSlack:
			e.res.Async = append(e.res.Async, AsyncAction{RuleID: r.src.ID, RuleVersion: r.src.Version, Type: a.typ, Value: copyValue(a.value)})
		}
	}
	if ownTags && !slices.Equal(oldTags, st.Tags) {
		u.Tags = &helpdeskflow.Change[[]string]{Old: oldTags, New: st.Tags}
	}
	e.res.Fired = append(e.res.Fired, r.src.ID)
	if !u.Empty() {
		e.res.Effects = append(e.res.Effects, Effect{RuleID: r.src.ID, RuleVersion: r.src.Version, Update: u})
	}
}

// assign sets *field to the action's value and returns the change, or nil
// when the field already has it. It never writes through the old pointer.
func assign(field **string, a *action) *helpdeskflow.Change[*string] {
	cur := *field
	if (cur == nil && a.null) || (cur != nil && !a.null && *cur == a.s) {
		return nil
	}
	var old, next *string
	if cur != nil {
		o := *cur
		old = &o
	}
	if !a.null {
		n := a.s
		next = &n
	}
	*field = next
	return &helpdeskflow.Change[*string]{Old: old, New: next}
}

// copyValue copies a notify_slack value's top-level map, so a Result does
// not share it with the rule.
func copyValue(v any) any {
	if m, ok := v.(map[string]any); ok {
		return maps.Clone(m)
	}
	return v
}
