package helpdeskflow

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// SLA event types, targets and target states, and the clocks of a ticket's
// SLA: TicketSLA documents the rules by which they run, and ApplyTicket
// implements them. Which policy applies to a ticket is commands/sla's
// decision.
const (
	// EventTicketSLAPolicyApplied gives a ticket an SLA policy, a new
	// version of it, another policy, or none (data: SLAPolicyApplied).
	EventTicketSLAPolicyApplied = "ticket.sla_policy_applied"
	// EventTicketSLAWarning records that a target's warning point passed
	// (data: SLAPoint).
	EventTicketSLAWarning = "ticket.sla_warning"
	// EventTicketSLABreached records that a target's deadline passed
	// (data: SLAPoint).
	EventTicketSLABreached = "ticket.sla_breached"

	// SLAFirstResponse is the target met by the first public agent reply.
	SLAFirstResponse = "first_response"
	// SLAResolution is the target met by solving the ticket.
	SLAResolution = "resolution"

	SLAActive    = "active"    // running, warning point not reached
	SLAWarning   = "warning"   // running, warning point reached
	SLABreached  = "breached"  // deadline passed before the target was met
	SLAFulfilled = "fulfilled" // met in time
	SLAPaused    = "paused"    // stopped while the ticket is pending or on hold
)

// SLATargetSpec is one target of an SLA policy: it is due Minutes after its
// clock starts (not counting paused time), and its warning point is
// WarnBeforeMinutes before that (none when WarnBeforeMinutes is 0).
type SLATargetSpec struct {
	Minutes           int `json:"minutes"`
	WarnBeforeMinutes int `json:"warn_before_minutes"`
}

// SLAPolicyApplied is the data of a ticket.sla_policy_applied event: the
// policy version the ticket's clocks follow from now on. A nil PolicyID
// means the ticket no longer has an SLA (its policy was deleted or no longer
// matches); the other fields are then empty.
type SLAPolicyApplied struct {
	PolicyID      *uuid.UUID     `json:"policy_id"`
	PolicyVersion int64          `json:"policy_version,omitempty"`
	PolicyName    string         `json:"policy_name,omitempty"`
	FirstResponse *SLATargetSpec `json:"first_response,omitempty"`
	Resolution    *SLATargetSpec `json:"resolution,omitempty"`
}

// SLAPoint is the data of ticket.sla_warning and ticket.sla_breached
// events: the target (SLAFirstResponse or SLAResolution) and the time the
// point was due, which may be earlier than the event's time.
type SLAPoint struct {
	Target string    `json:"target"`
	DueAt  time.Time `json:"due_at"`
}

// TicketSLA is a ticket's SLA state as its events leave it: the policy
// version it follows and one clock per target of that policy (nil when the
// policy has no such target). ApplyTicket never modifies a TicketSLA it
// already stored in a Ticket; it replaces it, so copies of a Ticket do not
// share SLA changes.
//
// # How the clocks run
//
// Every time below is the OccurredAt of the event that causes it.
//
//   - Start. When a policy is applied to a ticket without an SLA, each of the
//     policy's targets gets a clock started then. If the ticket is pending or
//     on hold, the new clocks start paused; if it is solved (or closed), they
//     start fulfilled. The first-response clock also starts fulfilled when
//     the ticket's latest public message is an agent's (a ticket an agent
//     opened, with no customer reply since): no customer waits for a reply.
//   - Re-application. When a ticket that has an SLA gets a policy again (a
//     new version of its policy, or another policy that now matches), each
//     target both policies have keeps its clock (start, paused time, pause
//     in progress, fulfilment) under the new target minutes, and its
//     recorded warning and breach are cleared, so they are evaluated again
//     against the new due times. A target the new policy lacks is dropped; a
//     target it adds starts as above. A removal (policy_id null: the policy
//     was deleted or no longer matches) drops the SLA entirely.
//   - Pause. A ticket moving to pending or on_hold pauses every running
//     clock (not fulfilled, not already paused). Moving to new or open
//     resumes them: the pause's length is added to the clock's paused time,
//     which moves its deadline and warning point later by as much.
//   - First response. The first public message by an agent fulfils the
//     first-response clock (ending a pause first). Internal notes and
//     customer messages do not.
//   - Solve and reopen. Solving fulfils every clock not yet fulfilled
//     (ending a pause first). Reopening (solved back to open) un-fulfils the
//     resolution clock and counts the time spent solved as paused; the first
//     response stays as it was.
//   - Close. Closing leaves the clocks as they are; nothing is due for a
//     closed ticket any more.
//
// A clock's deadline is its start plus the target's minutes plus its paused
// time; its warning point is that less warn_before_minutes. Neither is known
// while the clock is paused. Durable timers append ticket.sla_warning and
// ticket.sla_breached when these points pass (TicketSLA.Due and NextDue);
// when a deadline passed unnoticed (say, during downtime) only the breach is
// appended, never a late warning.
//
// # States
//
// The API shows each target (TicketSLA.Status) as breached when its breach
// was recorded, when it runs and its deadline has passed, or when it was
// fulfilled after its deadline; otherwise fulfilled when met, paused while
// paused, warning once its warning point has passed, and active before.
type TicketSLA struct {
	PolicyID      uuid.UUID
	PolicyVersion int64
	PolicyName    string
	FirstResponse *SLAClock
	Resolution    *SLAClock
}

