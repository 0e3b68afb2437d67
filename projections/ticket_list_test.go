package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// listWorld is a workspace's tickets as events, and their state folded in
// Go from the same events: the brute force the list is checked against.
type listWorld struct {
	*world
	r         *rand.Rand
	state     map[uuid.UUID]*helpdeskflow.Ticket
	customers map[uuid.UUID]bool // created
	merges    uint64
	pending   []helpdeskflow.Event
}

func newListWorld(seed uint64) *listWorld {
	return &listWorld{world: newWorld(), r: rand.New(rand.NewPCG(seed, 16)), state: map[uuid.UUID]*helpdeskflow.Ticket{},
		customers: map[uuid.UUID]bool{}}
}

// merge merges customer source into target as the command does: every
// ticket of source moves to target (ticket.customer_changed), then source
// is merged (customer.merged, its version 2).
func (lw *listWorld) merge(t *testing.T, source, target uuid.UUID, now time.Time) {
	for _, tk := range lw.state {
		if tk.CustomerID == source {
			lw.update(t, tk.ID, helpdeskflow.EventTicketCustomerChanged, helpdeskflow.TicketCustomerChanged{Old: source, New: target}, now)
		}
	}
	lw.pending = append(lw.pending, at(lw.event(helpdeskflow.StreamCustomer, source, 2, helpdeskflow.EventCustomerMerged, helpdeskflow.CustomerMerged{Into: target}), now))
	lw.merges++
}

// add folds e into the state and keeps it to be produced.
func (lw *listWorld) add(t *testing.T, e helpdeskflow.Event) {
	t.Helper()
	tk := lw.state[e.StreamID]
	if tk == nil {
		tk = &helpdeskflow.Ticket{}
		lw.state[e.StreamID] = tk
	}
	if err := helpdeskflow.ApplyTicket(tk, e); err != nil {
		t.Fatal(err)
	}
	lw.pending = append(lw.pending, e)
}

// at is the event e happening at time at (whole milliseconds, as stored).
func at(e helpdeskflow.Event, at time.Time) helpdeskflow.Event {
	e.OccurredAt = at.Truncate(time.Millisecond).UTC()
	return e
}

func (lw *listWorld) create(t *testing.T, customer uuid.UUID, createdAt time.Time, d helpdeskflow.TicketCreated) uuid.UUID {
	if !lw.customers[customer] {
		lw.customers[customer] = true
		lw.pending = append(lw.pending, at(lw.event(helpdeskflow.StreamCustomer, customer, 1, helpdeskflow.EventCustomerCreated,
			helpdeskflow.CustomerCreated{Email: customer.String() + "@example.com"}), createdAt))
	}
	id := uuid.New()
	lw.add(t, at(lw.ticketCreated(id, customer, d), createdAt))
	return id
}

// update adds a ticket.updated or ticket.customer_changed event to ticket
// id, one millisecond to a day after its last change, but not after now.
func (lw *listWorld) update(t *testing.T, id uuid.UUID, typ string, data any, now time.Time) {
	tk := lw.state[id]
	when := tk.UpdatedAt.Add(time.Millisecond + time.Duration(lw.r.Int64N(int64(24*time.Hour))))
	if when.After(now) {
		when = tk.UpdatedAt.Add(time.Millisecond)
	}
	lw.add(t, at(lw.event(helpdeskflow.StreamTicket, id, tk.Version+1, typ, data), when))
}

// versions is the sum of the tickets' latest versions.
func (lw *listWorld) versions() uint64 {
	var n uint64
	for _, tk := range lw.state {
		n += uint64(tk.Version)
	}
	return n
}

// waitListTables waits until both list tables hold every ticket of lw at
// its latest version (the views write them one after the other, within the
// projector's insert into tickets) and the customers table has its merges.
func waitListTables(t *testing.T, conn driver.Conn, lw *listWorld) {
	t.Helper()
	sum, merged := lw.versions(), lw.merges
	eventually(t, wait, "the list tables at the latest versions", func() bool {
		return queryUint(t, conn, "SELECT sum(version) FROM tickets_by_created FINAL") == sum &&
			queryUint(t, conn, "SELECT sum(v) FROM (SELECT ticket_id, max(version) AS v FROM tickets_by_customer GROUP BY ticket_id)") == sum &&
			queryUint(t, conn, "SELECT count() FROM customers FINAL WHERE merged_into != ''") >= merged
	})
}

