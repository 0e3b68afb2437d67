package pollers_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// clock is a fake clock shared by the service and the workers.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type slaFixture struct {
	t         *testing.T
	ctx       context.Context
	store     testenv.Rooms
	svc       *testenv.Commands
	clock     *clock
	workspace uuid.UUID
	md        helpdeskflow.Metadata
}

func newSLAFixture(t *testing.T) *slaFixture {
	store := testenv.NewRooms(t)
	c := &clock{now: time.Now().UTC().Truncate(time.Second)}
	f := &slaFixture{t: t, ctx: context.Background(), store: store, clock: c,
		svc: testenv.NewCommands(store.EventStore, testenv.CommandOptions{Clock: c.Now}),
		md:  helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}}
	ws, _, err := f.svc.Access.CreateWorkspace(f.ctx, f.md, "sla")
	if err != nil {
		t.Fatal(err)
	}
	f.workspace = ws
	return f
}

// worker is a new SLA timer worker, as after a restart: it knows nothing
// but what Postgres holds.
func (f *slaFixture) worker() *pollers.SLAWorker {
	w, err := pollers.NewSLAWorker(pollers.SLAWorkerConfig{Timers: f.store, Checker: f.svc.Tickets, Now: f.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

func (f *slaFixture) tick(w *pollers.SLAWorker) int {
	f.t.Helper()
	n, err := w.Tick(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// slaEvents lists the ticket's SLA event types and targets, in order.
func (f *slaFixture) slaEvents(id uuid.UUID) []string {
	f.t.Helper()
	events, err := f.store.Load(f.ctx, f.workspace, id)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		switch e.Type {
		case helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached:
			p := string(e.Data)
			target := helpdeskflow.SLAFirstResponse
			if strings.Contains(p, helpdeskflow.SLAResolution) {
				target = helpdeskflow.SLAResolution
			}
			out = append(out, e.Type+":"+target)
			if e.Metadata.Channel != helpdeskflow.ChannelSystem || e.Metadata.Actor.Type != helpdeskflow.ActorSystem {
				f.t.Errorf("SLA event metadata: %+v", e.Metadata)
			}
		case helpdeskflow.EventTicketSLAPolicyApplied:
			out = append(out, e.Type)
		}
	}
	return out
}

func (f *slaFixture) status(id uuid.UUID) map[string]helpdeskflow.SLATargetStatus {
	f.t.Helper()
	tk, err := f.svc.Tickets.GetTicket(f.ctx, f.workspace, id, true)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]helpdeskflow.SLATargetStatus{}
	for _, ts := range tk.SLA.Status(f.clock.Now()).Targets {
		out[ts.Target] = ts
	}
	return out
}

func TestSLAWorker_TimersFireOnceAcrossRestarts(t *testing.T) {
	f := newSLAFixture(t)
	start := f.clock.Now()
	_, err := f.svc.Rules.CreateSLAPolicy(f.ctx, f.workspace, f.md, rules.SLAPolicyWrite{Name: "Urgent",
		Conditions:    automation.Conditions{All: []automation.Condition{{Field: "ticket.priority", Operator: "is", Value: "urgent"}}},
		FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 60, WarnBeforeMinutes: 10},
		Resolution:    &helpdeskflow.SLATargetSpec{Minutes: 240, WarnBeforeMinutes: 30}})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := f.svc.Tickets.CreateTicket(f.ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "Down", Priority: "urgent",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "help"}})
	if err != nil {
		t.Fatal(err)
	}
	// A normal ticket gets no SLA and no timer.
	plain, err := f.svc.Tickets.CreateTicket(f.ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "Question",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	if err != nil || plain.SLA != nil {
		t.Fatalf("plain ticket: %v %+v", err, plain.SLA)
	}
	st := f.status(tk.ID)
	if due := st[helpdeskflow.SLAFirstResponse].DueAt; due == nil || !due.Equal(start.Add(time.Hour)) || st[helpdeskflow.SLAFirstResponse].State != helpdeskflow.SLAActive {
		t.Fatalf("first response at creation: %+v", st[helpdeskflow.SLAFirstResponse])
	}

	w1 := f.worker()
	if n := f.tick(w1); n != 0 {
		t.Errorf("nothing is due yet, but %d checked", n)
	}
	// 51 minutes later a new worker (a restart) fires the warning, once.
	f.clock.advance(51 * time.Minute)
	if n := f.tick(f.worker()); n != 1 {
		t.Errorf("warning: %d checked", n)
	}
	if n := f.tick(f.worker()); n != 0 {
		t.Errorf("the warning's timer did not move on: %d checked", n)
	}
	if got := f.slaEvents(tk.ID); len(got) != 2 || got[1] != "ticket.sla_warning:first_response" {
		t.Fatalf("after the warning: %v", got)
	}
	if st := f.status(tk.ID); st[helpdeskflow.SLAFirstResponse].State != helpdeskflow.SLAWarning {
		t.Errorf("state after the warning: %+v", st)
	}

	// Past the deadline, several workers at once still breach once.
	f.clock.advance(10 * time.Minute)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); f.tick(f.worker()) }()
	}
	wg.Wait()
	if got := f.slaEvents(tk.ID); len(got) != 3 || got[2] != "ticket.sla_breached:first_response" {
		t.Fatalf("after the deadline: %v", got)
	}

	// Pending pauses the resolution clock: two hours pass without a warning.
	if _, err := f.svc.Tickets.UpdateTicket(f.ctx, f.workspace, f.md, tk.ID, nil, tickets.UpdateTicket{Status: strp("pending")}, true); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(2 * time.Hour)
	f.tick(f.worker())
	if st := f.status(tk.ID); st[helpdeskflow.SLAResolution].State != helpdeskflow.SLAPaused || st[helpdeskflow.SLAResolution].DueAt != nil {
		t.Errorf("paused resolution: %+v", st[helpdeskflow.SLAResolution])
	}
	if _, err := f.svc.Tickets.UpdateTicket(f.ctx, f.workspace, f.md, tk.ID, nil, tickets.UpdateTicket{Status: strp("open")}, true); err != nil {
		t.Fatal(err)
	}
	res := f.status(tk.ID)[helpdeskflow.SLAResolution]
	if res.DueAt == nil || !res.DueAt.Equal(start.Add(6*time.Hour)) || res.PausedSeconds != 7200 {
		t.Errorf("resumed resolution should be due at start+4h+2h: %+v", res)
	}
	// An agent reply after the deadline leaves first response breached.
	if _, err := f.svc.Tickets.AddMessage(f.ctx, f.workspace, f.md, tk.ID, nil, tickets.AddMessage{Body: "on it"}, true); err != nil {
		t.Fatal(err)
	}
	// Solving fulfils resolution; nothing is due any more.
	if _, err := f.svc.Tickets.UpdateTicket(f.ctx, f.workspace, f.md, tk.ID, nil, tickets.UpdateTicket{Status: strp("solved")}, true); err != nil {
		t.Fatal(err)
	}
	st = f.status(tk.ID)
	if st[helpdeskflow.SLAFirstResponse].State != helpdeskflow.SLABreached || st[helpdeskflow.SLAResolution].State != helpdeskflow.SLAFulfilled {
		t.Errorf("after reply and solve: %+v", st)
	}
	f.clock.advance(24 * time.Hour)
	if n := f.tick(f.worker()); n != 0 {
		t.Errorf("a solved ticket was checked %d times", n)
	}
	if got := f.slaEvents(tk.ID); len(got) != 3 {
		t.Errorf("events after solving: %v", got)
	}
}

