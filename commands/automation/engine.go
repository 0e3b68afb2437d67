package automation

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// DefaultMaxPasses is the pass limit when Options.MaxPasses is not set.
const DefaultMaxPasses = 10

// Input is what one command gives the rules to look at.
type Input struct {
	// Trigger is the command's event type: helpdeskflow.EventTicketCreated,
	// EventTicketUpdated or EventTicketMessageAdded.
	Trigger string
	// Before is the ticket before the command; nil for a create.
	Before *helpdeskflow.Ticket
	// Ticket is the ticket after the command's own change.
	Ticket   helpdeskflow.Ticket
	Customer helpdeskflow.Customer
}

// Effect is what one firing rule changed; Run returns one per rule that
// changed the ticket, in firing order. The caller appends Update as a
// ticket.updated event with the rule id and version in its metadata.
type Effect struct {
	RuleID      uuid.UUID
	RuleVersion int64
	Update      helpdeskflow.TicketUpdated
}

// AsyncAction is an action for the dispatcher (such as notify_slack); Run
// returns one per such action of every firing rule, in firing order.
type AsyncAction struct {
	RuleID      uuid.UUID
	RuleVersion int64
	Type        string
	Value       any
}

// Result is the outcome of Run. Ticket is the final state (it shares
// unchanged slices and maps with Input.Ticket; Run never modifies the
// input). Fired lists every rule that fired, in firing order, including
// those that changed nothing. Passes counts the passes in which some rule
// fired (the closing pass that fires nothing is not counted).
type Result struct {
	Ticket  helpdeskflow.Ticket
	Effects []Effect
	Async   []AsyncAction
	Fired   []uuid.UUID
	Passes  int
}

// Options tune Run. MaxPasses is the most passes that may fire rules
// (0 or less: DefaultMaxPasses).
type Options struct {
	MaxPasses int
}

// Run evaluates the active rules for one command; see the package
// documentation for the semantics. It is pure and deterministic, and safe
// to call concurrently (it does not modify its arguments).
//
// Errors: EValidation when in.Trigger is unknown, an active rule is invalid
// (Details prefixed with rules[<id>].) or two active rules share an id;
// EAutomationConflict when rules conflict, set a status the ticket cannot
// take, or still fire after MaxPasses passes (RuleIDs: the rules; Details:
// one entry per field they conflict over).
func Run(in Input, rules []Rule, opts Options) (Result, error) {
	if err := checkTrigger(in.Trigger); err != nil {
		return Result{}, err
	}
	p, err := Compile(rules)
	if err != nil {
		return Result{}, err
	}
	return p.Run(in, opts)
}

func checkTrigger(trigger string) error {
	if !oneOf(trigger, triggers) {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "unknown trigger",
			Details: []helpdeskflow.FieldProblem{{Field: "trigger", Problem: "must be one of " + strings.Join(triggers, ", ")}}}
	}
	return nil
}

// Program is rules compiled once (Compile) to run for many commands: a
// workspace's rule set compiles when it changes, not on every command.
// It is read-only and safe for concurrent use.
type Program struct {
	rules []rule
}

// Compile compiles the active rules for Program.Run. Errors: EValidation
// when an active rule is invalid or two share an id (see Run).
func Compile(rules []Rule) (*Program, error) {
	rs, err := compileActive(rules)
	if err != nil {
		return nil, err
	}
	return &Program{rules: rs}, nil
}

