package tickets_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// history drives a random-ish but reproducible life of one ticket and its
// customers through the commands: messages of both authors and internal
// notes, every kind of update, SLA policies applied, re-targeted, paused,
// warned, breached and fulfilled, customer updates with every kind of
// field, and merges that move the ticket to another customer.
type history struct {
	t         *testing.T
	ctx       context.Context
	svc       *tickets.Service
	clock     *testenv.Clock
	rng       *rand.Rand
	workspace uuid.UUID
	ticket    helpdeskflow.Ticket
	customers []uuid.UUID // every customer the ticket had, the current one last
	// fresh, when set, is a service without a read cache: after each step
	// the ticket read through svc (cached) must equal its fresh fold.
	fresh *tickets.Service
}

// tricky are values JSON and the fold must keep as they are.
var tricky = []any{"plain", "a < b & c", "😀 \u2028 \"q\" \\", 1e21, -0.25, 42.0, true, false}

func (h *history) pick(values []any) any { return values[h.rng.IntN(len(values))] }

func (h *history) step(i int) {
	h.clock.Advance(time.Duration(h.rng.IntN(15)) * time.Minute)
	var err error
	switch op := h.rng.IntN(40); {
	case op < 10:
		author := []string{helpdeskflow.AuthorAgent, helpdeskflow.AuthorCustomer}[h.rng.IntN(2)]
		msg := tickets.AddMessage{Body: fmt.Sprintf("<p>message %d from %s <b>&amp;</b></p>", i, author), AuthorType: author,
			Internal: author == helpdeskflow.AuthorAgent && h.rng.IntN(3) == 0}
		h.ticket, err = h.svc.AddMessage(h.ctx, h.workspace, md, h.ticket.ID, nil, msg, true)
	case op < 22:
		h.ticket, err = h.svc.UpdateTicket(h.ctx, h.workspace, md, h.ticket.ID, nil, h.randomUpdate(i), true)
	case op < 32:
		err = h.svc.CheckSLA(h.ctx, h.workspace, h.ticket.ID)
	case op < 39:
		_, err = h.svc.UpdateCustomer(h.ctx, h.workspace, md, h.customers[len(h.customers)-1], nil, h.randomCustomerUpdate(i))
	default:
		err = h.mergeCustomer(i)
	}
	if err != nil {
		h.t.Fatalf("step %d: %v", i, err)
	}
	if h.fresh != nil {
		include := i%2 == 0
		got, err := h.svc.GetTicket(h.ctx, h.workspace, h.ticket.ID, include)
		if err != nil {
			h.t.Fatalf("step %d: %v", i, err)
		}
		want, err := h.fresh.GetTicket(h.ctx, h.workspace, h.ticket.ID, include)
		if err != nil {
			h.t.Fatalf("step %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			h.t.Fatalf("step %d: the cached read differs from a fresh fold:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func (h *history) randomUpdate(i int) tickets.UpdateTicket {
	var u tickets.UpdateTicket
	if allowed := ticketNext[h.ticket.Status]; h.rng.IntN(2) == 0 && len(allowed) > 0 {
		u.Status = ptr(allowed[h.rng.IntN(len(allowed))])
	}
	if h.rng.IntN(3) == 0 {
		u.Priority = ptr([]string{"low", "normal", "high", "urgent"}[h.rng.IntN(4)])
	}
	if h.rng.IntN(3) == 0 {
		u.TagsAdd = []string{fmt.Sprintf("t%d", h.rng.IntN(30))}
	}
	if h.rng.IntN(4) == 0 && len(h.ticket.Tags) > 0 && !slices.Contains(u.TagsAdd, h.ticket.Tags[0]) {
		u.TagsRemove = []string{h.ticket.Tags[0]}
	}
	if h.rng.IntN(2) == 0 {
		u.CustomFields = map[string]any{fmt.Sprintf("f%d", h.rng.IntN(8)): h.pick(append(tricky, nil))}
	}
	switch h.rng.IntN(4) {
	case 0:
		u.AssigneeID = commands.Nullable[string]{Set: true, Value: ptr(fmt.Sprintf("agent-%d", h.rng.IntN(3)))}
	case 1:
		u.Team = commands.Nullable[string]{Set: true}
	case 2:
		u.Team = commands.Nullable[string]{Set: true, Value: ptr("billing")}
	}
	if h.rng.IntN(10) == 0 {
		u.Subject = ptr(fmt.Sprintf("subject %d", i))
	}
	return u
}

// ticketNext lists the statuses the history moves a ticket to (never
// closed, which would end the history).
var ticketNext = map[string][]string{
	helpdeskflow.StatusNew:     {helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved},
	helpdeskflow.StatusOpen:    {helpdeskflow.StatusPending, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved},
	helpdeskflow.StatusPending: {helpdeskflow.StatusOpen, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved},
	helpdeskflow.StatusOnHold:  {helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusSolved},
	helpdeskflow.StatusSolved:  {helpdeskflow.StatusOpen},
}

func (h *history) randomCustomerUpdate(i int) tickets.UpdateCustomer {
	u := tickets.UpdateCustomer{
		Tags:         []string{fmt.Sprintf("c%d", h.rng.IntN(40))},
		CustomFields: map[string]any{fmt.Sprintf("cf%d", h.rng.IntN(6)): h.pick(append(tricky, nil))},
		Metadata: map[string]any{fmt.Sprintf("m%d", h.rng.IntN(6)): h.pick([]any{nil, "x",
			map[string]any{"list": []any{1.0, "two", nil, map[string]any{"deep": true}}, "empty": map[string]any{}}})},
	}
	if h.rng.IntN(3) == 0 {
		u.LinkedProfiles = []helpdeskflow.LinkedProfile{{Provider: "shopify", ExternalID: fmt.Sprintf("%d-%d", len(h.customers), h.rng.IntN(3)),
			URL: "https://shop.example/c", Data: map[string]any{"orders": float64(i), "tags": []any{"a", "b"}}}}
	}
	if h.rng.IntN(5) == 0 {
		u.Name = ptr(fmt.Sprintf("Name %d 😀", i))
	}
	return u
}

// mergeCustomer merges the ticket's customer into a new one, which
// moves the ticket.
func (h *history) mergeCustomer(i int) error {
	c, _, err := h.svc.UpsertCustomer(h.ctx, h.workspace, md, tickets.UpsertCustomer{Email: fmt.Sprintf("c%d@example.com", i),
		Tags: []string{"merged"}, Metadata: map[string]any{"m0": "target wins"}})
	if err != nil {
		return err
	}
	if _, err := h.svc.MergeCustomers(h.ctx, h.workspace, md, c.ID, h.customers[len(h.customers)-1]); err != nil {
		return err
	}
	h.customers = append(h.customers, c.ID)
	h.ticket, err = h.svc.GetTicket(h.ctx, h.workspace, h.ticket.ID, true)
	return err
}

// checkStream checks stream id both ways: every prefix of its events
// folds to a state that survives encoding and decoding unchanged; the
// stored snapshot (there must be one once the stream has SnapshotEvery
// events) is exactly the fold of the events up to its version; and it
// with the events after it folds to exactly what all events fold to.
func checkStream[S any](t *testing.T, store *eventstore.Store, workspace, id uuid.UUID, apply func(*S, helpdeskflow.Event) error) S {
	t.Helper()
	ctx := context.Background()
	events, err := store.Load(ctx, workspace, id)
	if err != nil {
		t.Fatal(err)
	}
	var full S
	prefixes := map[int64]S{}
	for _, e := range events {
		if err := apply(&full, e); err != nil {
			t.Fatal(err)
		}
		b, err := helpdeskflow.EncodeSnapshot(full)
		if err != nil {
			t.Fatal(err)
		}
		var back S
		if err := helpdeskflow.DecodeSnapshot(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, full) {
			t.Fatalf("%s at version %d does not survive its snapshot encoding:\n got %+v\nwant %+v", events[0].StreamType, e.Version, back, full)
		}
		prefixes[e.Version] = back
	}
	tail, err := store.LoadTail(ctx, workspace, id)
	if err != nil {
		t.Fatal(err)
	}
	if tail.Snapshot == nil {
		if len(events) >= tickets.SnapshotEvery {
			t.Fatalf("%s %s has %d events and no snapshot", events[0].StreamType, id, len(events))
		}
		return full
	}
	var state S
	if err := helpdeskflow.DecodeSnapshot(tail.Snapshot.State, &state); err != nil {
		t.Fatal(err)
	}
	if want := prefixes[tail.Snapshot.Version]; !reflect.DeepEqual(state, want) {
		t.Fatalf("%s snapshot at version %d differs from the fold of its events:\n got %+v\nwant %+v", events[0].StreamType, tail.Snapshot.Version, state, want)
	}
	for _, e := range tail.Events {
		if err := apply(&state, e); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(state, full) {
		t.Fatalf("%s: snapshot + tail folds to\n %+v\nwant %+v", events[0].StreamType, state, full)
	}
	if n := len(tail.Events); n >= tickets.SnapshotEvery {
		t.Errorf("%s: %d events after the snapshot at version %d, want fewer than %d", events[0].StreamType, n, tail.Snapshot.Version, tickets.SnapshotEvery)
	}
	t.Logf("%s %s: %d events, snapshot at version %d", events[0].StreamType, id, len(events), tail.Snapshot.Version)
	return full
}

// TestSnapshots_FoldRoundTrips folds long histories both ways, all events
// and snapshot + tail, and compares them deeply: SLA clocks, messages,
// tags, custom fields, metadata, linked profiles, merged_into and all. The
// reads (GetTicket, GetCustomer) load from snapshots and answer the same.
//
// With a read cache, every step is read back through it and compared
// with a fresh fold, and the commands decide on the cached state when it
// is current (see lockTicket): the snapshots come out the same.
func TestSnapshots_FoldRoundTrips(t *testing.T) {
	t.Run("without a cache", func(t *testing.T) { testFoldRoundTrips(t, false) })
	t.Run("with a read cache", func(t *testing.T) { testFoldRoundTrips(t, true) })
}

func testFoldRoundTrips(t *testing.T, cached bool) {
	store := testenv.Store(t)
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	h := &history{t: t, ctx: context.Background(), svc: tickets.New(postgres.Tickets(store), tickets.WithClock(clock.Now)),
		clock: clock, rng: rand.New(rand.NewPCG(13, 2)), workspace: uuid.New()}
	if cached {
		h.fresh = h.svc
		h.svc = tickets.New(postgres.Tickets(store), tickets.WithClock(clock.Now), tickets.WithReadCache(0))
	}
	policies := rules.New(postgres.Rules(store), rules.WithClock(clock.Now))
	policy, err := policies.CreateSLAPolicy(h.ctx, h.workspace, md, rules.SLAPolicyWrite{Name: "All",
		FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 90, WarnBeforeMinutes: 30}, Resolution: &helpdeskflow.SLATargetSpec{Minutes: 600, WarnBeforeMinutes: 60}})
	if err != nil {
		t.Fatal(err)
	}
	h.ticket, err = h.svc.CreateTicket(h.ctx, h.workspace, md, tickets.CreateTicket{Subject: "Long story", Customer: tickets.CustomerRef{Email: "ada@example.com", Name: "Ada"},
		Message: tickets.NewTicketMessage{Body: "It began."}, Tags: []string{"start"}, CustomFields: map[string]any{"f0": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	h.customers = []uuid.UUID{h.ticket.CustomerID}
	for i := range 420 {
		if i == 200 {
			// A new policy version re-targets the clocks.
			if _, err := policies.ReplaceSLAPolicy(h.ctx, h.workspace, md, policy.ID, nil, rules.SLAPolicyWrite{Name: "All",
				FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 45}, Resolution: &helpdeskflow.SLATargetSpec{Minutes: 300, WarnBeforeMinutes: 20}}); err != nil {
				t.Fatal(err)
			}
		}
		h.step(i)
	}
	// One customer lives long enough for snapshots of its own.
	for i := range 230 {
		if _, err := h.svc.UpdateCustomer(h.ctx, h.workspace, md, h.customers[len(h.customers)-1], nil, h.randomCustomerUpdate(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.mergeCustomer(2000); err != nil {
		t.Fatal(err)
	}

	if st := h.svc.ReadCacheStats(); cached && st.CommandHits < 100 {
		t.Errorf("%d commands decided on the cached ticket, want most of them (%+v)", st.CommandHits, st)
	}
	ticket := checkStream(t, store, h.workspace, h.ticket.ID, helpdeskflow.ApplyTicket)
	events, err := store.Load(h.ctx, h.workspace, h.ticket.ID)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, e := range events {
		types[e.Type]++
	}
	for _, typ := range []string{helpdeskflow.EventTicketMessageAdded, helpdeskflow.EventTicketUpdated, helpdeskflow.EventTicketCustomerChanged,
		helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached} {
		if types[typ] == 0 {
			t.Errorf("the history has no %s event: it proves too little (%v)", typ, types)
		}
	}
	t.Logf("ticket events by type: %v; %d customers", types, len(h.customers))
	if types[helpdeskflow.EventTicketSLAPolicyApplied] < 2 || ticket.SLA == nil {
		t.Errorf("the history applied SLA policies %d times and ends with SLA %v; want a re-targeted clock", types[helpdeskflow.EventTicketSLAPolicyApplied], ticket.SLA)
	}
	got, err := h.svc.GetTicket(h.ctx, h.workspace, h.ticket.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	got.Customer = nil
	if !reflect.DeepEqual(got, ticket) {
		t.Errorf("GetTicket answers\n %+v\nwant %+v", got, ticket)
	}
	for _, id := range h.customers {
		c := checkStream(t, store, h.workspace, id, helpdeskflow.ApplyCustomer)
		if id != h.customers[len(h.customers)-1] {
			if c.MergedInto == nil {
				t.Errorf("customer %s: merged_into not set", id)
			}
			continue
		}
		got, err := h.svc.GetCustomer(h.ctx, h.workspace, id)
		if err != nil {
			t.Fatal(err)
		}
		got.TicketIDs = nil
		if !reflect.DeepEqual(got, c) {
			t.Errorf("GetCustomer answers\n %+v\nwant %+v", got, c)
		}
	}
}

// TestSnapshots_CommandReadsOnlyTheTail counts the event rows Postgres
// returns while commands run on long streams: a command (and a read)
// loads a snapshot and fewer than SnapshotEvery events after it, not the
// whole stream; creating a ticket for a customer with a long history
// does not load that history either.
func TestSnapshots_CommandReadsOnlyTheTail(t *testing.T) {
	store, reads := testenv.CountingStore(t, "FROM events")
	svc := tickets.New(postgres.Tickets(store))
	ctx := context.Background()
	workspace := uuid.New()
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	const long = 350
	priorities := []string{"low", "high"}
	for i := range long {
		if _, err := svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{Priority: &priorities[i%2]}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.UpdateCustomer(ctx, workspace, md, tk.CustomerID, nil, tickets.UpdateCustomer{Tags: []string{fmt.Sprintf("t%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// At most a snapshot row and its tail for the stream a command works
	// on, and for the other stream it reads (the ticket's customer).
	const most = 2 * 100
	for name, run := range map[string]func() error{
		"UpdateTicket": func() error {
			_, err := svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{Subject: ptr("again")}, true)
			return err
		},
		"AddMessage": func() error {
			_, err := svc.AddMessage(ctx, workspace, md, tk.ID, nil, tickets.AddMessage{Body: "more"}, true)
			return err
		},
		"GetTicket": func() error {
			_, err := svc.GetTicket(ctx, workspace, tk.ID, true)
			return err
		},
		"UpdateCustomer": func() error {
			_, err := svc.UpdateCustomer(ctx, workspace, md, tk.CustomerID, nil, tickets.UpdateCustomer{Name: ptr("Ada L.")})
			return err
		},
		"UpsertCustomer": func() error {
			_, _, err := svc.UpsertCustomer(ctx, workspace, md, tickets.UpsertCustomer{Email: validTicket().Customer.Email, Tags: []string{"upserted"}})
			return err
		},
		"CreateTicket for the customer": func() error {
			_, err := svc.CreateTicket(ctx, workspace, md, validTicket())
			return err
		},
	} {
		reads.Reset()
		if err := run(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := reads.Rows(); n > most {
			t.Errorf("%s read %d event rows for streams of %d events; want at most %d (snapshots and their tails)", name, n, long, most)
		}
	}
}

// TestSnapshots_UnknownFormatIgnored: a snapshot of another format (written
// by another version of the code) or one that does not decode is
// ignored, and the whole stream is folded instead; the next command writes
// a snapshot of the current format.
func TestSnapshots_UnknownFormatIgnored(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	ctx := context.Background()
	workspace := uuid.New()
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if tk, err = svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{Subject: ptr(fmt.Sprintf("subject %d", i))}, true); err != nil {
			t.Fatal(err)
		}
	}
	put := func(version int64, format int, state string) {
		t.Helper()
		err := store.Transact(ctx, func(tx *eventstore.Tx) error {
			tx.PutSnapshot(ctx, helpdeskflow.Snapshot{StreamID: tk.ID, WorkspaceID: workspace, StreamType: helpdeskflow.StreamTicket,
				Version: version, Format: format, State: []byte(state)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name    string
		format  int
		state   string
		current bool // LoadTail returns it (it has the current format)
	}{
		{"newer format", helpdeskflow.SnapshotFormat + 1, `{"Subject": "from a format this code does not know", "Version": 151}`, false},
		{"older format", helpdeskflow.SnapshotFormat - 1, `{"Subject": "from an old format", "Version": 151}`, false},
		{"does not decode", helpdeskflow.SnapshotFormat, `{"Subject": 5}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.current {
				// Only a snapshot of another format (or a newer one) is
				// replaced.
				put(tk.Version, helpdeskflow.SnapshotFormat+1, "{}")
			}
			put(tk.Version, c.format, c.state)
			tail, err := store.LoadTail(ctx, workspace, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := tail.Snapshot != nil; got != c.current {
				t.Fatalf("LoadTail returned a snapshot: %v, want %v", got, c.current)
			}
			got, err := svc.GetTicket(ctx, workspace, tk.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != tk.Subject || got.Version != tk.Version || len(got.Messages) != 1 {
				t.Errorf("GetTicket = subject %q, version %d, %d messages; want %q, %d, 1", got.Subject, got.Version, len(got.Messages), tk.Subject, tk.Version)
			}
			// A command folds everything, and so writes a good snapshot.
			if tk, err = svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{Subject: ptr(c.name)}, true); err != nil {
				t.Fatal(err)
			}
			if tk.Subject != c.name {
				t.Errorf("after an update, subject %q, want %q", tk.Subject, c.name)
			}
			tail, err = store.LoadTail(ctx, workspace, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tail.Snapshot == nil || tail.Snapshot.Version != tk.Version {
				t.Errorf("after the update the snapshot is %+v, want one at version %d", tail.Snapshot, tk.Version)
			}
		})
	}
}