// SLAClock is one target's clock. StartedAt is when the policy first gave
// the ticket this target; Paused is the paused time accumulated so far, not
// counting a pause in progress, which started at PausedSince (nil when
// running). FulfilledAt is when the target was met (nil while open).
// WarnedAt and BreachedAt are the times of the ticket.sla_warning and
// ticket.sla_breached events for the current policy version (nil until
// then; a re-application clears them).
type SLAClock struct {
	Spec        SLATargetSpec
	StartedAt   time.Time
	Paused      time.Duration
	PausedSince *time.Time
	FulfilledAt *time.Time
	WarnedAt    *time.Time
	BreachedAt  *time.Time
}

// SLADue is a point that has passed and is not recorded yet: Type is
// EventTicketSLAWarning or EventTicketSLABreached, Point the event's data.
type SLADue struct {
	Type  string
	Point SLAPoint
}

// SLAStatus is a ticket's SLA as the API shows it at one moment. Targets
// holds the policy's targets in the order first_response, resolution.
type SLAStatus struct {
	PolicyID      uuid.UUID         `json:"policy_id"`
	PolicyVersion int64             `json:"policy_version"`
	PolicyName    string            `json:"policy_name"`
	Targets       []SLATargetStatus `json:"targets"`
}

// SLATargetStatus is one target at one moment. State is one of SLAActive,
// SLAWarning, SLABreached, SLAFulfilled and SLAPaused. DueAt and WarnAt are
// nil while the clock is paused (and WarnAt when the target has no warning
// point). PausedSeconds is all paused time so far, including a pause in
// progress, in whole seconds.
type SLATargetStatus struct {
	Target        string     `json:"target"`
	State         string     `json:"state"`
	DueAt         *time.Time `json:"due_at"`
	WarnAt        *time.Time `json:"warn_at"`
	FulfilledAt   *time.Time `json:"fulfilled_at"`
	BreachedAt    *time.Time `json:"breached_at"`
	PausedSeconds int64      `json:"paused_seconds"`
}

// DueAt returns the clock's deadline: StartedAt plus Spec.Minutes plus the
// accumulated paused time. It reports false while the clock is paused,
// because the deadline is not known until it runs again. A fulfilled clock
// still has its deadline (to tell whether it was met in time).
func (c *SLAClock) DueAt() (time.Time, bool) {
	if c.PausedSince != nil {
		return time.Time{}, false
	}
	return c.StartedAt.Add(time.Duration(c.Spec.Minutes)*time.Minute + c.Paused), true
}

// WarnAt returns the clock's warning point: its deadline less
// Spec.WarnBeforeMinutes. It reports false while the clock is paused and
// when the target has no warning point (WarnBeforeMinutes 0).
func (c *SLAClock) WarnAt() (time.Time, bool) {
	if c.Spec.WarnBeforeMinutes <= 0 {
		return time.Time{}, false
	}
	due, ok := c.DueAt()
	return due.Add(-time.Duration(c.Spec.WarnBeforeMinutes) * time.Minute), ok
}

// running reports whether the clock counts time towards its deadline.
func (c *SLAClock) running() bool { return c.FulfilledAt == nil && c.PausedSince == nil }

// Due returns the points that have passed by now and are not recorded yet,
// for the timer worker to append as events: first response before
// resolution, at most one per target. A clock that is fulfilled or paused
// has none. When the deadline has passed, only the breach is returned, never
// a late warning. Nothing is due for a closed ticket (status StatusClosed).
// Due of a nil TicketSLA is nil.
func (s *TicketSLA) Due(now time.Time, status string) []SLADue {
	if s == nil || status == StatusClosed {
		return nil
	}
	var due []SLADue
	for _, tc := range s.clocks() {
		c := tc.clock
		if !c.running() || c.BreachedAt != nil {
			continue
		}
		if deadline, _ := c.DueAt(); !now.Before(deadline) {
			due = append(due, SLADue{Type: EventTicketSLABreached, Point: SLAPoint{Target: tc.target, DueAt: deadline}})
			continue
		}
		if warn, ok := c.WarnAt(); ok && c.WarnedAt == nil && !now.Before(warn) {
			due = append(due, SLADue{Type: EventTicketSLAWarning, Point: SLAPoint{Target: tc.target, DueAt: warn}})
		}
	}
	return due
}

