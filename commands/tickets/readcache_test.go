package tickets_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// cacheSetup is a database with two services on it, each on a pool of its
// own like two API processes: cached (with the read cache) and writer
// (without one, so its reads are fresh folds to compare with).
type cacheSetup struct {
	ctx       context.Context
	cached    *tickets.Service
	writer    *tickets.Service
	workspace uuid.UUID
}

func newCacheSetup(t *testing.T, maxBytes int64, wrap func(tickets.Store) tickets.Store) cacheSetup {
	db := testenv.Postgres(t)
	store := postgres.Tickets(testenv.StoreOn(t, db))
	if wrap != nil {
		store = wrap(store)
	}
	return cacheSetup{ctx: context.Background(), cached: tickets.New(store, tickets.WithReadCache(maxBytes)),
		writer: tickets.New(postgres.Tickets(testenv.StoreOn(t, db))), workspace: uuid.New()}
}

func (s cacheSetup) create(t *testing.T, email string, messages int) helpdeskflow.Ticket {
	t.Helper()
	tk, err := s.writer.CreateTicket(s.ctx, s.workspace, md, tickets.CreateTicket{Subject: "Cached", Customer: tickets.CustomerRef{Email: email, Name: "Ada"},
		Message: tickets.NewTicketMessage{Body: "<p>first</p>"}, Tags: []string{"a"}, CustomFields: map[string]any{"sla": nil, "k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < messages; i++ {
		if tk, err = s.writer.AddMessage(s.ctx, s.workspace, md, tk.ID, nil, tickets.AddMessage{Body: fmt.Sprintf("<p>reply %d %s</p>", i, strings.Repeat("x", 200)),
			AuthorType: helpdeskflow.AuthorAgent, Internal: i%3 == 0}, true); err != nil {
			t.Fatal(err)
		}
	}
	return tk
}

// read reads ticket id through the cache and checks the answer equals a
// fresh fold of the writer's.
func (s cacheSetup) read(t *testing.T, id uuid.UUID, include bool) helpdeskflow.Ticket {
	t.Helper()
	got, err := s.cached.GetTicket(s.ctx, s.workspace, id, include)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.writer.GetTicket(s.ctx, s.workspace, id, include)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cached read of %s (include_internal=%v) differs from a fresh fold:\n got %+v\nwant %+v", id, include, got, want)
	}
	return got
}

// TestReadCache_StaleEntryRepairedByDeltaLoad: a write through another
// service makes the cached ticket and customer stale; the next read folds
// the events after their versions (a delta load each, no fresh load) and
// answers what a fresh fold answers.
func TestReadCache_StaleEntryRepairedByDeltaLoad(t *testing.T) {
	s := newCacheSetup(t, 0, nil)
	tk := s.create(t, "ada@example.com", 6)
	s.read(t, tk.ID, true)
	s.read(t, tk.ID, true)
	before := s.cached.ReadCacheStats()
	if before.Misses != 2 || before.Hits != 2 {
		t.Fatalf("after two reads: %+v, want 2 misses (ticket, customer) then 2 hits", before)
	}
	if _, err := s.writer.UpdateTicket(s.ctx, s.workspace, md, tk.ID, nil, tickets.UpdateTicket{Status: ptr("pending"), TagsAdd: []string{"b"}}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.AddMessage(s.ctx, s.workspace, md, tk.ID, nil, tickets.AddMessage{Body: "<p>new</p>", AuthorType: helpdeskflow.AuthorCustomer}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.UpdateCustomer(s.ctx, s.workspace, md, tk.CustomerID, nil, tickets.UpdateCustomer{Name: ptr("Ada L.")}); err != nil {
		t.Fatal(err)
	}
	got := s.read(t, tk.ID, true)
	if got.Status != "pending" || got.Customer.Name != "Ada L." || got.Messages[len(got.Messages)-1].Body != "<p>new</p>" {
		t.Fatalf("the read missed acknowledged writes: status %s, customer %q, last message %q", got.Status, got.Customer.Name, got.Messages[len(got.Messages)-1].Body)
	}
	after := s.cached.ReadCacheStats()
	if after.DeltaLoads-before.DeltaLoads != 2 || after.Misses != before.Misses {
		t.Fatalf("stats %+v after %+v: want 2 delta loads (ticket, customer) and no fresh load", after, before)
	}
	s.read(t, tk.ID, false)
	if h := s.cached.ReadCacheStats().Hits; h != after.Hits+2 {
		t.Fatalf("hits = %d, want %d: the repaired entries are kept", h, after.Hits+2)
	}
}

// TestReadCache_IncludeInternal: the cache keeps the full state; each read
// shows internal notes only when asked to, and the encoding kept per
// include_internal is reused only while the ticket and customer stay as
// they are.
func TestReadCache_IncludeInternal(t *testing.T) {
	s := newCacheSetup(t, 0, nil)
	tk := s.create(t, "ada@example.com", 7)
	internal := func(tk helpdeskflow.Ticket) int {
		n := 0
		for _, m := range tk.Messages {
			if m.Internal {
				n++
			}
		}
		return n
	}
	if got := internal(s.read(t, tk.ID, true)); got != 2 {
		t.Fatalf("include_internal=true shows %d internal notes, want 2", got)
	}
	if got := s.read(t, tk.ID, false); internal(got) != 0 || len(got.Messages) != 5 {
		t.Fatalf("include_internal=false shows %d messages, %d internal; want 5, 0", len(got.Messages), internal(got))
	}

	encodes := 0
	encode := func(tk helpdeskflow.Ticket) []byte {
		encodes++
		return []byte(fmt.Sprintf("%d messages, version %d, customer %s v%d", len(tk.Messages), tk.Version, tk.Customer.Name, tk.Customer.Version))
	}
	body := func(include bool) string {
		r, err := s.cached.GetTicketRead(s.ctx, s.workspace, tk.ID, include)
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Encoded(encode))
	}
	pub, full := body(false), body(true)
	if pub == full || encodes != 2 {
		t.Fatalf("encodings %q and %q after %d encodes: want one of each", pub, full, encodes)
	}
	if body(false) != pub || body(true) != full || encodes != 2 {
		t.Fatalf("unchanged ticket encoded again (%d encodes)", encodes)
	}
	if _, err := s.writer.UpdateCustomer(s.ctx, s.workspace, md, tk.CustomerID, nil, tickets.UpdateCustomer{Name: ptr("Grace")}); err != nil {
		t.Fatal(err)
	}
	if got := body(false); encodes != 3 || !strings.Contains(got, "Grace") {
		t.Fatalf("after the customer changed: %q (%d encodes), want a new encoding with Grace", got, encodes)
	}
	if _, err := s.writer.AddMessage(s.ctx, s.workspace, md, tk.ID, nil, tickets.AddMessage{Body: "<p>note</p>", AuthorType: helpdeskflow.AuthorAgent, Internal: true}, true); err != nil {
		t.Fatal(err)
	}
	if got := body(true); encodes != 4 || !strings.HasPrefix(got, "8 messages") {
		t.Fatalf("after a new internal note: %q (%d encodes), want 8 messages", got, encodes)
	}
	if got := body(false); got != "5 messages, version 8, customer Grace v2" {
		t.Fatalf("public encoding %q", got)
	}
}

// TestReadCache_Merge: merging the cached ticket's customer into another
// moves the ticket (a newer ticket version): the next read shows the
// target customer with what the merge gave it, as a fresh fold does; the
// merged customer's own cached entry is repaired too.
func TestReadCache_Merge(t *testing.T) {
	s := newCacheSetup(t, 0, nil)
	tk := s.create(t, "ada@example.com", 2)
	other := s.create(t, "grace@example.com", 1)
	s.read(t, tk.ID, false)
	s.read(t, other.ID, false)
	if _, err := s.writer.MergeCustomers(s.ctx, s.workspace, md, other.CustomerID, tk.CustomerID); err != nil {
		t.Fatal(err)
	}
	got := s.read(t, tk.ID, false)
	if got.CustomerID != other.CustomerID || got.Customer.ID != other.CustomerID || got.Customer.MergedInto != nil {
		t.Fatalf("after the merge the ticket shows customer %s (%+v), want the target %s", got.CustomerID, got.Customer, other.CustomerID)
	}
	s.read(t, other.ID, false)
	// The merged customer's entry, read on its own, is repaired as well.
	c, err := s.cached.GetTicketRead(s.ctx, s.workspace, tk.ID, true)
	if err != nil || c.Ticket.Customer.ID != other.CustomerID {
		t.Fatalf("read again: %+v, %v", c.Ticket.Customer, err)
	}
}

// TestReadCache_ByteBound: the entries stay within the bound, the least
// recently used go first and are counted, and every read is still right.
func TestReadCache_ByteBound(t *testing.T) {
	const bound = 40 << 10
	s := newCacheSetup(t, bound, nil)
	var ids []uuid.UUID
	for i := range 12 {
		ids = append(ids, s.create(t, fmt.Sprintf("c%d@example.com", i), 12).ID)
	}
	for round := range 2 {
		for _, id := range ids {
			s.read(t, id, round == 1)
			if st := s.cached.ReadCacheStats(); st.Bytes > bound {
				t.Fatalf("the cache holds %d bytes, over its bound of %d", st.Bytes, bound)
			}
		}
	}
	st := s.cached.ReadCacheStats()
	if st.Evictions == 0 || st.Entries == 0 || st.Entries >= 2*len(ids) {
		t.Fatalf("stats %+v: want evictions, and fewer entries than the %d streams read", st, 2*len(ids))
	}
	// The most recently read ticket is still there: its read is a hit.
	hits := st.Hits
	s.read(t, ids[len(ids)-1], true)
	if got := s.cached.ReadCacheStats().Hits; got != hits+2 {
		t.Fatalf("hits = %d, want %d: the most recent entries stay", got, hits+2)
	}
}

// gatedStore holds the first version check after its statement ran, until
// release is closed, and records every check's ids.
type gatedStore struct {
	tickets.Store
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int64
	mu      sync.Mutex
	ids     [][]uuid.UUID
}

func (g *gatedStore) StreamVersions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	v, err := g.Store.StreamVersions(ctx, ids)
	g.mu.Lock()
	g.ids = append(g.ids, slices.Clone(ids))
	g.mu.Unlock()
	if g.calls.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return v, err
}

// TestReadCache_SharedVersionCheck: reads that arrive while a version
// check is in flight do not use it (it may predate a write acknowledged
// before they arrived): they wait for the next check, which all of them
// share, one statement for several reads.
func TestReadCache_SharedVersionCheck(t *testing.T) {
	g := &gatedStore{entered: make(chan struct{}), release: make(chan struct{})}
	s := newCacheSetup(t, 0, func(st tickets.Store) tickets.Store { g.Store = st; return g })
	var ids []uuid.UUID
	for i := range 5 {
		ids = append(ids, s.create(t, fmt.Sprintf("c%d@example.com", i), 1).ID)
		s.read(t, ids[i], false) // cached, with no check: both streams were missing
	}
	if n := g.calls.Load(); n != 0 {
		t.Fatalf("%d version checks while warming up, want 0", n)
	}

	first := make(chan error, 1)
	go func() {
		_, err := s.cached.GetTicket(s.ctx, s.workspace, ids[0], false)
		first <- err
	}()
	<-g.entered // the first check has read the versions and is in flight

	// A write acknowledged while that check is in flight...
	if _, err := s.writer.UpdateTicket(s.ctx, s.workspace, md, ids[1], nil, tickets.UpdateTicket{Subject: ptr("Changed")}, false); err != nil {
		t.Fatal(err)
	}
	// ...and reads that arrive after it.
	var wg sync.WaitGroup
	results := make([]helpdeskflow.Ticket, len(ids))
	for i := 1; i < len(ids); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if results[i], err = s.cached.GetTicket(s.ctx, s.workspace, ids[i], false); err != nil {
				t.Error(err)
			}
		}()
	}
	// They wait for a check not sent yet (a cache that let them use the
	// one in flight would never get there: give up after a while).
	for deadline := time.Now().Add(30 * time.Second); s.cached.ReadCacheStats().WaitingReads != len(ids)-1; {
		if time.Now().After(deadline) {
			close(g.release)
			t.Fatalf("%d reads wait for the next version check, want %d", s.cached.ReadCacheStats().WaitingReads, len(ids)-1)
		}
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := results[1].Subject; got != "Changed" {
		t.Fatalf("a read that arrived after the write was acknowledged shows subject %q", got)
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d version checks for 5 reads (one in flight, four arriving meanwhile), want 2", n)
	}
	g.mu.Lock()
	second := g.ids[1]
	g.mu.Unlock()
	for _, id := range ids[1:] {
		if !slices.Contains(second, id) {
			t.Fatalf("the second check %v lacks ticket %s", second, id)
		}
	}
	if slices.Contains(second, ids[0]) {
		t.Fatalf("the second check %v has the first read's ticket", second)
	}
}

