package tickets

import (
	"container/list"
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

// DefaultReadCacheBytes is the read cache's default bound (64 MiB).
const DefaultReadCacheBytes = 64 << 20

// readCache keeps folded tickets and customers for the consistent reads,
// bounded by their estimated bytes (least recently used first out). An
// entry is used only after a version check started after the read arrived
// says it is current (see versionChecks); a stale one is repaired by
// folding the events after its version (a delta load), a missing one is
// loaded as without the cache. So a read reflects every write acknowledged
// before it started, on any process. Entries are never changed once
// stored: a repair stores a new one. Safe for concurrent use.
type readCache struct {
	store    Store
	checks   versionChecks
	maxBytes int64

	mu      sync.Mutex
	entries map[uuid.UUID]*list.Element // of *cachedStream
	lru     list.List                   // front: most recently used
	bytes   int64

	hits, misses, deltaLoads, evictions, commandHits, writesKept atomic.Int64
}

// cachedStream is one folded stream: a ticket (its full state, internal
// notes included) or a customer, at version.
type cachedStream struct {
	id, workspaceID uuid.UUID
	version         int64
	tail            int // events folded on the snapshot it was loaded from
	ticket          *cachedTicket
	customer        *helpdeskflow.Customer
	size            int64 // estimate, with the encodings memoized on it
}

// cachedTicket is a ticket's state and what reads derive from it.
type cachedTicket struct {
	state helpdeskflow.Ticket
	// public is state.Messages without internal notes.
	public []helpdeskflow.Message
	// memos are the encodings of the answer, by includeInternal.
	memos [2]atomic.Pointer[memo]
}

// memo is an encoding of a ticket answer with one version of its customer.
type memo struct {
	customerID      uuid.UUID
	customerVersion int64
	body            []byte
}

func newReadCache(store Store, maxBytes int64) *readCache {
	c := &readCache{store: store, maxBytes: maxBytes, entries: map[uuid.UUID]*list.Element{}}
	c.checks.query = store.StreamVersions
	c.checks.took = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "helpdeskflow_read_cache_version_check_seconds",
		Help:    "Duration of the read cache's shared version checks, sent to answered (a read waits for at most the one in flight and its own).",
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25}})
	return c
}

// get returns the entry of stream id, nil when none, marking it used.
func (c *readCache) get(id uuid.UUID) *cachedStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cachedStream)
}

// put stores e unless a newer entry of its stream is there (a concurrent
// read may have stored one), then evicts from the back until the bound
// holds. An entry larger than the whole bound is not kept.
func (c *readCache) put(e *cachedStream) {
	if e.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.id]; ok {
		old := el.Value.(*cachedStream)
		if old.version > e.version {
			return
		}
		c.bytes += e.size - old.size
		el.Value = e
		c.lru.MoveToFront(el)
	} else {
		c.entries[e.id] = c.lru.PushFront(e)
		c.bytes += e.size
	}
	c.evictLocked()
}

// grow counts n more bytes held by e (an encoding memoized on it) if e is
// still the entry of its stream.
func (c *readCache) grow(e *cachedStream, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.id]; ok && el.Value == e {
		e.size += n
		c.bytes += n
		c.evictLocked()
	}
}

func (c *readCache) evictLocked() {
	for c.bytes > c.maxBytes && c.lru.Len() > 0 {
		el := c.lru.Back()
		e := el.Value.(*cachedStream)
		c.lru.Remove(el)
		delete(c.entries, e.id)
		c.bytes -= e.size
		c.evictions.Add(1)
	}
}

// ticket returns ticket id of the workspace, current as of a version
// check started after the call, and its customer. ENotFound for an id
// that is not a ticket of the workspace.
func (c *readCache) ticket(ctx context.Context, workspaceID, id uuid.UUID) (*cachedStream, *cachedStream, error) {
	te := c.get(id)
	if te == nil {
		c.misses.Add(1)
		te, err := c.loadTicket(ctx, workspaceID, id)
		if err != nil {
			return nil, nil, err
		}
		ce, err := c.customer(ctx, workspaceID, te.ticket.state.CustomerID, nil)
		return te, ce, err
	}
	if te.workspaceID != workspaceID || te.ticket == nil {
		return nil, nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "ticket %s not found", id)
	}
	// The customer's version is checked in the same statement, if it is
	// cached; a merge that moved the ticket shows as a newer ticket.
	ids := []uuid.UUID{id}
	customerID := te.ticket.state.CustomerID
	if c.get(customerID) != nil {
		ids = append(ids, customerID)
	}
	versions, err := c.checks.versions(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	te, err = c.current(ctx, te, versions)
	if err != nil {
		return nil, nil, err
	}
	ce, err := c.customer(ctx, workspaceID, te.ticket.state.CustomerID, versions)
	return te, ce, err
}

