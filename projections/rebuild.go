package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

// RebuildTables are the names --tables takes: the tables built from the
// events. tickets stands for tickets and its list tables
// (tickets_by_created, tickets_by_customer); ticket_messages is built with
// tickets (a message row comes from folding its ticket), so naming it
// rebuilds tickets too; so is ticket_history, which stands for the
// analytics tables (ticket_history, and ticket_service and
// automation_firings, filled from it by their views). api_requests is not built from events and is never
// rebuilt; projection_positions belongs to the live projector.
var RebuildTables = []string{"tickets", "customers", "ticket_messages", "audit_log", "ticket_history"}

// RebuildGCPercent is the GOGC a process running Rebuild is meant to use
// (`helpdeskflow projections rebuild` sets it unless GOGC is set, and the
// bench's rebuild phases as the command does): with GOGC 300 the collector
// took about 15% of a rebuild's CPU in `make bench`, and GOGC 200 cost
// more CPU than 800 in the rebuild phase.
const RebuildGCPercent = 800

// Defaults of RebuildConfig.
const (
	DefaultRebuildBatchSize = 20000
	DefaultRebuildCacheSize = 2_000_000
)

// Suffixes of the tables a rebuild builds beside the live ones, and of the
// live ones it swaps out.
const (
	newSuffix = "__v2"
	oldSuffix = "__old"
)

// RebuildSource is the event store as a rebuild reads it
// (*eventstore.Store).
type RebuildSource interface {
	// ReadBatch returns events after a position in commit order, below
	// the commit horizon (eventstore.Store.ReadBatch).
	ReadBatch(ctx context.Context, after helpdeskflow.Position, limit, maxBytes int) ([]helpdeskflow.Event, bool, error)
	// Horizon returns the ids below which every transaction has ended and
	// below which every transaction committed so far lies.
	Horizon(ctx context.Context) (ended, next uint64, err error)
	// CountAfter counts the events stored after a position.
	CountAfter(ctx context.Context, after helpdeskflow.Position) (int64, error)
	// StreamCounts counts the streams of each type.
	StreamCounts(ctx context.Context) (map[string]int64, error)
}

// RebuildConfig configures Rebuild. ClickHouse and Events are required;
// zero fields take the defaults named on each.
type RebuildConfig struct {
	// ClickHouse is a connection bound to the projection database, migrated
	// (0009 holds the rebuild's checkpoint). Required.
	ClickHouse driver.Conn
	// Events is the event store the rows are folded from. Required.
	Events RebuildSource
	// Tables are the RebuildTables to rebuild. Default: all of them.
	Tables []string
	// DryRun reports the row counts and an estimated time and writes
	// nothing.
	DryRun bool
	// DropOld drops the live tables the swap replaced once the rebuild is
	// done, and the old tables an earlier rebuild kept before it starts
	// (without it, a rebuild refuses to start while they exist).
	DropOld bool
	// BatchSize is the most events read, folded and inserted at once.
	// Default DefaultRebuildBatchSize.
	BatchSize int
	// CacheSize bounds the tickets and the customers whose folded state the
	// rebuild keeps in memory (each); a stream that falls out is read back
	// from the new table. Default DefaultRebuildCacheSize.
	CacheSize int
	// Progress, when set, is called after every batch is inserted, from
	// the goroutine that called Rebuild.
	Progress func(RebuildProgress)
	// Logger receives what the folding logs (events it cannot apply).
	// Default: discard.
	Logger *slog.Logger

	// definitions replaces the definitions in code (tests of schema
	// changes).
	definitions []tableDefinition
	// beforeSwap, when set, is called right before the swap (tests).
	beforeSwap func()
}

// RebuildProgress is how far a rebuild has got.
type RebuildProgress struct {
	// Phase is "build" (into the new tables) or "catch-up" (into the
	// swapped-in tables, after the swap).
	Phase string
	// Events is how many events this run has folded and inserted; Total
	// estimates how many it will (counted when it started).
	Events, Total int64
	// Elapsed is the time since this run started.
	Elapsed time.Duration
}