// TestReadCache_CommandsOnCachedState: a command decides on the cached
// ticket only when it is at the version the command locked; when another
// process wrote since, the command loads the stream, so its answer (and
// what it stores) keeps the other write.
func TestReadCache_CommandsOnCachedState(t *testing.T) {
	s := newCacheSetup(t, 0, nil)
	tk := s.create(t, "ada@example.com", 3)
	s.read(t, tk.ID, true)
	if _, err := s.cached.UpdateTicket(s.ctx, s.workspace, md, tk.ID, nil, tickets.UpdateTicket{TagsAdd: []string{"current"}}, true); err != nil {
		t.Fatal(err)
	}
	if n := s.cached.ReadCacheStats().CommandHits; n != 1 {
		t.Fatalf("%d commands decided on the cached ticket, want 1", n)
	}
	// The cache now holds the version before that update: stale.
	if _, err := s.writer.UpdateTicket(s.ctx, s.workspace, md, tk.ID, nil, tickets.UpdateTicket{TagsAdd: []string{"other"}}, true); err != nil {
		t.Fatal(err)
	}
	got, err := s.cached.AddMessage(s.ctx, s.workspace, md, tk.ID, nil, tickets.AddMessage{Body: "<p>after</p>", AuthorType: helpdeskflow.AuthorAgent}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.cached.ReadCacheStats().CommandHits; n != 1 {
		t.Fatalf("%d commands decided on the cached ticket, want still 1: it was stale", n)
	}
	if !slices.Contains(got.Tags, "other") || !slices.Contains(got.Tags, "current") || len(got.Messages) != 4 {
		t.Fatalf("the command's answer lost a write: tags %v, %d messages", got.Tags, len(got.Messages))
	}
	want, err := s.writer.GetTicket(s.ctx, s.workspace, tk.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the command's answer differs from a fresh fold:\n got %+v\nwant %+v", got, want)
	}
	s.read(t, tk.ID, false)
}

// TestReadCache_CommandKeepsItsState: a ticket command through the cached
// service replaces the cached ticket with the state it committed, so the
// next read is a hit (no delta load) and equals a fresh fold; a write
// through another service still makes the entry stale and is repaired.
func TestReadCache_CommandKeepsItsState(t *testing.T) {
	s := newCacheSetup(t, 0, nil)
	tk := s.create(t, "ada@example.com", 3)
	s.read(t, tk.ID, true)
	before := s.cached.ReadCacheStats()
	if _, err := s.cached.UpdateTicket(s.ctx, s.workspace, md, tk.ID, nil, tickets.UpdateTicket{Priority: ptr("high")}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cached.AddMessage(s.ctx, s.workspace, md, tk.ID, nil, tickets.AddMessage{Body: "<p>kept</p>", AuthorType: helpdeskflow.AuthorAgent}, true); err != nil {
		t.Fatal(err)
	}
	got := s.read(t, tk.ID, false)
	if got.Priority != "high" || got.Messages[len(got.Messages)-1].Body != "<p>kept</p>" {
		t.Fatalf("the read missed the commands: priority %s, last message %q", got.Priority, got.Messages[len(got.Messages)-1].Body)
	}
	after := s.cached.ReadCacheStats()
	if after.DeltaLoads != before.DeltaLoads || after.Misses != before.Misses || after.WritesKept-before.WritesKept != 2 || after.CommandHits-before.CommandHits != 2 {
		t.Fatalf("stats %+v after %+v: want both commands on the cached state and kept, and the read a hit", after, before)
	}
	if _, err := s.writer.UpdateTicket(s.ctx, s.workspace, md, tk.ID, nil, tickets.UpdateTicket{Priority: ptr("low")}, true); err != nil {
		t.Fatal(err)
	}
	if got := s.read(t, tk.ID, true); got.Priority != "low" {
		t.Fatalf("priority %s after another service's write, want low", got.Priority)
	}
	if n := s.cached.ReadCacheStats().DeltaLoads; n != after.DeltaLoads+1 {
		t.Fatalf("delta loads %d, want %d: the other service's write is repaired", n, after.DeltaLoads+1)
	}
}