// customer returns customer id of the workspace, current as of versions
// when they name it (a check the caller started after its read arrived),
// else of a check of its own. A merged customer is returned as it is.
func (c *readCache) customer(ctx context.Context, workspaceID, id uuid.UUID, versions map[uuid.UUID]int64) (*cachedStream, error) {
	ce := c.get(id)
	if ce == nil {
		c.misses.Add(1)
		return c.loadCustomer(ctx, workspaceID, id)
	}
	if ce.workspaceID != workspaceID || ce.customer == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "customer %s not found", id)
	}
	if _, ok := versions[id]; !ok {
		var err error
		if versions, err = c.checks.versions(ctx, []uuid.UUID{id}); err != nil {
			return nil, err
		}
	}
	return c.current(ctx, ce, versions)
}

// current returns e if versions say it is current, else e repaired by a
// delta load; a stream versions do not name (gone) is loaded afresh.
func (c *readCache) current(ctx context.Context, e *cachedStream, versions map[uuid.UUID]int64) (*cachedStream, error) {
	v, ok := versions[e.id]
	if ok && v <= e.version {
		c.hits.Add(1)
		return e, nil
	}
	events, err := c.store.LoadAfter(ctx, e.workspaceID, e.id, e.version)
	if err != nil {
		return nil, err
	}
	if !ok || len(events) == 0 || events[0].Version != e.version+1 || e.ticket != nil && e.tail+len(events) >= SnapshotEvery {
		// Not a continuation of e (it should not happen), or a ticket
		// whose writers have snapshotted it since: fold afresh, from the
		// newer snapshot (commands take a cached ticket only while fewer
		// than SnapshotEvery events follow its snapshot, see lockTicket).
		c.misses.Add(1)
		return c.reload(ctx, e)
	}
	c.deltaLoads.Add(1)
	var next *cachedStream
	if e.ticket != nil {
		t := detached(e.ticket.state)
		for _, ev := range events {
			if err := helpdeskflow.ApplyTicket(&t, ev); err != nil {
				return nil, err
			}
		}
		next = newCachedTicket(t, e.tail+len(events))
	} else {
		cu := *e.customer
		cu.Tags = slices.Clone(cu.Tags)
		for _, ev := range events {
			if err := helpdeskflow.ApplyCustomer(&cu, ev); err != nil {
				return nil, err
			}
		}
		next = newCachedCustomer(cu)
	}
	c.put(next)
	return next, nil
}

// reload folds e's stream afresh and stores it.
func (c *readCache) reload(ctx context.Context, e *cachedStream) (*cachedStream, error) {
	if e.ticket != nil {
		return c.loadTicket(ctx, e.workspaceID, e.id)
	}
	return c.loadCustomer(ctx, e.workspaceID, e.id)
}

// loadTicket folds ticket id of the workspace from the store (from its
// snapshot) and stores it.
func (c *readCache) loadTicket(ctx context.Context, workspaceID, id uuid.UUID) (*cachedStream, error) {
	t, tail, err := loadTicket(ctx, storeSource{c.store, workspaceID}, id)
	if err != nil {
		return nil, err
	}
	e := newCachedTicket(t, tail)
	c.put(e)
	return e, nil
}

// loadCustomer folds customer id of the workspace from the store and
// stores it.
func (c *readCache) loadCustomer(ctx context.Context, workspaceID, id uuid.UUID) (*cachedStream, error) {
	cu, _, err := loadCustomer(ctx, storeSource{c.store, workspaceID}, id)
	if err != nil {
		return nil, err
	}
	e := newCachedCustomer(cu)
	c.put(e)
	return e, nil
}