// Rate is the events per second so far.
func (p RebuildProgress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// ETA estimates the time left at the rate so far; 0 when unknown.
func (p RebuildProgress) ETA() time.Duration {
	r := p.Rate()
	if r <= 0 || p.Total <= p.Events {
		return 0
	}
	return time.Duration(float64(p.Total-p.Events) / r * float64(time.Second))
}

// RebuildReport is what Rebuild did (or, for a dry run, would do).
type RebuildReport struct {
	// Tables are the tables rebuilt (or to rebuild), list tables included.
	Tables []string
	// Events is how many events this run folded.
	Events int64
	// ResumedFrom is the checkpoint this run continued from; zero when it
	// started over.
	ResumedFrom helpdeskflow.Position
	// Resumed is whether this run continued an interrupted one.
	Resumed bool
	// Rows estimates, for a dry run, the rows each table will get: streams
	// for tickets (and the list tables) and customers, events for
	// audit_log, and for ticket_messages the share of a sample's events
	// that add a message.
	Rows map[string]int64
	// Estimate is, for a dry run, the time the rebuild should take: the
	// events to fold at the rate a sample was read and folded.
	Estimate time.Duration
	// Versions are the definitions' versions in code, by table;
	// Recorded the versions projection_versions holds (before this run).
	Versions, Recorded map[string]int
	// Inserted counts the rows this run inserted, by table (the list
	// tables' after the swap are copied by their views and not counted).
	// A ticket or customer gets a row per batch of events that changes it.
	Inserted map[string]int64
	// Old are the replaced tables kept (name with the __old suffix);
	// Dropped the old tables dropped.
	Old, Dropped []string
}

// checkpoint is a row of projection_rebuilds.
type checkpoint struct {
	tables string
	phase  string
	pos    helpdeskflow.Position
	events uint64
}

const (
	phaseBuilding = "building"
	phaseSwapping = "swapping"
	phaseDone     = "done"
)

// Rebuild rebuilds the projection tables cfg.Tables names from the event
// store, blue/green: it creates new tables (name__v2) from the definitions
// in code, folds every event below the commit horizon into them in commit
// order (the projector's row building), batch by batch, writing its own
// checkpoint after each batch's rows are in; once a read comes back short
// (caught up), it swaps the new tables in with one RENAME TABLE (the live
// ones become name__old), re-creates the list tables' views on the new
// tickets, and folds again every event committed before the swap that it
// had not read (a live projector may have written those into the old
// tables), into the swapped-in tables. Reads keep working throughout: the
// live tables stay until the RENAME, which swaps them at once.
//
// A run that is interrupted (a cancelled ctx, a kill) continues from its
// checkpoint when run again with the same tables; with other tables it
// starts over. The old tables are kept until cfg.DropOld (this run's or a
// later one's); while they exist another rebuild refuses to start.
//
// Errors: EValidation for an unknown table name; EConflict when old tables
// of an earlier rebuild exist and DropOld is not set; EUnavailable when
// ClickHouse cannot be reached (or ctx ended); EInternal for a failed
// statement or read.
func Rebuild(ctx context.Context, cfg RebuildConfig) (RebuildReport, error) {
	r, err := newRebuilder(cfg)
	if err != nil {
		return RebuildReport{}, err
	}
	return r.run(ctx)
}

// rebuilder is one run of Rebuild.
type rebuilder struct {
	cfg    RebuildConfig
	conn   driver.Conn
	defs   []tableDefinition // of the selected groups
	groups []string          // selected, in RebuildTables order
	p      *Projector        // inserts; tables says where
	// shards fold the events of a batch concurrently, each the streams
	// whose id falls to it (shardOf), with a state cache of its own; p is
	// the first.
	shards []*Projector
	report RebuildReport
	start  time.Time
	total  int64
}

func newRebuilder(cfg RebuildConfig) (*rebuilder, error) {
	if cfg.ClickHouse == nil || cfg.Events == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "a rebuild needs ClickHouse and the event store")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultRebuildBatchSize
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultRebuildCacheSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.definitions == nil {
		cfg.definitions = definitions
	}
	selected := map[string]bool{}
	for _, t := range cfg.Tables {
		t = strings.TrimSpace(t)
		if !slices.Contains(RebuildTables, t) {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "unknown table to rebuild",
				Details: []helpdeskflow.FieldProblem{{Field: "tables", Problem: "must name only " + strings.Join(RebuildTables, ", ")}}}
		}
		selected[t] = true
	}
	if len(selected) == 0 {
		for _, t := range RebuildTables {
			selected[t] = true
		}
	}
	if selected["ticket_messages"] || selected["ticket_history"] {
		selected["tickets"] = true
	}
	r := &rebuilder{cfg: cfg, conn: cfg.ClickHouse}
	for _, g := range RebuildTables {
		if selected[g] {
			r.groups = append(r.groups, g)
		}
	}
	r.report.Versions = map[string]int{}
	for _, d := range cfg.definitions {
		if selected[d.group] {
			r.defs = append(r.defs, d)
			r.report.Tables = append(r.report.Tables, d.name)
			r.report.Versions[d.name] = d.version
		}
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register rebuild metrics", Err: err}
	}
	n := max(2, runtime.GOMAXPROCS(0))
	for range n {
		p := &Projector{
			cfg: Config{ClickHouse: cfg.ClickHouse}, m: m,
			tickets:   newLRU[streamKey, ticketRow](max(1, cfg.CacheSize/n)),
			customers: newLRU[streamKey, customerRow](max(1, cfg.CacheSize/n)),
		}
		p.log = cfg.Logger
		r.shards = append(r.shards, p)
	}
	r.p = r.shards[0]
	return r, nil
}

