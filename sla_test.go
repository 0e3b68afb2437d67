package helpdeskflow_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

var (
	slaT0     = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	policyA   = uuid.MustParse("5a000000-0000-4000-8000-00000000000a")
	policyB   = uuid.MustParse("5a000000-0000-4000-8000-00000000000b")
	ticketID  = uuid.MustParse("7d000000-0000-4000-8000-000000000001")
	workspace = uuid.MustParse("0e000000-0000-4000-8000-000000000001")
)

// at is slaT0 plus min minutes.
func at(min int) time.Time { return slaT0.Add(time.Duration(min) * time.Minute) }

func spec(minutes, warn int) *helpdeskflow.SLATargetSpec {
	return &helpdeskflow.SLATargetSpec{Minutes: minutes, WarnBeforeMinutes: warn}
}

// ev is one event of a test stream, at minute min.
type ev struct {
	typ  string
	data any
	min  int
}

func created(status, author string, min int) ev {
	return ev{helpdeskflow.EventTicketCreated, helpdeskflow.TicketCreated{Subject: "Broken", Status: status,
		Priority: helpdeskflow.PriorityHigh, Channel: "email", CustomerID: uuid.New(),
		Message: helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: author, Body: "<p>x</p>", BodyText: "x"}}, min}
}

func applied(id uuid.UUID, version int64, fr, res *helpdeskflow.SLATargetSpec, min int) ev {
	return ev{helpdeskflow.EventTicketSLAPolicyApplied, helpdeskflow.SLAPolicyApplied{PolicyID: &id, PolicyVersion: version,
		PolicyName: fmt.Sprintf("policy v%d", version), FirstResponse: fr, Resolution: res}, min}
}

func removed(min int) ev {
	return ev{helpdeskflow.EventTicketSLAPolicyApplied, helpdeskflow.SLAPolicyApplied{}, min}
}

func status(from, to string, min int) ev {
	return ev{helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{Status: &helpdeskflow.Change[string]{Old: from, New: to}}, min}
}

func message(author string, internal bool, min int) ev {
	return ev{helpdeskflow.EventTicketMessageAdded, helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: author,
		Body: "<p>y</p>", BodyText: "y", Internal: internal}, min}
}

func point(typ, target string, dueMin, min int) ev {
	return ev{typ, helpdeskflow.SLAPoint{Target: target, DueAt: at(dueMin)}, min}
}

func stored(t *testing.T, e ev, version int64) helpdeskflow.Event {
	t.Helper()
	ne, err := helpdeskflow.NewEventOf(e.typ, e.data)
	if err != nil {
		t.Fatal(err)
	}
	return helpdeskflow.Event{ID: ne.ID, Type: ne.Type, SchemaVersion: ne.SchemaVersion, StreamID: ticketID,
		StreamType: helpdeskflow.StreamTicket, Version: version, WorkspaceID: workspace, OccurredAt: at(e.min), Data: ne.Data}
}

func fold(t *testing.T, evs ...ev) helpdeskflow.Ticket {
	t.Helper()
	var tk helpdeskflow.Ticket
	for i, e := range evs {
		if err := helpdeskflow.ApplyTicket(&tk, stored(t, e, int64(i+1))); err != nil {
			t.Fatalf("event %d (%s): %v", i+1, e.typ, err)
		}
	}
	return tk
}

// minutes formats a time as minutes after slaT0, "-" for nil.
func minutes(p *time.Time) string {
	if p == nil {
		return "-"
	}
	d := p.Sub(slaT0)
	if d%time.Minute != 0 {
		return d.String()
	}
	return fmt.Sprint(int(d / time.Minute))
}

// describe renders a clock exactly, in minutes after slaT0.
func describe(c *helpdeskflow.SLAClock) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("spec=%d/%d start=%s paused=%v pausedSince=%s fulfilled=%s warned=%s breached=%s",
		c.Spec.Minutes, c.Spec.WarnBeforeMinutes, minutes(&c.StartedAt), c.Paused, minutes(c.PausedSince),
		minutes(c.FulfilledAt), minutes(c.WarnedAt), minutes(c.BreachedAt))
}

