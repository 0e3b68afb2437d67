package automation

import (
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

var fieldNames = map[actKind]string{aStatus: "status", aPriority: "priority", aTeam: "team", aAgent: "assignee"}

// checkPass refuses the pass when its firing rules contradict each other or
// the ticket's state at the start of the pass. Checks run in a fixed order
// so that the same conflict is always the one reported.
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
		for _, in := range group[1:] {
			if in.act.null != first.null || in.act.s != first.s {
				ids := ruleIDs(group)
				vals := make([]string, len(group))
				for i, g := range group {
					vals[i] = display(g.act)
				}
				return conflict(ids, "automation rules %s set %s to different values (%s)",
					strings.ReplaceAll(idList(ids), ",", ", "), fieldNames[k], strings.Join(vals, ", "))
			}
		}
		if k == aStatus && first.s != e.state.Status {
			if ok, allowed := helpdeskflow.TicketTransitionAllowed(e.state.Status, first.s); !ok {
				to := "no other status"
				if len(allowed) > 0 {
					to = strings.Join(allowed, ", ")
				}
				ids := ruleIDs(group)
				return conflict(ids, "automation rule %s cannot set status %s on a %s ticket (it may go to %s)",
					strings.ReplaceAll(idList(ids), ",", ", "), first.s, e.state.Status, to)
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
			for _, in := range group[1:] {
				if !reflect.DeepEqual(in.act.value, group[0].act.value) {
					ids := ruleIDs(group)
					return conflict(ids, "automation rules %s set custom field %q to different values",
						strings.ReplaceAll(idList(ids), ",", ", "), group[0].act.s)
				}
			}
			start = end
		}
	}
	for _, rm := range removed {
		for _, tag := range rm.act.tags {
			var group []intent
			for _, in := range tagIntents {
				if in == rm || (in.act.kind == aAddTags && oneOf(tag, in.act.tags)) {
					group = append(group, in)
				}
			}
			if len(group) > 1 {
				ids := ruleIDs(group)
				return conflict(ids, "automation rules %s both add and remove tag %q",
					strings.ReplaceAll(idList(ids), ",", ", "), tag)
			}
		}
	}
	return nil
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

func display(a *action) string {
	if a.null {
		return "null"
	}
	return fmt.Sprintf("%q", a.s)
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
