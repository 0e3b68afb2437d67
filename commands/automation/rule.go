package automation

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Limits on one rule, so that evaluating a workspace's rules stays cheap.
const (
	MaxNameLen    = 200
	MaxConditions = 50 // in All and Any together
	MaxActions    = 20
	MaxListValues = 200 // elements of an "in" value or a tag list
	MaxTagLen     = 64  // as for tags set through the API
	MaxFieldKey   = 64  // custom field, metadata and linked profile keys
	MaxTextValue  = 10000
)

// Rule is one automation rule. Version is the rule's stream version, carried
// into Effects and AsyncActions so the audit shows which version acted.
type Rule struct {
	ID         uuid.UUID  `json:"id"`
	Version    int64      `json:"version"`
	Name       string     `json:"name"`
	Position   int        `json:"position"`
	Active     bool       `json:"active"`
	Conditions Conditions `json:"conditions"`
	Actions    []Action   `json:"actions"`
}

// Conditions holds when every condition of All holds and, if Any is not
// empty, at least one of Any holds.
type Conditions struct {
	All []Condition `json:"all"`
	Any []Condition `json:"any"`
}

// Condition compares one field with Value using Operator. Value is as
// decoded from JSON: string, float64, bool, []any or nil.
type Condition struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    any    `json:"value"`
}

// Action is one thing a rule does when it fires. Value is as decoded from
// JSON; see the package documentation for each type's value.
type Action struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Action types.
const (
	ActionAddTags        = "add_tags"
	ActionRemoveTags     = "remove_tags"
	ActionSetPriority    = "set_priority"
	ActionSetStatus      = "set_status"
	ActionAssignTeam     = "assign_team"
	ActionAssignAgent    = "assign_agent"
	ActionSetCustomField = "set_custom_field"
	ActionNotifySlack    = "notify_slack"
)

// Validate reports every problem of r at once, as an *helpdeskflow.Error
// with code EValidation whose Details name each field by its path
// (name, position, conditions.all[0].operator, actions[1].value.name, …).
// It returns nil for a valid rule. Validate does not look at ID or Version.
func (r Rule) Validate() error {
	var p problems
	var c compiled
	c.compile(&r, &p)
	return p.err("invalid automation rule")
}