func TestApplyTicket_SLA(t *testing.T) {
	const (
		open, pending, onHold, solved, closed = helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold,
			helpdeskflow.StatusSolved, helpdeskflow.StatusClosed
		customer, agent = helpdeskflow.AuthorCustomer, helpdeskflow.AuthorAgent
		warning, breach = helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached
		fr, res         = helpdeskflow.SLAFirstResponse, helpdeskflow.SLAResolution
	)
	tests := []struct {
		name    string
		events  []ev
		noSLA   bool
		version int64 // of the policy, when set
		wantFR  string
		wantRes string
	}{
		{
			name:    "policy starts both clocks",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "policy with one target",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, nil, spec(480, 0), 2)},
			version: 1,
			wantFR:  "none",
			wantRes: "spec=480/0 start=2 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "pending pauses, open resumes",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), status(open, pending, 10), status(pending, open, 40)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=30m0s pausedSince=- fulfilled=- warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=30m0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "pause in progress; pending to on_hold keeps it",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), status(open, onHold, 10), status(onHold, pending, 20)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=10 fulfilled=- warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=10 fulfilled=- warned=- breached=-",
		},
		{
			name:    "applied while pending starts paused",
			events:  []ev{created(pending, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 5), status(pending, open, 25)},
			version: 1,
			wantFR:  "spec=60/10 start=5 paused=20m0s pausedSince=- fulfilled=- warned=- breached=-",
			wantRes: "spec=480/60 start=5 paused=20m0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "applied while solved starts fulfilled",
			events:  []ev{created(open, customer, 0), status(open, solved, 3), applied(policyA, 1, spec(60, 10), spec(480, 60), 5)},
			version: 1,
			wantFR:  "spec=60/10 start=5 paused=0s pausedSince=- fulfilled=5 warned=- breached=-",
			wantRes: "spec=480/60 start=5 paused=0s pausedSince=- fulfilled=5 warned=- breached=-",
		},
		{
			name:    "public agent reply fulfils first response",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), message(agent, false, 12), message(agent, false, 20)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=12 warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "internal note and customer message do not fulfil first response",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), message(agent, true, 12), message(customer, false, 15)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "agent reply while pending ends the pause",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), nil, 0), status(open, pending, 10), message(agent, false, 25)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=15m0s pausedSince=- fulfilled=25 warned=- breached=-",
			wantRes: "none",
		},
		{
			name:    "ticket opened by an agent starts first response fulfilled",
			events:  []ev{created(open, agent, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=0 warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name:    "ticket opened by an agent, customer replied, then policy",
			events:  []ev{created(open, agent, 0), message(customer, false, 3), message(agent, true, 4), applied(policyA, 1, spec(60, 10), nil, 5)},
			version: 1,
			wantFR:  "spec=60/10 start=5 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
			wantRes: "none",
		},
		{
			name: "solve fulfils, reopen counts solved time as paused",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), message(agent, false, 5),
				status(open, solved, 100), status(solved, open, 130)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=5 warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=30m0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name: "solve while paused ends the pause",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), status(open, pending, 10),
				status(pending, solved, 50)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=40m0s pausedSince=- fulfilled=50 warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=40m0s pausedSince=- fulfilled=50 warned=- breached=-",
		},
		{
			name: "close leaves the clocks",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), status(open, solved, 100),
				status(solved, closed, 200)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=100 warned=- breached=-",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=- fulfilled=100 warned=- breached=-",
		},
		{
			name: "warning and breach are recorded",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0),
				point(warning, fr, 50, 51), point(breach, fr, 60, 62), point(warning, res, 420, 425)},
			version: 1,
			wantFR:  "spec=60/10 start=0 paused=0s pausedSince=- fulfilled=- warned=51 breached=62",
			wantRes: "spec=480/60 start=0 paused=0s pausedSince=- fulfilled=- warned=425 breached=-",
		},
		{
			name: "point for a missing target or without SLA changes nothing",
			events: []ev{created(open, customer, 0), point(breach, fr, 60, 61), applied(policyA, 1, nil, spec(480, 60), 62),
				point(breach, fr, 60, 63), point(warning, "next_reply", 60, 64)},
			version: 1,
			wantFR:  "none",
			wantRes: "spec=480/60 start=62 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
		},
		{
			name: "re-application keeps the clocks and clears the recorded points",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), status(open, pending, 10),
				status(pending, open, 20), point(warning, fr, 60, 60), point(breach, fr, 70, 70), message(agent, false, 80),
				status(open, onHold, 90), applied(policyA, 2, spec(120, 30), spec(960, 0), 95)},
			version: 2,
			wantFR:  "spec=120/30 start=0 paused=10m0s pausedSince=- fulfilled=80 warned=- breached=-",
			wantRes: "spec=960/0 start=0 paused=10m0s pausedSince=90 fulfilled=- warned=- breached=-",
		},
		{
			name: "another policy drops a target and adds one",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), nil, 0), point(warning, fr, 50, 50),
				status(open, pending, 55), applied(policyB, 7, nil, spec(480, 60), 70)},
			version: 7,
			wantFR:  "none",
			wantRes: "spec=480/60 start=70 paused=0s pausedSince=70 fulfilled=- warned=- breached=-",
		},
		{
			name:   "removal drops the SLA",
			events: []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), spec(480, 60), 0), removed(30)},
			noSLA:  true,
		},
		{
			name:    "removal then a new policy starts afresh",
			events:  []ev{created(open, customer, 0), applied(policyA, 1, spec(60, 10), nil, 0), point(warning, fr, 50, 50), removed(55), applied(policyA, 2, spec(60, 10), nil, 58)},
			version: 2,
			wantFR:  "spec=60/10 start=58 paused=0s pausedSince=- fulfilled=- warned=- breached=-",
			wantRes: "none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := fold(t, tt.events...)
			last := tt.events[len(tt.events)-1]
			if got, want := tk.Version, int64(len(tt.events)); got != want {
				t.Errorf("Version = %d, want %d", got, want)
			}
			if got, want := tk.UpdatedAt, at(last.min); !got.Equal(want) {
				t.Errorf("UpdatedAt = %v, want %v", got, want)
			}
			if tt.noSLA {
				if tk.SLA != nil {
					t.Fatalf("SLA = %+v, want nil", tk.SLA)
				}
				return
			}
			if tk.SLA == nil {
				t.Fatal("SLA is nil")
			}
			if got, want := tk.SLA.PolicyVersion, tt.version; got != want {
				t.Errorf("PolicyVersion = %d, want %d", got, want)
			}
			if got, want := tk.SLA.PolicyName, fmt.Sprintf("policy v%d", tt.version); got != want {
				t.Errorf("PolicyName = %q, want %q", got, want)
			}
			if got, want := describe(tk.SLA.FirstResponse), tt.wantFR; got != want {
				t.Errorf("first response:\n got %s\nwant %s", got, want)
			}
			if got, want := describe(tk.SLA.Resolution), tt.wantRes; got != want {
				t.Errorf("resolution:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestApplyTicket_SLAPolicyID(t *testing.T) {
	tk := fold(t, created(helpdeskflow.StatusOpen, helpdeskflow.AuthorCustomer, 0),
		applied(policyA, 1, spec(60, 0), nil, 0), applied(policyB, 3, spec(60, 0), nil, 1))
	if got, want := tk.SLA.PolicyID, policyB; got != want {
		t.Fatalf("PolicyID = %s, want %s", got, want)
	}
}

// A copy of a ticket keeps its SLA when the original folds further events.
func TestApplyTicket_SLANotShared(t *testing.T) {
	tk := fold(t, created(helpdeskflow.StatusOpen, helpdeskflow.AuthorCustomer, 0), applied(policyA, 1, spec(60, 10), spec(480, 0), 0))
	before := tk
	want := describe(before.SLA.FirstResponse)
	for i, e := range []ev{message(helpdeskflow.AuthorAgent, false, 5), status(helpdeskflow.StatusOpen, helpdeskflow.StatusPending, 6),
		point(helpdeskflow.EventTicketSLAWarning, helpdeskflow.SLAFirstResponse, 50, 50), applied(policyA, 2, spec(30, 0), nil, 60)} {
		if err := helpdeskflow.ApplyTicket(&tk, stored(t, e, int64(3+i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := describe(before.SLA.FirstResponse); got != want {
		t.Fatalf("the copy's first response changed:\n got %s\nwant %s", got, want)
	}
	if before.SLA.PolicyVersion != 1 || before.SLA.Resolution == nil {
		t.Fatalf("the copy's SLA changed: %+v", before.SLA)
	}
}

func TestApplyTicket_SLABadData(t *testing.T) {
	for _, typ := range []string{helpdeskflow.EventTicketSLAPolicyApplied, helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached} {
		tk := fold(t, created(helpdeskflow.StatusOpen, helpdeskflow.AuthorCustomer, 0))
		e := helpdeskflow.Event{Type: typ, Version: 2, OccurredAt: at(1), Data: json.RawMessage(`[1]`)}
		if err := helpdeskflow.ApplyTicket(&tk, e); helpdeskflow.ErrorCode(err) != helpdeskflow.EInternal {
			t.Errorf("%s with bad data: err = %v, want code %s", typ, err, helpdeskflow.EInternal)
		}
	}
}

func TestSLAClock_DueAtWarnAt(t *testing.T) {
	paused := at(30)
	tests := []struct {
		name          string
		clock         helpdeskflow.SLAClock
		wantDue       string
		wantWarn      string
		dueOK, warnOK bool
	}{
		{"running", helpdeskflow.SLAClock{Spec: *spec(60, 10), StartedAt: at(5)}, "65", "55", true, true},
		{"with paused time", helpdeskflow.SLAClock{Spec: *spec(60, 10), StartedAt: at(5), Paused: 90 * time.Second}, "1h6m30s", "56m30s", true, true},
		{"no warning point", helpdeskflow.SLAClock{Spec: *spec(60, 0), StartedAt: at(5)}, "65", "-", true, false},
		{"paused", helpdeskflow.SLAClock{Spec: *spec(60, 10), StartedAt: at(5), PausedSince: &paused}, "-", "-", false, false},
		{"fulfilled keeps its deadline", helpdeskflow.SLAClock{Spec: *spec(60, 10), StartedAt: at(5), FulfilledAt: &paused}, "65", "55", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, dueOK := tt.clock.DueAt()
			warn, warnOK := tt.clock.WarnAt()
			str := func(t time.Time, ok bool) string {
				if !ok {
					return "-"
				}
				return minutes(&t)
			}
			if got := str(due, dueOK); got != tt.wantDue || dueOK != tt.dueOK {
				t.Errorf("DueAt = %s, %v; want %s, %v", got, dueOK, tt.wantDue, tt.dueOK)
			}
			if got := str(warn, warnOK); got != tt.wantWarn || warnOK != tt.warnOK {
				t.Errorf("WarnAt = %s, %v; want %s, %v", got, warnOK, tt.wantWarn, tt.warnOK)
			}
		})
	}
}

// clock builds a clock started at minute 0; opts set its state.
func clock(minutes, warn int, opts ...func(*helpdeskflow.SLAClock)) *helpdeskflow.SLAClock {
	c := &helpdeskflow.SLAClock{Spec: *spec(minutes, warn), StartedAt: at(0)}
	for _, o := range opts {
		o(c)
	}
	return c
}

func tp(min int) *time.Time { t := at(min); return &t }

func pausedFor(d time.Duration) func(*helpdeskflow.SLAClock) {
	return func(c *helpdeskflow.SLAClock) { c.Paused = d }
}
func pausedSince(min int) func(*helpdeskflow.SLAClock) {
	return func(c *helpdeskflow.SLAClock) { c.PausedSince = tp(min) }
}
func fulfilled(min int) func(*helpdeskflow.SLAClock) {
	return func(c *helpdeskflow.SLAClock) { c.FulfilledAt = tp(min) }
}
func warned(min int) func(*helpdeskflow.SLAClock) {
	return func(c *helpdeskflow.SLAClock) { c.WarnedAt = tp(min) }
}
func breached(min int) func(*helpdeskflow.SLAClock) {
	return func(c *helpdeskflow.SLAClock) { c.BreachedAt = tp(min) }
}

func describeDue(ds []helpdeskflow.SLADue) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%s %s@%s", strings.TrimPrefix(d.Type, "ticket.sla_"), d.Point.Target, minutes(&d.Point.DueAt))
	}
	return strings.Join(s, ", ")
}

func TestTicketSLA_DueAndNextDue(t *testing.T) {
	open := helpdeskflow.StatusOpen
	tests := []struct {
		name     string
		fr, res  *helpdeskflow.SLAClock
		status   string
		now      int
		wantDue  string
		wantNext string // "-" for none
	}{
		{"nothing yet", clock(60, 10), clock(480, 60), open, 49, "", "50"},
		{"first response warning", clock(60, 10), clock(480, 60), open, 50, "warning first_response@50", "50"},
		{"warned, deadline next", clock(60, 10, warned(50)), clock(480, 60), open, 55, "", "60"},
		{"breach at the deadline", clock(60, 10, warned(50)), clock(480, 60), open, 60, "breached first_response@60", "60"},
		{"breached, resolution next", clock(60, 10, warned(50), breached(60)), clock(480, 60), open, 61, "", "420"},
		{"deadline passed during downtime: only the breach", clock(60, 10), clock(120, 30), open, 200,
			"breached first_response@60, breached resolution@120", "50"},
		{"first response before resolution", clock(60, 10), clock(100, 10), open, 95,
			"breached first_response@60, warning resolution@90", "50"},
		{"no warning point", clock(60, 0), nil, open, 59, "", "60"},
		{"paused time moves the points", clock(60, 10, pausedFor(30*time.Minute)), nil, open, 79, "", "80"},
		{"paused clock has nothing due", clock(60, 10, pausedSince(5)), clock(480, 60, pausedSince(5)), helpdeskflow.StatusPending, 1000, "", "-"},
		{"fulfilled clock has nothing due", clock(60, 10, fulfilled(70)), clock(480, 60, fulfilled(70)), helpdeskflow.StatusSolved, 1000, "", "-"},
		{"fulfilled first response, running resolution", clock(60, 10, fulfilled(5)), clock(480, 60), open, 430, "warning resolution@420", "420"},
		{"breach recorded, no late warning", clock(60, 10, breached(60)), nil, open, 100, "", "-"},
		{"closed ticket", clock(60, 10), clock(480, 60), helpdeskflow.StatusClosed, 1000, "", "-"},
		{"re-applied: points cleared, evaluated again", clock(120, 30, fulfilled(80)), clock(960, 0, pausedFor(10*time.Minute)), open, 975,
			"breached resolution@970", "970"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &helpdeskflow.TicketSLA{PolicyID: policyA, PolicyVersion: 1, FirstResponse: tt.fr, Resolution: tt.res}
			if got := describeDue(s.Due(at(tt.now), tt.status)); got != tt.wantDue {
				t.Errorf("Due = %q, want %q", got, tt.wantDue)
			}
			next, ok := s.NextDue(tt.status)
			got := "-"
			if ok {
				got = minutes(&next)
			}
			if got != tt.wantNext {
				t.Errorf("NextDue = %s, want %s", got, tt.wantNext)
			}
		})
	}
	var none *helpdeskflow.TicketSLA
	if due := none.Due(at(1000), helpdeskflow.StatusOpen); len(due) != 0 {
		t.Errorf("nil SLA: Due = %v", due)
	}
	if _, ok := none.NextDue(helpdeskflow.StatusOpen); ok {
		t.Error("nil SLA: NextDue reports a time")
	}
}

// TestTicketSLA_Timer plays the timer worker: wake at NextDue, append what
// Due returns, repeat. Every wake-up must have work, and the events must be
// exactly the expected ones, including after a pause and a downtime.
func TestTicketSLA_Timer(t *testing.T) {
	events := []ev{created(helpdeskflow.StatusOpen, helpdeskflow.AuthorCustomer, 0),
		applied(policyA, 1, spec(60, 10), spec(240, 30), 0), status(helpdeskflow.StatusOpen, helpdeskflow.StatusPending, 20),
		status(helpdeskflow.StatusPending, helpdeskflow.StatusOpen, 40)}
	tk := fold(t, events...)
	var fired []string
	for i := 0; i < 10; i++ {
		next, ok := tk.SLA.NextDue(tk.Status)
		if !ok {
			break
		}
		now := next
		if next.Equal(at(80)) {
			now = at(300) // down from the first response's warning until after every deadline
		}
		due := tk.SLA.Due(now, tk.Status)
		if len(due) == 0 {
			t.Fatalf("woken at %s (NextDue %s) with nothing due", minutes(&now), minutes(&next))
		}
		for _, d := range due {
			e := ev{d.Type, d.Point, int(now.Sub(slaT0) / time.Minute)}
			events = append(events, e)
			if err := helpdeskflow.ApplyTicket(&tk, stored(t, e, int64(len(events)))); err != nil {
				t.Fatal(err)
			}
			fired = append(fired, fmt.Sprintf("%s@%s", describeDue([]helpdeskflow.SLADue{d}), minutes(&now)))
		}
	}
	want := []string{
		"warning first_response@70@70",
		"breached first_response@80@300", "breached resolution@260@300",
	}
	if !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
}

func TestTicketSLA_Status(t *testing.T) {
	tests := []struct {
		name  string
		clock *helpdeskflow.SLAClock
		now   int
		want  string // state due warn fulfilled breached pausedSeconds
	}{
		{"active", clock(60, 10), 49, "active due=60 warn=50 fulfilled=- breached=- paused=0"},
		{"warning at the warning point", clock(60, 10), 50, "warning due=60 warn=50 fulfilled=- breached=- paused=0"},
		{"no warning point", clock(60, 0), 59, "active due=60 warn=- fulfilled=- breached=- paused=0"},
		{"breached at the deadline, not recorded yet", clock(60, 10), 60, "breached due=60 warn=50 fulfilled=- breached=- paused=0"},
		{"breach recorded", clock(60, 10, warned(50), breached(61)), 70, "breached due=60 warn=50 fulfilled=- breached=61 paused=0"},
		{"fulfilled in time", clock(60, 10, fulfilled(55)), 500, "fulfilled due=60 warn=50 fulfilled=55 breached=- paused=0"},
		{"fulfilled exactly at the deadline", clock(60, 10, fulfilled(60)), 500, "fulfilled due=60 warn=50 fulfilled=60 breached=- paused=0"},
		{"fulfilled late", clock(60, 10, fulfilled(61)), 500, "breached due=60 warn=50 fulfilled=61 breached=- paused=0"},
		{"breach recorded, then fulfilled", clock(60, 10, breached(60), fulfilled(65)), 500, "breached due=60 warn=50 fulfilled=65 breached=60 paused=0"},
		{"paused, the pause counts up to now", clock(60, 10, pausedFor(90*time.Second), pausedSince(30)), 100,
			"paused due=- warn=- fulfilled=- breached=- paused=4290"},
		{"paused past the old deadline is not breached", clock(60, 10, pausedSince(30)), 500, "paused due=- warn=- fulfilled=- breached=- paused=28200"},
		{"resumed: the deadline moved", clock(60, 10, pausedFor(30*time.Minute)), 85, "warning due=90 warn=80 fulfilled=- breached=- paused=1800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &helpdeskflow.TicketSLA{PolicyID: policyA, PolicyVersion: 3, PolicyName: "VIP", Resolution: tt.clock}
			st := s.Status(at(tt.now))
			if st.PolicyID != policyA || st.PolicyVersion != 3 || st.PolicyName != "VIP" {
				t.Errorf("policy = %s v%d %q", st.PolicyID, st.PolicyVersion, st.PolicyName)
			}
			if len(st.Targets) != 1 || st.Targets[0].Target != helpdeskflow.SLAResolution {
				t.Fatalf("targets = %+v, want one resolution target", st.Targets)
			}
			ts := st.Targets[0]
			got := fmt.Sprintf("%s due=%s warn=%s fulfilled=%s breached=%s paused=%d", ts.State, minutes(ts.DueAt), minutes(ts.WarnAt),
				minutes(ts.FulfilledAt), minutes(ts.BreachedAt), ts.PausedSeconds)
			if got != tt.want {
				t.Errorf("Status:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTicketSLA_StatusOrderAndJSON(t *testing.T) {
	tk := fold(t, created(helpdeskflow.StatusOpen, helpdeskflow.AuthorCustomer, 0),
		applied(policyA, 2, spec(60, 10), spec(480, 0), 0), message(helpdeskflow.AuthorAgent, false, 30))
	st := tk.SLA.Status(at(45))
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"policy_id":"5a000000-0000-4000-8000-00000000000a","policy_version":2,"policy_name":"policy v2","targets":[` +
		`{"target":"first_response","state":"fulfilled","due_at":"2026-01-05T10:00:00Z","warn_at":"2026-01-05T09:50:00Z","fulfilled_at":"2026-01-05T09:30:00Z","breached_at":null,"paused_seconds":0},` +
		`{"target":"resolution","state":"active","due_at":"2026-01-05T17:00:00Z","warn_at":null,"fulfilled_at":null,"breached_at":null,"paused_seconds":0}]}`
	if string(b) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", b, want)
	}
	var none *helpdeskflow.TicketSLA
	if st := none.Status(at(0)); len(st.Targets) != 0 || st.PolicyID != uuid.Nil {
		t.Fatalf("nil SLA: Status = %+v", st)
	}
}

func TestFieldChanges_SLA(t *testing.T) {
	tests := []struct {
		name string
		e    ev
		want string
	}{
		{"policy applied", applied(policyA, 4, spec(60, 10), nil, 0),
			`sla.first_response: null -> {"minutes":60,"warn_before_minutes":10}; ` +
				`sla.policy: null -> {"id":"5a000000-0000-4000-8000-00000000000a","version":4,"name":"policy v4"}; ` +
				`sla.resolution: null -> null`},
		{"policy removed", removed(0), `sla.first_response: null -> null; sla.policy: null -> null; sla.resolution: null -> null`},
		{"warning", point(helpdeskflow.EventTicketSLAWarning, helpdeskflow.SLAFirstResponse, 50, 51), `sla.first_response: null -> "warning"`},
		{"breach", point(helpdeskflow.EventTicketSLABreached, helpdeskflow.SLAResolution, 480, 481), `sla.resolution: null -> "breached"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := stored(t, tt.e, 2)
			changes, err := helpdeskflow.FieldChanges(e)
			if err != nil {
				t.Fatal(err)
			}
			s := make([]string, len(changes))
			for i, c := range changes {
				s[i] = fmt.Sprintf("%s: %s -> %s", c.Field, c.Old, c.New)
			}
			if got := strings.Join(s, "; "); got != tt.want {
				t.Errorf("FieldChanges:\n got %s\nwant %s", got, tt.want)
			}
			if helpdeskflow.IsInternalNote(e) {
				t.Error("IsInternalNote is true")
			}
		})
	}
}

func TestFieldChanges_RuleDefinitions(t *testing.T) {
	e := helpdeskflow.Event{Type: helpdeskflow.EventAutomationUpdated, Data: json.RawMessage(`{"name":"r","position":2,"active":true,"conditions":{"all":[],"any":[]},"actions":[]}`)}
	changes, err := helpdeskflow.FieldChanges(e)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, c := range changes {
		fields = append(fields, c.Field)
	}
	if fmt.Sprint(fields) != "[actions active conditions name position]" {
		t.Errorf("fields: %v", fields)
	}
}