// expected is the brute force: the ids of the tickets matching f, newest
// first by creation time, grouped by creation time (the order of ties is
// the database's).
func (lw *listWorld) expected(f projections.TicketFilter) [][]uuid.UUID {
	var match []*helpdeskflow.Ticket
	for _, tk := range lw.state {
		if (f.Status == "" || tk.Status == f.Status) && (f.Priority == "" || tk.Priority == f.Priority) &&
			(f.Tag == "" || slices.Contains(tk.Tags, f.Tag)) && (f.CustomerID == uuid.Nil || tk.CustomerID == f.CustomerID) &&
			(f.Team == "" || tk.Team != nil && *tk.Team == f.Team) &&
			(f.UpdatedAfter.IsZero() || tk.UpdatedAt.UnixMilli() > f.UpdatedAfter.UnixMilli()) {
			match = append(match, tk)
		}
	}
	return groupByCreated(match, func(tk *helpdeskflow.Ticket) (int64, uuid.UUID) { return tk.CreatedAt.UnixMilli(), tk.ID })
}

// groupByCreated sorts items newest first and groups the ids of equal
// creation times, each group sorted by id (so groups compare as sets).
func groupByCreated[T any](items []T, key func(T) (int64, uuid.UUID)) [][]uuid.UUID {
	byTime := map[int64][]uuid.UUID{}
	var times []int64
	for _, it := range items {
		ms, id := key(it)
		if _, ok := byTime[ms]; !ok {
			times = append(times, ms)
		}
		byTime[ms] = append(byTime[ms], id)
	}
	slices.Sort(times)
	slices.Reverse(times)
	groups := make([][]uuid.UUID, 0, len(times))
	for _, ms := range times {
		g := byTime[ms]
		slices.SortFunc(g, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		groups = append(groups, g)
	}
	return groups
}

// listAll pages through the list of f with page size limit and returns
// every ticket, checking the page sizes and that no ticket comes twice.
func listAll(t *testing.T, r *projections.TicketReader, ws uuid.UUID, f projections.TicketFilter) []helpdeskflow.Ticket {
	t.Helper()
	var all []helpdeskflow.Ticket
	seen := map[uuid.UUID]bool{}
	for pages := 1; ; pages++ {
		page, err := r.ListTickets(context.Background(), ws, f)
		if err != nil {
			t.Fatalf("ListTickets(%+v): %v", f, err)
		}
		for _, tk := range page.Tickets {
			if seen[tk.ID] {
				t.Fatalf("ListTickets(%+v): ticket %s on two pages or twice on one", f, tk.ID)
			}
			seen[tk.ID] = true
		}
		all = append(all, page.Tickets...)
		if page.NextCursor == "" {
			return all
		}
		if len(page.Tickets) != f.Limit {
			t.Fatalf("ListTickets(%+v): page %d has %d tickets and a next cursor", f, pages, len(page.Tickets))
		}
		if pages > 1000 {
			t.Fatalf("ListTickets(%+v): pagination does not end", f)
		}
		f.Cursor = page.NextCursor
	}
}

// TestTicketReader_ListTickets_MatchesBruteForce projects a workspace of
// tickets created over half a year (most in the last weeks, some at the
// same millisecond), updated, and moved between customers by merges,
// through Kafka and the projector, then pages through lists of random
// filters and page sizes: each equals the brute force over the same
// events, every ticket once, at its latest version.
func TestTicketReader_ListTickets_MatchesBruteForce(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	lw := newListWorld(uint64(time.Now().UnixNano()))
	now := time.Now().UTC()
	statuses := []string{helpdeskflow.StatusNew, helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusSolved}
	priorities := []string{helpdeskflow.PriorityLow, helpdeskflow.PriorityNormal, helpdeskflow.PriorityHigh}
	tags := []string{"refund", "vip", "bug", "rare"}
	teams := []string{"billing", "support"}
	customers := make([]uuid.UUID, 8)
	for i := range customers {
		customers[i] = uuid.New()
	}
	pick := func(vals []string) string { return vals[lw.r.IntN(len(vals))] }
	someTags := func() []string {
		var out []string
		for _, tg := range tags[:3] {
			if lw.r.IntN(3) == 0 {
				out = append(out, tg)
			}
		}
		return out
	}

	var ids []uuid.UUID
	var last time.Time
	for i := range 400 {
		var created time.Time
		switch {
		case i%25 == 24:
			created = last // the same millisecond as the ticket before
		case i%10 == 0:
			created = now.Add(-time.Duration(30+lw.r.IntN(150)) * 24 * time.Hour) // months ago
		default:
			created = now.Add(-time.Duration(lw.r.Int64N(int64(20 * 24 * time.Hour))))
		}
		last = created
		d := helpdeskflow.TicketCreated{Status: pick(statuses), Priority: pick(priorities), Tags: someTags()}
		if lw.r.IntN(4) > 0 {
			d.Team = ptr(pick(teams))
		}
		ids = append(ids, lw.create(t, customers[lw.r.IntN(len(customers))], created, d))
	}
	// A customer with three tickets spread over months, one tagged rarely.
	rare := uuid.New()
	for _, ago := range []int{3, 60, 170} {
		ids = append(ids, lw.create(t, rare, now.Add(-time.Duration(ago)*24*time.Hour), helpdeskflow.TicketCreated{Tags: []string{"rare"}}))
	}
	for _, id := range ids {
		if lw.r.IntN(5) < 2 {
			status := pick(statuses[1:])
			lw.update(t, id, helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
				Status: &helpdeskflow.Change[string]{Old: lw.state[id].Status, New: status},
				Tags:   &helpdeskflow.Change[[]string]{Old: lw.state[id].Tags, New: someTags()},
			}, now)
		}
	}
	produce(t, brokers, lw.pending...)
	lw.pending = nil
	startProjector(t, conn, brokers, "g-list-brute")
	waitProjected := func() {
		t.Helper()
		waitListTables(t, conn, lw)
	}
	waitProjected()

	// Merges: customers[0] into customers[1], customers[2] into the rare
	// one; projected after the rows they change, so the old versions sit
	// in other parts until ClickHouse merges them.
	lw.merge(t, customers[0], customers[1], now)
	lw.merge(t, customers[2], rare, now)
	for _, id := range ids {
		if lw.r.IntN(5) == 0 {
			lw.update(t, id, helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
				Status: &helpdeskflow.Change[string]{Old: lw.state[id].Status, New: pick(statuses[1:])},
			}, now)
		}
	}
	produce(t, brokers, lw.pending...)
	waitProjected()

	r := projections.NewTicketReader(conn)
	filters := []projections.TicketFilter{
		{},
		{CustomerID: customers[0]}, // merged away: nothing
		{CustomerID: customers[1]},
		{CustomerID: rare},
		{CustomerID: uuid.New()},
		{Tag: "rare"},
		{Tag: "none-has-it"},
		{UpdatedAfter: now.Add(-2 * time.Hour)},
		{UpdatedAfter: now.Add(-60 * 24 * time.Hour)},
	}
	for range 25 {
		var f projections.TicketFilter
		for f == (projections.TicketFilter{}) {
			if lw.r.IntN(3) == 0 {
				f.Status = pick(statuses)
			}
			if lw.r.IntN(3) == 0 {
				f.Priority = pick(priorities)
			}
			if lw.r.IntN(3) == 0 {
				f.Tag = pick(tags)
			}
			if lw.r.IntN(4) == 0 {
				f.CustomerID = customers[lw.r.IntN(len(customers))]
			}
			if lw.r.IntN(4) == 0 {
				f.Team = pick(teams)
			}
			if lw.r.IntN(4) == 0 {
				f.UpdatedAfter = now.Add(-time.Duration(lw.r.Int64N(int64(30 * 24 * time.Hour))))
			}
		}
		filters = append(filters, f)
	}
	for i, f := range filters {
		f.Limit = []int{1, 3, 7, 25, 100}[i%5]
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			got := listAll(t, r, lw.workspace, f)
			for _, tk := range got {
				if want := lw.state[tk.ID]; tk.Version != want.Version || tk.CustomerID != want.CustomerID || tk.Status != want.Status {
					t.Errorf("ticket %s listed at version %d (customer %s, %s), want version %d (customer %s, %s)",
						tk.ID, tk.Version, tk.CustomerID, tk.Status, want.Version, want.CustomerID, want.Status)
				}
			}
			gotGroups := groupByCreated(got, func(tk helpdeskflow.Ticket) (int64, uuid.UUID) { return tk.CreatedAt.UnixMilli(), tk.ID })
			if want := lw.expected(f); !slices.EqualFunc(gotGroups, want, slices.Equal) {
				t.Errorf("ListTickets(%+v) listed %d tickets in %d creation times, want %d in %d:\ngot  %v\nwant %v",
					f, len(got), len(gotGroups), countIDs(want), len(want), gotGroups, want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].CreatedAt.After(got[i-1].CreatedAt) {
					t.Errorf("ticket %d created after the one before it", i)
				}
			}
		})
	}
}