type problems []helpdeskflow.FieldProblem

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, helpdeskflow.FieldProblem{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (p problems) err(msg string) error {
	if len(p) == 0 {
		return nil
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: fmt.Sprintf("%s: %d problem(s)", msg, len(p)), Details: p}
}

type fieldID uint8

const (
	fSubject fieldID = iota + 1
	fBody
	fChannel
	fType
	fPriority
	fStatus
	fTeam
	fAssignee
	fTags
	fTicketCustom
	fCustEmail
	fCustDomain
	fCustName
	fCustTags
	fCustCustom
	fCustMeta
	fCustLinked
	fEventType
)

type kind uint8

const (
	kText kind = iota + 1
	kEnum
	kNullable
	kList
	kAny
	kEvent
)

var simpleFields = map[string]fieldID{
	"ticket.subject": fSubject, "ticket.body": fBody, "ticket.channel": fChannel, "ticket.type": fType,
	"ticket.priority": fPriority, "ticket.status": fStatus, "ticket.team": fTeam, "ticket.assignee_id": fAssignee,
	"ticket.tags": fTags, "customer.email": fCustEmail, "customer.email_domain": fCustDomain,
	"customer.name": fCustName, "customer.tags": fCustTags, "event.type": fEventType,
}

func (f fieldID) kind() kind {
	switch f {
	case fPriority, fStatus:
		return kEnum
	case fTeam, fAssignee:
		return kNullable
	case fTags, fCustTags:
		return kList
	case fTicketCustom, fCustCustom, fCustMeta, fCustLinked:
		return kAny
	case fEventType:
		return kEvent
	}
	return kText
}

func (f fieldID) onTicket() bool { return f <= fTicketCustom }

type fieldRef struct {
	id       fieldID
	key      string // custom field, metadata or linked profile data key
	provider string
}

// parseField slices path without allocating.
func parseField(path string) (fieldRef, string) {
	if id, ok := simpleFields[path]; ok {
		return fieldRef{id: id}, ""
	}
	for _, pre := range []struct {
		prefix string
		id     fieldID
	}{{"ticket.custom_fields.", fTicketCustom}, {"customer.custom_fields.", fCustCustom}, {"customer.metadata.", fCustMeta}} {
		if key, ok := strings.CutPrefix(path, pre.prefix); ok {
			if key == "" || utf8.RuneCountInString(key) > MaxFieldKey {
				return fieldRef{}, fmt.Sprintf("the name after %q must be 1 to %d characters", pre.prefix, MaxFieldKey)
			}
			return fieldRef{id: pre.id, key: key}, ""
		}
	}
	if rest, ok := strings.CutPrefix(path, "customer.linked_profiles."); ok {
		provider, key, ok := strings.Cut(rest, ".data.")
		if !ok || provider == "" || strings.Contains(provider, ".") || key == "" || utf8.RuneCountInString(key) > MaxFieldKey {
			return fieldRef{}, "must be customer.linked_profiles.<provider>.data.<key>"
		}
		return fieldRef{id: fCustLinked, provider: provider, key: key}, ""
	}
	return fieldRef{}, "unknown field"
}

type opID uint8

const (
	opIs opID = iota + 1
	opIsNot
	opContains
	opNotContains
	opIncludes
	opNotIncludes
	opIn
	opGreater
	opLess
	opChanged
	opChangedTo
)

var operators = map[string]opID{
	"is": opIs, "is_not": opIsNot, "contains": opContains, "not_contains": opNotContains,
	"includes": opIncludes, "not_includes": opNotIncludes, "in": opIn,
	"greater_than": opGreater, "less_than": opLess, "changed": opChanged, "changed_to": opChangedTo,
}

func opAllowed(k kind, op opID) bool {
	switch k {
	case kText, kNullable:
		return op == opIs || op == opIsNot || op == opContains || op == opNotContains || op == opIn || op == opChanged || op == opChangedTo
	case kEnum:
		return op == opIs || op == opIsNot || op == opIn || op == opChanged || op == opChangedTo
	case kList:
		return op == opIncludes || op == opNotIncludes || op == opChanged
	case kEvent:
		return op == opIs || op == opIsNot || op == opIn
	case kAny:
		return true
	}
	return false
}

var (
	priorities = []string{helpdeskflow.PriorityLow, helpdeskflow.PriorityNormal, helpdeskflow.PriorityHigh, helpdeskflow.PriorityUrgent}
	statuses   = []string{helpdeskflow.StatusNew, helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved, helpdeskflow.StatusClosed}
	triggers   = []string{helpdeskflow.EventTicketCreated, helpdeskflow.EventTicketUpdated, helpdeskflow.EventTicketMessageAdded}
)

func oneOf(s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

type condition struct {
	field fieldRef
	op    opID
	value any
	num   float64 // greater_than, less_than
}

type actKind uint8

const (
	aAddTags actKind = iota + 1
	aRemoveTags
	aPriority
	aStatus
	aTeam
	aAgent
	aCustom
	aSlack
)

type action struct {
	kind  actKind
	tags  []string // add_tags, remove_tags (normalized)
	s     string   // priority, status, team, agent; custom field name
	null  bool     // team, agent: unassign
	value any      // custom field value; notify_slack's value
	typ   string
}

// rule is a compiled rule: its conditions and actions are sub-slices of the
// shared slices of compiled, so compiling n rules costs a few allocations.
type rule struct {
	src      *Rule
	all, any []condition
	actions  []action
}

type compiled struct {
	conds   []condition
	actions []action
}

func (c *compiled) compile(r *Rule, p *problems) rule {
	out := rule{src: r}
	if strings.TrimSpace(r.Name) == "" {
		p.add("name", "must not be empty")
	} else if utf8.RuneCountInString(r.Name) > MaxNameLen {
		p.add("name", "must be at most %d characters", MaxNameLen)
	}
	if r.Position < 0 {
		p.add("position", "must not be negative")
	}
	if n := len(r.Conditions.All) + len(r.Conditions.Any); n > MaxConditions {
		p.add("conditions", "must have at most %d conditions, got %d", MaxConditions, n)
	}
	start := len(c.conds)
	for i := range r.Conditions.All {
		c.conds = append(c.conds, compileCondition(&r.Conditions.All[i], "conditions.all", i, p))
	}
	mid := len(c.conds)
	for i := range r.Conditions.Any {
		c.conds = append(c.conds, compileCondition(&r.Conditions.Any[i], "conditions.any", i, p))
	}
	out.all, out.any = c.conds[start:mid:mid], c.conds[mid:len(c.conds):len(c.conds)]

	switch {
	case len(r.Actions) == 0:
		p.add("actions", "must have at least one action")
	case len(r.Actions) > MaxActions:
		p.add("actions", "must have at most %d actions, got %d", MaxActions, len(r.Actions))
	}
	start = len(c.actions)
	for i := range r.Actions {
		c.actions = append(c.actions, compileAction(&r.Actions[i], i, p))
	}
	out.actions = c.actions[start:len(c.actions):len(c.actions)]
	checkActionOverlap(out.actions, p)
	return out
}

func compileCondition(cd *Condition, list string, i int, p *problems) condition {
	var out condition
	var fieldProblem string
	out.field, fieldProblem = parseField(cd.Field)
	op, opOK := operators[cd.Operator]
	out.op = op
	if fieldProblem != "" {
		p.add(fmt.Sprintf("%s[%d].field", list, i), "%s", fieldProblem)
	}
	if !opOK {
		p.add(fmt.Sprintf("%s[%d].operator", list, i), "unknown operator %q", cd.Operator)
	}
	if fieldProblem != "" || !opOK {
		return out
	}
	k := out.field.id.kind()
	if !opAllowed(k, op) || ((op == opChanged || op == opChangedTo) && !out.field.id.onTicket()) {
		p.add(fmt.Sprintf("%s[%d].operator", list, i), "%s does not apply to %s", cd.Operator, cd.Field)
		return out
	}
	path := lazyPath{format: "%s[%d].value", list: list, i: i}
	out.value = cd.Value
	switch op {
	case opChanged:
		if cd.Value != nil {
			p.add(path.String(), "must be empty for changed")
		}
	case opIs, opIsNot, opChangedTo:
		checkOperand(out.field.id, cd.Value, path, p)
	case opContains, opNotContains:
		if s, ok := cd.Value.(string); !ok || s == "" {
			p.add(path.String(), "must be a non-empty string")
		}
	case opIncludes, opNotIncludes:
		if k == kList {
			if s, ok := cd.Value.(string); !ok || s == "" {
				p.add(path.String(), "must be a non-empty string (a tag)")
			}
		} else if !isScalar(cd.Value) || cd.Value == nil {
			p.add(path.String(), "must be a string, number or boolean")
		}
	case opIn:
		vals, ok := cd.Value.([]any)
		switch {
		case !ok || len(vals) == 0:
			p.add(path.String(), "must be a non-empty list")
		case len(vals) > MaxListValues:
			p.add(path.String(), "must have at most %d values, got %d", MaxListValues, len(vals))
		default:
			for j, v := range vals {
				checkOperand(out.field.id, v, lazyPath{format: "%s[%d].value[%d]", list: list, i: i, j: j}, p)
			}
		}
	case opGreater, opLess:
		n, ok := toNumber(cd.Value)
		if !ok {
			p.add(path.String(), "must be a number")
		}
		out.num = n
	}
	return out
}

// checkOperand checks a value an is, is_not, changed_to or in compares the
// field with.
func checkOperand(f fieldID, v any, path lazyPath, p *problems) {
	switch f.kind() {
	case kText:
		if _, ok := v.(string); !ok {
			p.add(path.String(), "must be a string")
		}
	case kNullable:
		if _, ok := v.(string); !ok && v != nil {
			p.add(path.String(), "must be a string or null")
		}
	case kEnum:
		allowed := priorities
		if f == fStatus {
			allowed = statuses
		}
		if s, ok := v.(string); !ok || !oneOf(s, allowed) {
			p.add(path.String(), "must be one of %s", strings.Join(allowed, ", "))
		}
	case kEvent:
		if s, ok := v.(string); !ok || !oneOf(s, triggers) {
			p.add(path.String(), "must be one of %s", strings.Join(triggers, ", "))
		}
	case kAny:
		if !isScalar(v) {
			p.add(path.String(), "must be a string, number, boolean or null")
		}
	}
}

// lazyPath is a condition value's field path, formatted only when a problem
// is reported, so compiling valid rules does not allocate for it.
type lazyPath struct {
	format string
	list   string
	i, j   int
}

func (l lazyPath) String() string {
	if strings.Count(l.format, "%d") == 2 {
		return fmt.Sprintf(l.format, l.list, l.i, l.j)
	}
	return fmt.Sprintf(l.format, l.list, l.i)
}

func isScalar(v any) bool {
	switch v.(type) {
	case nil, string, bool:
		return true
	}
	_, ok := number(v)
	return ok
}

// number converts Go numeric types (float64 from JSON; ints from Go callers).
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}

// toNumber is number, and also a string that parses as a finite number.
func toNumber(v any) (float64, bool) {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return number(v)
}

func compileAction(a *Action, i int, p *problems) action {
	out := action{typ: a.Type, value: a.Value}
	path := "actions[" + strconv.Itoa(i) + "].value"
	switch a.Type {
	case ActionAddTags, ActionRemoveTags:
		out.kind = aAddTags
		if a.Type == ActionRemoveTags {
			out.kind = aRemoveTags
		}
		out.tags = compileTags(a.Value, path, p)
	case ActionSetPriority, ActionSetStatus:
		out.kind, out.s = aPriority, stringValue(a.Value)
		allowed := priorities
		if a.Type == ActionSetStatus {
			out.kind, allowed = aStatus, statuses
		}
		if s, ok := a.Value.(string); !ok || !oneOf(s, allowed) {
			p.add(path, "must be one of %s", strings.Join(allowed, ", "))
		}
	case ActionAssignTeam, ActionAssignAgent:
		out.kind = aTeam
		if a.Type == ActionAssignAgent {
			out.kind = aAgent
		}
		switch v := a.Value.(type) {
		case nil:
			out.null = true
		case string:
			out.s = strings.TrimSpace(v)
			if out.s == "" || utf8.RuneCountInString(out.s) > MaxNameLen {
				p.add(path, "must be 1 to %d characters, or null to unassign", MaxNameLen)
			}
		default:
			p.add(path, "must be a string, or null to unassign")
		}
	case ActionSetCustomField:
		out.kind = aCustom
		m, ok := a.Value.(map[string]any)
		if !ok {
			p.add(path, `must be an object {"name": ..., "value": ...}`)
			break
		}
		for k := range m {
			if k != "name" && k != "value" {
				p.add(path+"."+k, "unknown key")
			}
		}
		name, _ := m["name"].(string)
		if name == "" || utf8.RuneCountInString(name) > MaxFieldKey {
			p.add(path+".name", "must be a string of 1 to %d characters", MaxFieldKey)
		}
		out.s = name
		v, present := m["value"]
		switch s, isString := v.(string); {
		case !present:
			p.add(path+".value", "is required (null removes the field)")
		case !isScalar(v):
			p.add(path+".value", "must be a string, number, boolean or null")
		case isString && utf8.RuneCountInString(s) > MaxTextValue:
			p.add(path+".value", "must be at most %d characters", MaxTextValue)
		}
		out.value = v
	case ActionNotifySlack:
		out.kind = aSlack
		m, ok := a.Value.(map[string]any)
		if !ok {
			p.add(path, `must be an object {"channel": "#name", "message": "..."}`)
			break
		}
		for k := range m {
			if k != "channel" && k != "message" {
				p.add(path+"."+k, "unknown key")
			}
		}
		if s, ok := m["channel"].(string); !ok || strings.TrimSpace(s) == "" {
			p.add(path+".channel", "must be a non-empty string such as #support")
		}
		if s, ok := m["message"].(string); !ok || strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > MaxTextValue {
			p.add(path+".message", "must be a non-empty string of at most %d characters", MaxTextValue)
		}
	default:
		p.add(fmt.Sprintf("actions[%d].type", i), "unknown action type %q", a.Type)
	}
	return out
}

func stringValue(v any) string {
	s, _ := v.(string)
	return s
}

// compileTags normalizes tags as the command path does: trimmed, lowercased,
// duplicates dropped, order kept.
func compileTags(v any, path string, p *problems) []string {
	var raw []string
	switch t := v.(type) {
	case []any:
		raw = make([]string, len(t))
		for j, e := range t {
			s, ok := e.(string)
			if !ok {
				p.add(fmt.Sprintf("%s[%d]", path, j), "must be a string")
				s = "-" // reported once
			}
			raw[j] = s
		}
	case []string:
		raw = t
	default:
		p.add(path, "must be a list of tags")
		return nil
	}
	if len(raw) == 0 || len(raw) > MaxListValues {
		p.add(path, "must have 1 to %d tags", MaxListValues)
		return nil
	}
	out := make([]string, 0, len(raw))
	for j, tag := range raw {
		tag = strings.ToLower(strings.TrimSpace(tag))
		switch {
		case tag == "":
			p.add(fmt.Sprintf("%s[%d]", path, j), "must not be empty")
		case utf8.RuneCountInString(tag) > MaxTagLen:
			p.add(fmt.Sprintf("%s[%d]", path, j), "must be at most %d characters", MaxTagLen)
		case strings.IndexFunc(tag, unicode.IsSpace) >= 0 || strings.Contains(tag, ","):
			p.add(fmt.Sprintf("%s[%d]", path, j), "must not contain white space or commas")
		case !oneOf(tag, out):
			out = append(out, tag)
		}
	}
	return out
}

// checkActionOverlap refuses a rule that sets one field twice or adds and
// removes the same tag: its meaning would depend on action order.
func checkActionOverlap(acts []action, p *problems) {
	for i := range acts {
		for j := 0; j < i; j++ {
			a, b := &acts[j], &acts[i]
			switch {
			case a.kind == b.kind && (a.kind == aPriority || a.kind == aStatus || a.kind == aTeam || a.kind == aAgent):
				p.add(fmt.Sprintf("actions[%d].type", i), "%s appears twice (also actions[%d])", b.typ, j)
			case a.kind == aCustom && b.kind == aCustom && a.s != "" && a.s == b.s:
				p.add(fmt.Sprintf("actions[%d].value.name", i), "custom field %q is set twice (also actions[%d])", b.s, j)
			case (a.kind == aAddTags && b.kind == aRemoveTags) || (a.kind == aRemoveTags && b.kind == aAddTags):
				for _, t := range b.tags {
					if oneOf(t, a.tags) {
						p.add(fmt.Sprintf("actions[%d].value", i), "tag %q is both added and removed (also actions[%d])", t, j)
					}
				}
			}
		}
	}
}
