package tickets_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// foldOf folds events from the zero ticket.
func foldOf(t *testing.T, events []helpdeskflow.Event) helpdeskflow.Ticket {
	t.Helper()
	var state helpdeskflow.Ticket
	for _, e := range events {
		if err := helpdeskflow.ApplyTicket(&state, e); err != nil {
			t.Fatal(err)
		}
	}
	return state
}

// TestGetTicketAsOf_EqualsTheFoldUpToThePoint drives a ticket through
// 330 commands (messages, notes, updates, SLA points; snapshots at every
// hundred or so events) and reads it as of every version and as of every
// event's time: each answer is exactly the fold of the events up to that
// point, whether the stream's snapshot was usable or not. The reads load
// the snapshot and the events after it up to the point, or (before the
// snapshot) the events up to the point, never the whole stream.
func TestGetTicketAsOf_EqualsTheFoldUpToThePoint(t *testing.T) {
	store, reads := testenv.CountingStore(t, "FROM events")
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	h := &history{t: t, ctx: context.Background(), svc: tickets.New(postgres.Tickets(store), tickets.WithClock(clock.Now)),
		clock: clock, rng: rand.New(rand.NewPCG(7, 16)), workspace: uuid.New()}
	policies := rules.New(postgres.Rules(store), rules.WithClock(clock.Now))
	if _, err := policies.CreateSLAPolicy(h.ctx, h.workspace, md, rules.SLAPolicyWrite{Name: "All",
		FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 90, WarnBeforeMinutes: 30}, Resolution: &helpdeskflow.SLATargetSpec{Minutes: 600, WarnBeforeMinutes: 60}}); err != nil {
		t.Fatal(err)
	}
	var err error
	h.ticket, err = h.svc.CreateTicket(h.ctx, h.workspace, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 330 {
		// Customer changes and merges are stamped by the wall clock, not
		// this one: the history keeps to the ticket's own commands.
		clock.Advance(time.Duration(h.rng.IntN(15)) * time.Minute)
		switch i % 3 {
		case 0:
			author := []string{helpdeskflow.AuthorAgent, helpdeskflow.AuthorCustomer}[h.rng.IntN(2)]
			h.ticket, err = h.svc.AddMessage(h.ctx, h.workspace, md, h.ticket.ID, nil, tickets.AddMessage{Body: fmt.Sprintf("message %d", i),
				AuthorType: author, Internal: author == helpdeskflow.AuthorAgent && h.rng.IntN(3) == 0}, true)
		case 1:
			h.ticket, err = h.svc.UpdateTicket(h.ctx, h.workspace, md, h.ticket.ID, nil, h.randomUpdate(i), true)
		default:
			err = h.svc.CheckSLA(h.ctx, h.workspace, h.ticket.ID)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	events, err := store.Load(h.ctx, h.workspace, h.ticket.ID)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := store.LoadTail(h.ctx, h.workspace, h.ticket.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tail.Snapshot == nil || len(events) < 2*tickets.SnapshotEvery {
		t.Fatalf("%d events, snapshot %v: the history proves too little", len(events), tail.Snapshot != nil)
	}
	check := func(asOf helpdeskflow.AsOf, want helpdeskflow.Ticket, wantAt time.Time) {
		t.Helper()
		reads.Reset()
		got, at, err := h.svc.GetTicketAsOf(h.ctx, h.workspace, h.ticket.ID, asOf, true)
		if err != nil {
			t.Fatalf("as of %+v: %v", asOf, err)
		}
		if got.Customer == nil || got.Customer.ID != want.CustomerID || !at.Equal(wantAt) {
			t.Fatalf("as of %+v: customer %v at %v, want %s at %v", asOf, got.Customer, at, want.CustomerID, wantAt)
		}
		got.Customer = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("as of %+v:\n got %+v\nwant %+v", asOf, got, want)
		}
		// The ticket's events up to the point, or, from the stream's
		// snapshot on, the snapshot and the events after it; and the
		// customer's one event.
		most := want.Version + 1
		if want.Version >= tail.Snapshot.Version {
			most = want.Version - tail.Snapshot.Version + 2
		}
		if reads.Rows() > most {
			t.Errorf("as of %+v read %d event rows, want at most %d", asOf, reads.Rows(), most)
		}
	}
	for v := range int64(len(events)) {
		want := foldOf(t, events[:v+1])
		check(helpdeskflow.AsOf{Version: v + 1}, want, events[v].OccurredAt)
		at := events[v].OccurredAt
		check(helpdeskflow.AsOf{Time: at}, foldOf(t, helpdeskflow.AsOf{Time: at}.Cut(events)), at)
	}

	_, _, err = h.svc.GetTicketAsOf(h.ctx, h.workspace, h.ticket.ID, helpdeskflow.AsOf{Version: int64(len(events)) + 1}, false)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Errorf("as of a version beyond the last: %v (code %q), want %q", err, got, want)
	}
	_, _, err = h.svc.GetTicketAsOf(h.ctx, h.workspace, h.ticket.ID, helpdeskflow.AsOf{Time: events[0].OccurredAt.Add(-time.Microsecond)}, false)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
		t.Errorf("as of before the ticket: %v (code %q), want %q", err, got, want)
	}
	_, _, err = h.svc.GetTicketAsOf(h.ctx, uuid.New(), h.ticket.ID, helpdeskflow.AsOf{Version: 1}, false)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
		t.Errorf("from another workspace: %v (code %q), want %q", err, got, want)
	}
}