// lockedState returns ticket ref's cached state if it is at version,
// ready for a command to apply its events to (its slices are its own to
// grow), and how many events follow its snapshot; ok is false when the
// cache does not hold the ticket at that version.
func (c *readCache) lockedState(ref helpdeskflow.StreamRef, version int64) (t helpdeskflow.Ticket, tail int, ok bool) {
	if c == nil {
		return helpdeskflow.Ticket{}, 0, false
	}
	e := c.get(ref.ID)
	if e == nil || e.ticket == nil || e.workspaceID != ref.WorkspaceID || e.version != version {
		return helpdeskflow.Ticket{}, 0, false
	}
	c.commandHits.Add(1)
	return detached(e.ticket.state), e.tail, true
}

// detached is a copy of cached ticket t that a fold may change and grow
// (tags, custom fields, messages) without touching the cached state.
func detached(t helpdeskflow.Ticket) helpdeskflow.Ticket {
	t.Tags, t.CustomFields, t.Messages = slices.Clone(t.Tags), maps.Clone(t.CustomFields), slices.Clip(t.Messages)
	return t
}

// wrote keeps t, ticket t.ID's state as a command of this process
// committed it at t.Version, when the cache holds an older state of it
// and fewer than SnapshotEvery events follow that state's snapshot up to
// t.Version (so no writer has snapshotted it since and the count of events
// after the snapshot stays known): the reads that follow then need no
// delta load. Otherwise it leaves the cache as it is; a read repairs it.
func (c *readCache) wrote(t helpdeskflow.Ticket) {
	if c == nil {
		return
	}
	e := c.get(t.ID)
	if e == nil || e.ticket == nil || e.workspaceID != t.WorkspaceID || e.version >= t.Version {
		return
	}
	tail := e.tail + int(t.Version-e.version)
	if tail >= SnapshotEvery {
		return
	}
	c.put(newCachedTicket(t, tail))
	c.writesKept.Add(1)
}

// cachedTail is how many events follow the snapshot of ticket ref's
// cached state; ok is false when the cache does not hold it (or there is
// no cache).
func (c *readCache) cachedTail(ref helpdeskflow.StreamRef) (tail int, ok bool) {
	if c == nil {
		return 0, false
	}
	e := c.get(ref.ID)
	if e == nil || e.ticket == nil || e.workspaceID != ref.WorkspaceID {
		return 0, false
	}
	return e.tail, true
}

func newCachedTicket(t helpdeskflow.Ticket, tail int) *cachedStream {
	t.Customer, t.Messages = nil, slices.Clip(t.Messages)
	ct := &cachedTicket{state: t, public: t.Messages}
	if slices.ContainsFunc(t.Messages, func(m helpdeskflow.Message) bool { return m.Internal }) {
		ct.public = slices.DeleteFunc(slices.Clone(t.Messages), func(m helpdeskflow.Message) bool { return m.Internal })
	}
	ct.public = slices.Clip(ct.public)
	return &cachedStream{id: t.ID, workspaceID: t.WorkspaceID, version: t.Version, tail: tail, ticket: ct, size: ticketBytes(t)}
}

func newCachedCustomer(c helpdeskflow.Customer) *cachedStream {
	return &cachedStream{id: c.ID, workspaceID: c.WorkspaceID, version: c.Version, customer: &c, size: customerBytes(c)}
}

// entryOverhead estimates an entry's fixed cost: the struct, its list
// element, its map slot.
const entryOverhead = 512

// ticketBytes estimates the memory t holds: its strings and per-message
// and per-field overheads.
func ticketBytes(t helpdeskflow.Ticket) int64 {
	n := entryOverhead + len(t.Subject) + len(t.Status) + len(t.Priority) + len(t.Type) + len(t.Channel) + 64*len(t.CustomFields)
	for _, tag := range t.Tags {
		n += len(tag) + 16
	}
	for _, m := range t.Messages {
		n += len(m.Body) + len(m.BodyText) + len(m.AuthorType) + 96
	}
	return int64(n)
}

// customerBytes estimates the memory c holds.
func customerBytes(c helpdeskflow.Customer) int64 {
	n := entryOverhead + len(c.Email) + len(c.Name) + 64*(len(c.CustomFields)+len(c.Metadata)) + 256*len(c.LinkedProfiles)
	for _, tag := range c.Tags {
		n += len(tag) + 16
	}
	return int64(n)
}