// NextDue returns the earliest point not recorded yet (the warning point
// unless warned or breached, the deadline unless breached) over the clocks
// that are neither fulfilled nor paused. It reports false when there is
// none, when the ticket is closed (status StatusClosed) and for a nil
// TicketSLA. Whenever NextDue returns a time at or before now, Due(now)
// returns at least one point, so a timer woken at NextDue always has work.
func (s *TicketSLA) NextDue(status string) (time.Time, bool) {
	if s == nil || status == StatusClosed {
		return time.Time{}, false
	}
	var next time.Time
	found := false
	consider := func(t time.Time) {
		if !found || t.Before(next) {
			next, found = t, true
		}
	}
	for _, tc := range s.clocks() {
		c := tc.clock
		if !c.running() || c.BreachedAt != nil {
			continue
		}
		if warn, ok := c.WarnAt(); ok && c.WarnedAt == nil {
			consider(warn)
		}
		deadline, _ := c.DueAt()
		consider(deadline)
	}
	return next, found
}

// Status returns the ticket's SLA at time now. A target is breached when
// its breach was recorded, when it is neither fulfilled nor paused and now
// is at or after its deadline, or when it was fulfilled after its
// deadline; otherwise fulfilled when met, paused while paused, warning when
// now is at or after its warning point, and active. Status of a nil
// TicketSLA is the zero SLAStatus with no targets.
func (s *TicketSLA) Status(now time.Time) SLAStatus {
	if s == nil {
		return SLAStatus{Targets: []SLATargetStatus{}}
	}
	st := SLAStatus{PolicyID: s.PolicyID, PolicyVersion: s.PolicyVersion, PolicyName: s.PolicyName, Targets: []SLATargetStatus{}}
	for _, tc := range s.clocks() {
		c := tc.clock
		ts := SLATargetStatus{Target: tc.target, FulfilledAt: copyTime(c.FulfilledAt), BreachedAt: copyTime(c.BreachedAt)}
		paused := c.Paused
		if c.PausedSince != nil && now.After(*c.PausedSince) {
			paused += now.Sub(*c.PausedSince)
		}
		ts.PausedSeconds = int64(paused / time.Second)
		deadline, hasDue := c.DueAt()
		if hasDue {
			ts.DueAt = &deadline
		}
		warn, hasWarn := c.WarnAt()
		if hasWarn {
			ts.WarnAt = &warn
		}
		switch {
		case c.BreachedAt != nil,
			c.running() && !now.Before(deadline),
			c.FulfilledAt != nil && c.FulfilledAt.After(deadline):
			ts.State = SLABreached
		case c.FulfilledAt != nil:
			ts.State = SLAFulfilled
		case c.PausedSince != nil:
			ts.State = SLAPaused
		case hasWarn && !now.Before(warn):
			ts.State = SLAWarning
		default:
			ts.State = SLAActive
		}
		st.Targets = append(st.Targets, ts)
	}
	return st
}

type targetClock struct {
	target string
	clock  *SLAClock
}

// clocks lists the clocks that exist, first response first.
func (s *TicketSLA) clocks() []targetClock {
	out := make([]targetClock, 0, 2)
	if s.FirstResponse != nil {
		out = append(out, targetClock{SLAFirstResponse, s.FirstResponse})
	}
	if s.Resolution != nil {
		out = append(out, targetClock{SLAResolution, s.Resolution})
	}
	return out
}

// clone copies s and its clocks. The clocks' time pointers are shared:
// ApplyTicket only ever replaces them, never writes through them.
func (s *TicketSLA) clone() *TicketSLA {
	if s == nil {
		return nil
	}
	out := *s
	for _, c := range []**SLAClock{&out.FirstResponse, &out.Resolution} {
		if *c != nil {
			cp := **c
			*c = &cp
		}
	}
	return &out
}