// Run is Run with the compiled rules; errors are Run's, but for the ones
// Compile returned.
func (p *Program) Run(in Input, opts Options) (Result, error) {
	if err := checkTrigger(in.Trigger); err != nil {
		return Result{}, err
	}
	maxPasses := opts.MaxPasses
	if maxPasses <= 0 {
		maxPasses = DefaultMaxPasses
	}
	rs := p.rules

	e := engine{in: &in, state: in.Ticket}
	fired := make([]bool, len(rs))
	var firing []int
	for {
		firing = firing[:0]
		for i := range rs {
			if !fired[i] && e.matches(&rs[i]) {
				firing = append(firing, i)
			}
		}
		if len(firing) == 0 {
			break
		}
		if e.res.Passes == maxPasses {
			ids := make([]uuid.UUID, len(firing))
			for j, i := range firing {
				ids[j] = rs[i].src.ID
			}
			return Result{}, &helpdeskflow.Error{Code: helpdeskflow.EAutomationConflict, RuleIDs: ids,
				Message: fmt.Sprintf("automation rules still fire after %d passes, triggering each other: %s", maxPasses, rulesNamed(ids))}
		}
		e.res.Passes++
		if err := e.checkPass(rs, firing); err != nil {
			return Result{}, err
		}
		for _, i := range firing {
			fired[i] = true
			e.apply(&rs[i])
		}
	}
	e.res.Ticket = e.state
	return e.res, nil
}

// compileActive compiles the active rules and orders them by (Position, ID).
func compileActive(rules []Rule) ([]rule, error) {
	var nConds, nActs, n int
	for i := range rules {
		if rules[i].Active {
			n++
			nConds += len(rules[i].Conditions.All) + len(rules[i].Conditions.Any)
			nActs += len(rules[i].Actions)
		}
	}
	c := compiled{conds: make([]condition, 0, nConds), actions: make([]action, 0, nActs)}
	rs := make([]rule, 0, n)
	var p problems
	for i := range rules {
		if !rules[i].Active {
			continue
		}
		before := len(p)
		rs = append(rs, c.compile(&rules[i], &p))
		for j := before; j < len(p); j++ {
			p[j].Field = fmt.Sprintf("rules[%s].%s", rules[i].ID, p[j].Field)
		}
	}
	if err := p.err("invalid automation rules"); err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b rule) int {
		if a.src.Position != b.src.Position {
			return a.src.Position - b.src.Position
		}
		return bytes.Compare(a.src.ID[:], b.src.ID[:])
	})
	for i := 1; i < len(rs); i++ {
		if rs[i].src.ID == rs[i-1].src.ID {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "two active rules share an id",
				Details: []helpdeskflow.FieldProblem{{Field: "rules", Problem: "id " + rs[i].src.ID.String() + " appears twice"}}}
		}
	}
	return rs, nil
}

type engine struct {
	in     *Input
	state  helpdeskflow.Ticket
	ownsCF bool // state.CustomFields is Run's own copy
	res    Result
}

// --- evaluation ---

// value is a field's value; which members are meaningful depends on the
// field's kind. A struct rather than an interface, so that reading a string
// field does not allocate.
type value struct {
	s    string
	null bool
	list []string
	a    any
}

func (e *engine) get(t *helpdeskflow.Ticket, f fieldRef) value {
	c := &e.in.Customer
	switch f.id {
	case fSubject:
		return value{s: t.Subject}
	case fBody:
		if len(t.Messages) == 0 {
			return value{}
		}
		return value{s: t.Messages[len(t.Messages)-1].BodyText}
	case fChannel:
		return value{s: t.Channel}
	case fType:
		return value{s: t.Type}
	case fPriority:
		return value{s: t.Priority}
	case fStatus:
		return value{s: t.Status}
	case fTeam:
		return ptrValue(t.Team)
	case fAssignee:
		return ptrValue(t.AssigneeID)
	case fTags:
		return value{list: t.Tags}
	case fTicketCustom:
		return value{a: t.CustomFields[f.key]}
	case fCustEmail:
		return value{s: c.Email}
	case fCustDomain:
		at := strings.LastIndexByte(c.Email, '@')
		if at < 0 {
			return value{}
		}
		return value{s: c.Email[at+1:]}
	case fCustName:
		return value{s: c.Name}
	case fCustTags:
		return value{list: c.Tags}
	case fCustCustom:
		return value{a: c.CustomFields[f.key]}
	case fCustMeta:
		return value{a: c.Metadata[f.key]}
	case fCustLinked:
		for i := range c.LinkedProfiles {
			if strings.EqualFold(c.LinkedProfiles[i].Provider, f.provider) {
				return value{a: c.LinkedProfiles[i].Data[f.key]}
			}
		}
		return value{}
	case fEventType:
		return value{s: e.in.Trigger}
	}
	return value{}
}