func TestSLAWorker_PolicyChangeRecomputesOpenTickets(t *testing.T) {
	f := newSLAFixture(t)
	start := f.clock.Now()
	policy, err := f.svc.Rules.CreateSLAPolicy(f.ctx, f.workspace, f.md, rules.SLAPolicyWrite{Name: "All",
		Resolution: &helpdeskflow.SLATargetSpec{Minutes: 120}})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := f.svc.Tickets.CreateTicket(f.ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "x",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.advance(time.Minute)
	if _, err := f.svc.Rules.ReplaceSLAPolicy(f.ctx, f.workspace, f.md, policy.ID, nil, rules.SLAPolicyWrite{Name: "All",
		Resolution: &helpdeskflow.SLATargetSpec{Minutes: 30}}); err != nil {
		t.Fatal(err)
	}
	if n := f.tick(f.worker()); n != 1 {
		t.Fatalf("the changed policy's ticket was checked %d times", n)
	}
	tkNow, err := f.svc.Tickets.GetTicket(f.ctx, f.workspace, tk.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	res := tkNow.SLA.Status(f.clock.Now()).Targets[0]
	if tkNow.SLA.PolicyVersion != 2 || res.DueAt == nil || !res.DueAt.Equal(start.Add(30*time.Minute)) {
		t.Errorf("re-computed SLA: version %d %+v", tkNow.SLA.PolicyVersion, res)
	}
	if got := f.slaEvents(tk.ID); len(got) != 2 {
		t.Errorf("want two sla_policy_applied events (audited), got %v", got)
	}
	// Deleting the policy removes the ticket's SLA.
	if err := f.svc.Rules.DeleteSLAPolicy(f.ctx, f.workspace, f.md, policy.ID); err != nil {
		t.Fatal(err)
	}
	f.tick(f.worker())
	if tkNow, err = f.svc.Tickets.GetTicket(f.ctx, f.workspace, tk.ID, true); err != nil || tkNow.SLA != nil {
		t.Errorf("after deleting the policy: %v %+v", err, tkNow.SLA)
	}
	f.clock.advance(time.Hour)
	if n := f.tick(f.worker()); n != 0 {
		t.Errorf("a ticket without SLA was checked %d times", n)
	}
}

func strp(s string) *string { return &s }