func (s *TicketSLA) clock(target string) *SLAClock {
	switch target {
	case SLAFirstResponse:
		return s.FirstResponse
	case SLAResolution:
		return s.Resolution
	}
	return nil
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// since returns t - from, or 0 when the events' clocks disagree and t is
// earlier (events come from several processes).
func since(from, t time.Time) time.Duration {
	if d := t.Sub(from); d > 0 {
		return d
	}
	return 0
}

// resume ends a pause in progress at t.
func (c *SLAClock) resume(t time.Time) {
	if c.PausedSince != nil {
		c.Paused += since(*c.PausedSince, t)
		c.PausedSince = nil
	}
}

// fulfil meets the target at t, ending a pause first so that Paused is
// final.
func (c *SLAClock) fulfil(t time.Time) {
	if c.FulfilledAt == nil {
		c.resume(t)
		c.FulfilledAt = copyTime(&t)
	}
}

// isPausingStatus reports whether a ticket in status stops its SLA clocks.
func isPausingStatus(status string) bool { return status == StatusPending || status == StatusOnHold }

// applySLAPolicy folds a ticket.sla_policy_applied event at time at.
func applySLAPolicy(t *Ticket, data json.RawMessage, at time.Time) error {
	var d SLAPolicyApplied
	if err := json.Unmarshal(data, &d); err != nil {
		return &Error{Code: EInternal, Message: "decode " + EventTicketSLAPolicyApplied, Err: err}
	}
	if d.PolicyID == nil {
		t.SLA = nil
		return nil
	}
	s := t.SLA.clone()
	if s == nil {
		s = &TicketSLA{}
	}
	s.PolicyID, s.PolicyVersion, s.PolicyName = *d.PolicyID, d.PolicyVersion, d.PolicyName
	s.FirstResponse = reapply(s.FirstResponse, d.FirstResponse, SLAFirstResponse, t, at)
	s.Resolution = reapply(s.Resolution, d.Resolution, SLAResolution, t, at)
	t.SLA = s
	return nil
}

// reapply returns the clock of target under spec: none without a spec, the
// existing clock with the new spec and its recorded points cleared, or a
// new clock started at at.
func reapply(c *SLAClock, spec *SLATargetSpec, target string, t *Ticket, at time.Time) *SLAClock {
	switch {
	case spec == nil:
		return nil
	case c != nil:
		c.Spec, c.WarnedAt, c.BreachedAt = *spec, nil, nil
		return c
	}
	c = &SLAClock{Spec: *spec, StartedAt: at}
	switch {
	case t.Status == StatusSolved || t.Status == StatusClosed:
		c.FulfilledAt = copyTime(&at)
	case target == SLAFirstResponse && agentSpokeLast(t.Messages):
		c.FulfilledAt = copyTime(&at)
	case isPausingStatus(t.Status):
		c.PausedSince = copyTime(&at)
	}
	return c
}

// agentSpokeLast reports whether the latest public message is an agent's:
// no customer is waiting for a first response (such as a ticket an agent
// opened, with no customer reply yet).
func agentSpokeLast(msgs []Message) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		if !msgs[i].Internal {
			return msgs[i].AuthorType == AuthorAgent
		}
	}
	return false
}

// applySLAStatus moves the clocks for a status change from old to new at t.
func applySLAStatus(t *Ticket, old, new string, at time.Time) {
	if t.SLA == nil || old == new {
		return
	}
	s := t.SLA.clone()
	if c := s.Resolution; c != nil && old == StatusSolved && new != StatusClosed && c.FulfilledAt != nil {
		// A reopen: the time spent solved counts as paused.
		c.Paused += since(*c.FulfilledAt, at)
		c.FulfilledAt = nil
	}
	for _, tc := range s.clocks() {
		c := tc.clock
		switch {
		case new == StatusSolved:
			c.fulfil(at)
		case isPausingStatus(new):
			if c.running() {
				c.PausedSince = copyTime(&at)
			}
		case new == StatusNew || new == StatusOpen:
			c.resume(at)
		}
		// StatusClosed: the clocks stay as they are; nothing is due any more.
	}
	t.SLA = s
}

// applySLAMessage fulfils the first response with a public agent message.
func applySLAMessage(t *Ticket, m MessageAdded, at time.Time) {
	if t.SLA == nil || t.SLA.FirstResponse == nil || t.SLA.FirstResponse.FulfilledAt != nil ||
		m.AuthorType != AuthorAgent || m.Internal {
		return
	}
	s := t.SLA.clone()
	s.FirstResponse.fulfil(at)
	t.SLA = s
}

// applySLAPoint records a warning or breach. A point for a target the
// ticket has no clock for (a policy change raced the timer) changes nothing.
func applySLAPoint(t *Ticket, eventType string, data json.RawMessage, at time.Time) error {
	var d SLAPoint
	if err := json.Unmarshal(data, &d); err != nil {
		return &Error{Code: EInternal, Message: "decode " + eventType, Err: err}
	}
	if t.SLA == nil || t.SLA.clock(d.Target) == nil {
		return nil
	}
	s := t.SLA.clone()
	c := s.clock(d.Target)
	if eventType == EventTicketSLAWarning {
		c.WarnedAt = copyTime(&at)
	} else {
		c.BreachedAt = copyTime(&at)
	}
	t.SLA = s
	return nil
}