func ptrValue(p *string) value {
	if p == nil {
		return value{null: true}
	}
	return value{s: *p}
}

func (e *engine) matches(r *rule) bool {
	for i := range r.all {
		if !e.holds(&r.all[i]) {
			return false
		}
	}
	if len(r.any) == 0 {
		return true
	}
	for i := range r.any {
		if e.holds(&r.any[i]) {
			return true
		}
	}
	return false
}

func (e *engine) holds(c *condition) bool {
	k := c.field.id.kind()
	v := e.get(&e.state, c.field)
	switch c.op {
	case opIs:
		return is(k, v, c.value)
	case opIsNot:
		return !is(k, v, c.value)
	case opContains, opNotContains:
		sub, _ := c.value.(string)
		var s string
		var ok bool
		if k == kAny {
			s, ok = v.a.(string)
		} else {
			s, ok = v.s, !v.null
		}
		return (ok && containsFold(s, sub)) == (c.op == opContains)
	case opIncludes, opNotIncludes:
		return includes(k, v, c.value) == (c.op == opIncludes)
	case opIn:
		for _, o := range c.value.([]any) {
			if is(k, v, o) {
				return true
			}
		}
		return false
	case opGreater, opLess:
		n, ok := toNumber(v.a)
		if !ok {
			return false
		}
		if c.op == opGreater {
			return n > c.num
		}
		return n < c.num
	case opChanged, opChangedTo:
		if e.in.Before != nil && same(k, e.get(e.in.Before, c.field), v) {
			return false
		}
		return c.op == opChanged || is(k, v, c.value)
	}
	return false
}

// is compares a field's value with an operand of is, is_not, in or changed_to.
func is(k kind, v value, operand any) bool {
	switch k {
	case kAny:
		return scalarEqual(v.a, operand)
	case kNullable:
		if operand == nil {
			return v.null
		}
		s, _ := operand.(string)
		return !v.null && strings.EqualFold(v.s, s)
	}
	s, _ := operand.(string)
	return strings.EqualFold(v.s, s)
}

// scalarEqual: null equals only null (or missing); strings compare
// case-insensitively; numbers numerically, where a numeric string counts.
func scalarEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	as, aStr := a.(string)
	bs, bStr := b.(string)
	if aStr && bStr {
		return strings.EqualFold(as, bs)
	}
	if ab, ok := a.(bool); ok {
		bb, ok := b.(bool)
		return ok && ab == bb
	}
	an, aok := toNumber(a)
	bn, bok := toNumber(b)
	return aok && bok && an == bn
}

func includes(k kind, v value, operand any) bool {
	if k == kList {
		tag, _ := operand.(string)
		for _, t := range v.list {
			if strings.EqualFold(t, tag) {
				return true
			}
		}
		return false
	}
	switch l := v.a.(type) {
	case []any:
		for _, x := range l {
			if scalarEqual(x, operand) {
				return true
			}
		}
	case []string:
		for _, x := range l {
			if scalarEqual(x, operand) {
				return true
			}
		}
	}
	return false
}

// same reports whether a field has exactly the same value in both states
// (for changed: no case folding).
func same(k kind, a, b value) bool {
	switch k {
	case kList:
		return slices.Equal(a.list, b.list)
	case kAny:
		return reflect.DeepEqual(a.a, b.a)
	}
	return a.null == b.null && a.s == b.s
}

// containsFold is a case-insensitive strings.Contains that does not
// allocate for ASCII text.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	if !isASCII(s) || !isASCII(sub) {
		return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
	}
	first := lower(sub[0])
	for i := 0; i+len(sub) <= len(s); i++ {
		if lower(s[i]) == first && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