// tables are the tables the fold writes: the new ones (suffix newSuffix,
// list tables written directly) before the swap, the live ones (list
// tables fed by their views) after.
func (r *rebuilder) tables(suffix string) targetTables {
	var t targetTables
	for _, g := range r.groups {
		switch g {
		case "tickets":
			t.tickets = "tickets" + suffix
			if suffix != "" {
				for _, v := range listViews {
					t.ticketCopies = append(t.ticketCopies, v.target+suffix)
				}
			}
		case "customers":
			t.customers = "customers" + suffix
		case "ticket_messages":
			t.messages = "ticket_messages" + suffix
		case "audit_log":
			t.audit = "audit_log" + suffix
		case "ticket_history":
			t.history = "ticket_history" + suffix
		}
	}
	return t
}

func (r *rebuilder) run(ctx context.Context) (RebuildReport, error) {
	r.start = time.Now()
	recorded, err := r.recordedVersions(ctx)
	if err != nil {
		return r.report, err
	}
	r.report.Recorded = recorded
	if r.cfg.DryRun {
		return r.report, r.dryRun(ctx)
	}
	if err := r.dropOrRefuseOld(ctx); err != nil {
		return r.report, err
	}
	cp, err := r.readCheckpoint(ctx)
	if err != nil {
		return r.report, err
	}
	groups := strings.Join(r.groups, ",")
	if cp.tables != groups || (cp.phase != phaseBuilding && cp.phase != phaseSwapping) {
		cp = checkpoint{tables: groups, phase: phaseBuilding}
		if err := r.createNewTables(ctx); err != nil {
			return r.report, err
		}
		if err := r.writeCheckpoint(ctx, cp); err != nil {
			return r.report, err
		}
	} else {
		r.report.Resumed, r.report.ResumedFrom = true, cp.pos
	}
	if r.cfg.Progress != nil {
		if r.total, err = r.cfg.Events.CountAfter(ctx, cp.pos); err != nil {
			return r.report, err
		}
	}

	if cp.phase == phaseBuilding {
		r.setTables(r.tables(newSuffix))
		if cp.pos, err = r.fold(ctx, cp, "build", 0); err != nil {
			return r.report, err
		}
		cp.phase = phaseSwapping
		if err := r.writeCheckpoint(ctx, cp); err != nil {
			return r.report, err
		}
	}
	if r.cfg.beforeSwap != nil {
		r.cfg.beforeSwap()
	}
	if err := r.swap(ctx); err != nil {
		return r.report, err
	}
	// Every event committed before now was either read above or is read
	// below: a live projector may have written rows of events after cp.pos
	// into the old tables up to the RENAME, and its inserts into the new
	// tickets may have missed the list tables while their views were
	// re-created; both are of events committed by now.
	_, target, err := r.cfg.Events.Horizon(ctx)
	if err != nil {
		return r.report, err
	}
	r.setTables(r.tables(""))
	if cp.pos, err = r.fold(ctx, cp, "catch-up", target); err != nil {
		return r.report, err
	}
	cp.phase = phaseDone
	if err := r.writeCheckpoint(ctx, cp); err != nil {
		return r.report, err
	}
	if r.cfg.DropOld {
		return r.report, r.dropOld(ctx)
	}
	return r.report, nil
}