func countIDs(groups [][]uuid.UUID) int {
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	return n
}

// TestTicketReader_ListTickets_CustomerMerge projects a merge that moves a
// customer's tickets (ticket.customer_changed, a new version with the new
// customer): the list of the source customer is empty, that of the target
// has them at the new version, whichever part of the table they sit in.
func TestTicketReader_ListTickets_CustomerMerge(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	lw := newListWorld(7)
	now := time.Now().UTC()
	source, target := uuid.New(), uuid.New()
	var moved []uuid.UUID
	for _, ago := range []time.Duration{time.Hour, 40 * 24 * time.Hour, 100 * 24 * time.Hour} {
		moved = append(moved, lw.create(t, source, now.Add(-ago), helpdeskflow.TicketCreated{}))
	}
	own := lw.create(t, target, now.Add(-2*time.Hour), helpdeskflow.TicketCreated{})
	produce(t, brokers, lw.pending...)
	lw.pending = nil
	startProjector(t, conn, brokers, "g-list-merge")
	waitListTables(t, conn, lw)
	r := projections.NewTicketReader(conn)
	list := func(customer uuid.UUID) []helpdeskflow.Ticket {
		return listAll(t, r, lw.workspace, projections.TicketFilter{CustomerID: customer, Limit: 2})
	}
	if got := ids(list(source)); !slices.Equal(got, moved) {
		t.Fatalf("before the merge the source lists %v, want %v", got, moved)
	}

	lw.merge(t, source, target, now)
	produce(t, brokers, lw.pending...)
	waitListTables(t, conn, lw)
	if got := list(source); len(got) != 0 {
		t.Errorf("after the merge the source lists %v, want none", ids(got))
	}
	got := list(target)
	if want := []uuid.UUID{moved[0], own, moved[1], moved[2]}; !slices.Equal(ids(got), want) {
		t.Fatalf("after the merge the target lists %v, want %v", ids(got), want)
	}
	for _, tk := range got {
		if tk.ID != own && (tk.Version != 2 || tk.CustomerID != target) {
			t.Errorf("moved ticket %s listed at version %d with customer %s, want version 2 with the target", tk.ID, tk.Version, tk.CustomerID)
		}
	}
}