// ReadCacheStats are the read cache's counters since the Service started.
type ReadCacheStats struct {
	// Hits counts streams a version check found current, Misses streams
	// loaded afresh, DeltaLoads stale entries repaired by the events after
	// their version, Evictions entries dropped to keep the bound.
	Hits, Misses, DeltaLoads, Evictions int64
	// CommandHits counts ticket commands that decided on the cached state
	// (it was at the version they locked) instead of loading the stream.
	CommandHits int64
	// WritesKept counts ticket commands of this Service whose committed
	// state the cache took in place of its older entry (see wrote).
	WritesKept int64
	// VersionChecks counts the statements that checked versions, shared by
	// the reads waiting on them.
	VersionChecks int64
	// WaitingReads is how many reads wait for a version check that has
	// not been sent yet (one is in flight).
	WaitingReads int
	// Bytes is the estimated memory the entries hold, Entries their number.
	Bytes   int64
	Entries int
}

// ReadCacheStats returns the read cache's counters; zero when the Service
// has no cache (see WithReadCache).
func (s *Service) ReadCacheStats() ReadCacheStats {
	c := s.cache
	if c == nil {
		return ReadCacheStats{}
	}
	c.mu.Lock()
	bytes, entries := c.bytes, len(c.entries)
	c.mu.Unlock()
	return ReadCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), DeltaLoads: c.deltaLoads.Load(), Evictions: c.evictions.Load(),
		CommandHits: c.commandHits.Load(), WritesKept: c.writesKept.Load(), VersionChecks: c.checks.sent.Load(), WaitingReads: c.checks.waiting(), Bytes: bytes, Entries: entries}
}

// WithReadCache gives the Service's consistent ticket reads a cache of
// folded tickets and customers bounded by maxBytes (their estimated
// memory; DefaultReadCacheBytes when 0 or less); see GetTicketRead. Its
// metrics are ReadCacheCollectors.
func WithReadCache(maxBytes int64) Option {
	return func(s *Service) {
		if maxBytes <= 0 {
			maxBytes = DefaultReadCacheBytes
		}
		s.cache = newReadCache(s.store, maxBytes)
	}
}

// ReadCacheCollectors are the read cache's metrics, for the caller to
// register (none without a cache):
// helpdeskflow_read_cache_{hits,misses,delta_loads,evictions,command_hits,writes_kept,version_checks}_total,
// helpdeskflow_read_cache_version_check_seconds, helpdeskflow_read_cache_bytes
// and helpdeskflow_read_cache_entries.
func (s *Service) ReadCacheCollectors() []prometheus.Collector {
	c := s.cache
	if c == nil {
		return nil
	}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("helpdeskflow_read_cache_hits_total", "Streams (tickets, customers) a consistent read found current in the read cache.", &c.hits),
		counter("helpdeskflow_read_cache_misses_total", "Streams a consistent read loaded afresh: not in the read cache (or not a continuation of it).", &c.misses),
		counter("helpdeskflow_read_cache_delta_loads_total", "Stale read cache entries repaired by loading the events after their version.", &c.deltaLoads),
		counter("helpdeskflow_read_cache_evictions_total", "Read cache entries dropped to keep the cache within its byte bound.", &c.evictions),
		counter("helpdeskflow_read_cache_command_hits_total", "Ticket commands that decided on the read cache's state (at the version they locked) instead of loading the stream.", &c.commandHits),
		counter("helpdeskflow_read_cache_writes_kept_total", "Ticket commands whose committed state the read cache took in place of its older entry, sparing the next read a delta load.", &c.writesKept),
		counter("helpdeskflow_read_cache_version_checks_total", "Statements that checked the read cache's stream versions, each shared by the reads waiting on it.", &c.checks.sent),
		c.checks.took,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "helpdeskflow_read_cache_bytes", Help: "Estimated memory the read cache's entries hold."},
			func() float64 { return float64(s.ReadCacheStats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "helpdeskflow_read_cache_entries", Help: "Streams in the read cache."},
			func() float64 { return float64(s.ReadCacheStats().Entries) }),
	}
}