// fold reads the events after cp.pos and writes their rows to r.p.tables,
// checkpointing after each batch, until a read comes back short (target 0)
// or until every event of a transaction below target is read. It returns
// the position it got to. Reading, folding and inserting run concurrently,
// one batch apart.
func (r *rebuilder) fold(ctx context.Context, cp checkpoint, phase string, target uint64) (helpdeskflow.Position, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	read := make(chan []helpdeskflow.Event, 2)
	built := make(chan *batch, 1)
	errs := make(chan error, 2)
	// inserted is closed over by the builder: before it reads state back
	// from ClickHouse, every batch before it must be in.
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		inserted int
	)
	go func() {
		defer close(read)
		errs <- r.read(ctx, cp.pos, target, read)
	}()
	go func() {
		defer close(built)
		n := 0
		for events := range read {
			n++
			waitInserted := func() {
				mu.Lock()
				defer mu.Unlock()
				for inserted < n-1 && ctx.Err() == nil {
					cond.Wait()
				}
			}
			b, err := r.build(ctx, events, waitInserted)
			if err != nil {
				errs <- err
				return
			}
			select {
			case built <- b:
			case <-ctx.Done():
				errs <- nil
				return
			}
		}
		errs <- nil
	}()
	stopWaiters := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stopWaiters()

	// Up to insertsInFlight batches are inserted at once, each its other
	// rows, then its ticket rows once the other rows of every batch up to
	// it are in (see Projector.insert; a later batch's ticket row must not
	// go in before an earlier batch's message rows). Batches are finished,
	// checkpoint and all, in order.
	pos := cp.pos
	finish := func(b *batch) error {
		pos = b.events[len(b.events)-1].Position
		cp.pos, cp.events = pos, cp.events+uint64(len(b.events))
		if err := r.writeCheckpoint(ctx, cp); err != nil {
			return err
		}
		r.report.Events += int64(len(b.events))
		r.countInserted(b)
		mu.Lock()
		inserted++
		cond.Broadcast()
		mu.Unlock()
		if r.cfg.Progress != nil {
			r.cfg.Progress(RebuildProgress{Phase: phase, Events: r.report.Events, Total: r.total, Elapsed: time.Since(r.start)})
		}
		return nil
	}
	var flights []*insertFlight // in order, oldest first
	prev := &insertFlight{othersIn: make(chan struct{}), othersOK: true}
	close(prev.othersIn)
	in := built // nil once closed
	for in != nil || len(flights) > 0 {
		var next <-chan *batch
		if len(flights) < insertsInFlight {
			next = in
		}
		var oldest <-chan error
		if len(flights) > 0 {
			oldest = flights[0].done
		}
		select {
		case err := <-oldest:
			b := flights[0].b
			flights = flights[1:]
			if err == nil {
				err = finish(b)
			}
			if err != nil {
				cancel()
				return pos, err
			}
		case b, ok := <-next:
			if !ok {
				in = nil
				continue
			}
			f := &insertFlight{b: b, othersIn: make(chan struct{}), done: make(chan error, 1)}
			go r.insertFlight(ctx, f, prev)
			flights, prev = append(flights, f), f
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			return pos, err
		}
	}
	if err := ctx.Err(); err != nil {
		return pos, helpdeskflow.Errorf(helpdeskflow.EUnavailable, "the rebuild was interrupted; run it again to continue")
	}
	return pos, nil
}