// TestTicketReader_ListTickets_StaleCandidates lists tickets whose older
// versions match and whose latest do not, with merges stopped so that every
// old version stays: 150 tickets moved from a customer merged into another,
// and 150 open tickets closed, all older than the windows. The rounds find only
// stale rows, and the final FINAL query over the rest finds the two tickets
// that still match.
func TestTicketReader_ListTickets_StaleCandidates(t *testing.T) {
	t.Parallel()
	conn, name := newDB(t)
	ctx := context.Background()
	for _, table := range []string{"tickets_by_created", "tickets_by_customer"} {
		if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+name+"."+table); err != nil {
			t.Fatal(err)
		}
	}
	ws, source, target := uuid.New(), uuid.New(), uuid.New()
	nowMs := time.Now().UnixMilli()
	const day = int64(24 * time.Hour / time.Millisecond)
	var before, after []ticketFixture
	for i := range 150 {
		at := nowMs - 10*day - int64(i)*day/10
		tk := ticketFixture{uuid.New(), 1, "open", "normal", nil, source, "", at, at}
		before = append(before, tk)
		tk.version, tk.status, tk.customer = 2, "closed", target
		after = append(after, tk)
	}
	kept := []ticketFixture{
		{uuid.New(), 1, "open", "normal", nil, source, "", nowMs - 200*day, nowMs - 200*day},
		{uuid.New(), 1, "open", "normal", nil, source, "", nowMs - 300*day, nowMs - 300*day},
	}
	insertTickets(t, conn, ws, append(before, kept...)...)
	insertTickets(t, conn, ws, after...)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO customers (workspace_id, customer_id, version, email, name, tags, custom_fields, created_at_ms, updated_at_ms, merged_into)")
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Append(ws, source, uint64(2), "a@example.com", "", []string{}, "{}", nowMs, nowMs, target.String()); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"tickets_by_created", "tickets_by_customer"} {
		if got := queryUint(t, conn, "SELECT count() FROM "+table+" WHERE customer_id = toUUID(?)", source.String()); got != 152 {
			t.Fatalf("%d rows of %s name the source customer, want 152 (merges stopped)", got, table)
		}
	}

	r := projections.NewTicketReader(conn)
	for _, f := range []projections.TicketFilter{{CustomerID: source, Limit: 1}, {Status: "open", Limit: 1}} {
		if got, want := ids(listAll(t, r, ws, f)), []uuid.UUID{kept[0].id, kept[1].id}; !slices.Equal(got, want) {
			t.Errorf("ListTickets(%+v) lists %v, want %v", f, got, want)
		}
	}
}