// insertsInFlight is how many batches a rebuild inserts at once.
const insertsInFlight = 2

// insertFlight is a batch being inserted.
type insertFlight struct {
	b *batch
	// othersIn is closed once the other rows of b and of every batch
	// before it are in or failed; othersOK (set before) says whether all
	// went in.
	othersIn chan struct{}
	othersOK bool
	// done gets the error of b's insert (nil once every row is in).
	done chan error
}

// insertFlight inserts f.b's other rows, then, once prev's other rows (and
// so all before) are in, its ticket rows.
func (r *rebuilder) insertFlight(ctx context.Context, f, prev *insertFlight) {
	err := r.p.insertConcurrently(ctx, f.b, r.p.otherTables(f.b))
	<-prev.othersIn
	if err == nil && !prev.othersOK {
		err = helpdeskflow.Errorf(helpdeskflow.EUnavailable, "an earlier batch's insert failed")
	}
	f.othersOK = err == nil
	close(f.othersIn)
	if err == nil {
		err = r.p.insertConcurrently(ctx, f.b, r.p.ticketTables(f.b))
	}
	f.done <- err
}

// countInserted adds b's rows to the report.
func (r *rebuilder) countInserted(b *batch) {
	if r.report.Inserted == nil {
		r.report.Inserted = map[string]int64{}
	}
	t := r.p.tables
	for _, name := range append([]string{t.tickets}, t.ticketCopies...) {
		r.report.Inserted[strings.TrimSuffix(name, newSuffix)] += int64(len(b.tickets))
	}
	r.report.Inserted[strings.TrimSuffix(t.customers, newSuffix)] += int64(len(b.customers))
	r.report.Inserted[strings.TrimSuffix(t.messages, newSuffix)] += int64(len(b.messages))
	r.report.Inserted[strings.TrimSuffix(t.audit, newSuffix)] += int64(len(b.audit))
	r.report.Inserted[strings.TrimSuffix(t.history, newSuffix)] += int64(len(b.history))
	delete(r.report.Inserted, "")
}

// readBudget bounds the bytes of event data one read of a rebuild holds.
const readBudget = 64 << 20

// read sends pages of events after pos to out until a page comes back
// short (target 0) or until a short page was read with every transaction
// below target ended.
func (r *rebuilder) read(ctx context.Context, pos helpdeskflow.Position, target uint64, out chan<- []helpdeskflow.Event) error {
	for {
		var ended uint64
		if target > 0 {
			var err error
			if ended, _, err = r.cfg.Events.Horizon(ctx); err != nil {
				return err
			}
		}
		events, cut, err := r.cfg.Events.ReadBatch(ctx, pos, r.cfg.BatchSize, readBudget)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			pos = events[len(events)-1].Position
			select {
			case out <- events:
			case <-ctx.Done():
				return nil
			}
		}
		if cut || len(events) == r.cfg.BatchSize {
			continue
		}
		if target == 0 || ended >= target {
			return nil
		}
		select { // an open transaction holds back the horizon
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}

// setTables points every shard at t.
func (r *rebuilder) setTables(t targetTables) {
	for _, p := range r.shards {
		p.tables = t
	}
}

// shardOf is the shard that folds stream id.
func (r *rebuilder) shardOf(id [16]byte) int {
	return int(id[15]^id[7]) % len(r.shards)
}

// build folds events into one batch of rows, the shards concurrently.
// A shard that needs state it does not hold calls waitInserted (until the
// batches before are in ClickHouse) before it reads the state back.
func (r *rebuilder) build(ctx context.Context, events []helpdeskflow.Event, waitInserted func()) (*batch, error) {
	parts := make([]*batch, len(r.shards))
	for i := range parts {
		parts[i] = &batch{events: make([]helpdeskflow.Event, 0, len(events)/len(r.shards)+16), decoded: true}
	}
	for i := range events {
		k := r.shardOf(events[i].StreamID)
		parts[k].events = append(parts[k].events, events[i])
	}
	missing := false
	for i, p := range r.shards {
		missing = missing || missesState(p, parts[i].events)
	}
	if missing {
		waitInserted()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(r.shards))
	for i, p := range r.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if missing {
				if errs[i] = p.loadState(ctx, parts[i]); errs[i] != nil {
					return
				}
			}
			p.build(parts[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b := &batch{events: events, decoded: true}
	for _, part := range parts {
		b.tickets = append(b.tickets, part.tickets...)
		b.customers = append(b.customers, part.customers...)
		b.messages = append(b.messages, part.messages...)
		b.audit = append(b.audit, part.audit...)
		b.history = append(b.history, part.history...)
	}
	return b, nil
}

// missesState reports whether an event of events continues a ticket or
// customer p has no state of in memory.
func missesState(p *Projector, events []helpdeskflow.Event) bool {
	for i := range events {
		e := &events[i]
		if e.Version <= 1 {
			continue
		}
		k := streamKey{e.WorkspaceID, e.StreamID}
		switch {
		case e.StreamType == helpdeskflow.StreamTicket && p.tables.tickets != "":
			if _, ok := p.tickets.get(k); !ok {
				return true
			}
		case e.StreamType == helpdeskflow.StreamCustomer && p.tables.customers != "":
			if _, ok := p.customers.get(k); !ok {
				return true
			}
		}
	}
	return false
}

// createNewTables (re)creates the new tables from the definitions, empty.
func (r *rebuilder) createNewTables(ctx context.Context) error {
	for _, d := range r.defs {
		name := d.name + newSuffix
		if err := r.conn.Exec(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
			return chError("drop "+name, err)
		}
		if err := r.conn.Exec(ctx, fmt.Sprintf(d.ddl, name)); err != nil {
			return chError("create "+name, err)
		}
	}
	return nil
}

// swap renames the live tables to name__old and the new ones to the live
// names in one statement (unless an interrupted run did already), then
// re-creates the list tables' views on the new tickets (and ticket_history's
// views, whose new targets it fills before the RENAME): a view follows its
// source and target by name on ClickHouse 18.16 and by identity on current
// releases, so only a view created after the RENAME copies the new tickets
// into the new list tables on both. Then it records the versions built.
func (r *rebuilder) swap(ctx context.Context) error {
	exists, err := r.existing(ctx)
	if err != nil {
		return err
	}
	if exists[r.defs[0].name+newSuffix] {
		var pairs []string
		for _, d := range r.defs {
			if exists[d.name] {
				pairs = append(pairs, d.name+" TO "+d.name+oldSuffix)
				r.report.Old = append(r.report.Old, d.name+oldSuffix)
			}
			pairs = append(pairs, d.name+newSuffix+" TO "+d.name)
		}
		if err := r.fillHistoryViews(ctx); err != nil {
			return err
		}
		if err := r.conn.Exec(ctx, "RENAME TABLE "+strings.Join(pairs, ", ")); err != nil {
			return chError("swap the rebuilt tables in", err)
		}
	}
	if slices.Contains(r.groups, "tickets") {
		for _, v := range listViews {
			if err := r.conn.Exec(ctx, "DROP TABLE IF EXISTS "+v.name); err != nil {
				return chError("drop view "+v.name, err)
			}
			if err := r.conn.Exec(ctx, listViewDDL(v.name, v.target)); err != nil {
				return chError("create view "+v.name, err)
			}
		}
	}
	if slices.Contains(r.groups, "ticket_history") {
		for _, v := range historyViews {
			if err := r.conn.Exec(ctx, "DROP TABLE IF EXISTS "+v.name); err != nil {
				return chError("drop view "+v.name, err)
			}
			if err := r.conn.Exec(ctx, historyViewDDL(v.name, v.target, v.query)); err != nil {
				return chError("create view "+v.name, err)
			}
		}
	}
	var names []string
	var versions []uint32
	var times []time.Time
	for _, d := range r.defs {
		names = append(names, d.name)
		versions = append(versions, uint32(d.version))
		times = append(times, time.Now().UTC().Truncate(time.Second))
	}
	return insertColumns(ctx, r.conn, "projection_versions", "table_name, version, built_at", []any{names, versions, times})
}

// fillHistoryViews fills the new targets of ticket_history's views from
// the new ticket_history, as the views would have (no view feeds them
// while they are built). Their aggregates and keys make a row that comes
// twice (a run interrupted after this) harmless.
func (r *rebuilder) fillHistoryViews(ctx context.Context) error {
	if !slices.Contains(r.groups, "ticket_history") {
		return nil
	}
	for _, v := range historyViews {
		if err := r.conn.Exec(ctx, "INSERT INTO "+v.target+newSuffix+" "+v.query("ticket_history"+newSuffix)); err != nil {
			return chError("fill "+v.target+newSuffix, err)
		}
	}
	return nil
}

// existing returns which tables of the database exist.
func (r *rebuilder) existing(ctx context.Context) (map[string]bool, error) {
	rows, err := r.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return nil, chError("list tables", err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, chError("list tables", err)
		}
		names[n] = true
	}
	return names, chError("list tables", rows.Err())
}

// dropOrRefuseOld drops the old tables an earlier rebuild kept when
// DropOld is set, and refuses to go on while they exist otherwise (the
// swap would need their names).
func (r *rebuilder) dropOrRefuseOld(ctx context.Context) error {
	exists, err := r.existing(ctx)
	if err != nil {
		return err
	}
	var old []string
	for _, d := range r.defs {
		if exists[d.name+oldSuffix] {
			old = append(old, d.name+oldSuffix)
		}
	}
	if len(old) == 0 {
		return nil
	}
	if !r.cfg.DropOld {
		return &helpdeskflow.Error{Code: helpdeskflow.EConflict,
			Message: "the tables an earlier rebuild replaced are still kept (" + strings.Join(old, ", ") + "); drop them with --drop-old"}
	}
	return r.dropOld(ctx)
}

// dropOld drops the old tables of r's definitions.
func (r *rebuilder) dropOld(ctx context.Context) error {
	exists, err := r.existing(ctx)
	if err != nil {
		return err
	}
	for _, d := range r.defs {
		name := d.name + oldSuffix
		if !exists[name] {
			continue
		}
		if err := r.conn.Exec(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
			return chError("drop "+name, err)
		}
		r.report.Dropped = append(r.report.Dropped, name)
	}
	r.report.Old = nil
	return nil
}

const checkpointName = "rebuild"

func (r *rebuilder) readCheckpoint(ctx context.Context) (checkpoint, error) {
	rows, err := r.conn.Query(ctx, `SELECT tables, phase, tx_id, seq, events FROM projection_rebuilds
		WHERE name = ? ORDER BY written_ns DESC LIMIT 1`, checkpointName)
	if err != nil {
		return checkpoint{}, chError("read the rebuild checkpoint", err)
	}
	defer rows.Close()
	var cp checkpoint
	for rows.Next() {
		if err := rows.Scan(&cp.tables, &cp.phase, &cp.pos.TxID, &cp.pos.Seq, &cp.events); err != nil {
			return checkpoint{}, chError("read the rebuild checkpoint", err)
		}
	}
	return cp, chError("read the rebuild checkpoint", rows.Err())
}

// writeCheckpoint records cp; called only once the rows of every event up
// to cp.pos are in.
func (r *rebuilder) writeCheckpoint(ctx context.Context, cp checkpoint) error {
	return insertColumns(ctx, r.conn, "projection_rebuilds", "name, tables, phase, tx_id, seq, events, written_ns", []any{
		[]string{checkpointName}, []string{cp.tables}, []string{cp.phase},
		[]uint64{cp.pos.TxID}, []int64{cp.pos.Seq}, []uint64{cp.events}, []uint64{uint64(time.Now().UnixNano())},
	})
}

// recordedVersions reads projection_versions.
func (r *rebuilder) recordedVersions(ctx context.Context) (map[string]int, error) {
	rows, err := r.conn.Query(ctx, "SELECT table_name, max(version) FROM projection_versions GROUP BY table_name")
	if err != nil {
		return nil, chError("read projection versions", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var v uint32
		if err := rows.Scan(&name, &v); err != nil {
			return nil, chError("read projection versions", err)
		}
		out[name] = int(v)
	}
	return out, chError("read projection versions", rows.Err())
}

// dryRunSample is how many events a dry run reads and folds to estimate
// the message rows and the time.
const dryRunSample = 20000

// dryRun fills the report's row counts and estimate without writing.
func (r *rebuilder) dryRun(ctx context.Context) error {
	events, err := r.cfg.Events.CountAfter(ctx, helpdeskflow.Position{})
	if err != nil {
		return err
	}
	streams, err := r.cfg.Events.StreamCounts(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	sample, _, err := r.cfg.Events.ReadBatch(ctx, helpdeskflow.Position{}, min(dryRunSample, r.cfg.BatchSize), readBudget)
	if err != nil {
		return err
	}
	r.setTables(liveTables)
	b := &batch{events: sample, decoded: true}
	r.p.build(b) // in memory only: no state is loaded, nothing inserted
	elapsed := time.Since(start)

	r.report.Rows = map[string]int64{}
	for _, d := range r.defs {
		switch d.group {
		case "tickets":
			r.report.Rows[d.name] = streams[helpdeskflow.StreamTicket]
		case "customers":
			r.report.Rows[d.name] = streams[helpdeskflow.StreamCustomer]
		case "audit_log":
			r.report.Rows[d.name] = events
		case "ticket_history":
			if d.name == "ticket_history" && len(sample) > 0 {
				r.report.Rows[d.name] = events * int64(len(b.history)) / int64(len(sample))
			}
		case "ticket_messages":
			if len(sample) > 0 {
				r.report.Rows[d.name] = events * int64(len(b.messages)) / int64(len(sample))
			}
		}
	}
	r.report.Events = events
	if len(sample) > 0 {
		r.report.Estimate = time.Duration(float64(elapsed) * float64(events) / float64(len(sample)))
	}
	return nil
}

// DropOldTables drops the tables a rebuild swapped out and kept (their
// names end in __old) for the RebuildTables named (all when none), and
// returns their names. Errors as Rebuild's.
func DropOldTables(ctx context.Context, conn driver.Conn, tables []string) ([]string, error) {
	r, err := newRebuilder(RebuildConfig{ClickHouse: conn, Events: noEvents{}, Tables: tables})
	if err != nil {
		return nil, err
	}
	err = r.dropOld(ctx)
	return r.report.Dropped, err
}

// noEvents is the RebuildSource of DropOldTables, which reads none.
type noEvents struct{ RebuildSource }
