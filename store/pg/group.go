package pg

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

// GroupConfig configures group commit (see DB.EnableGroupCommit).
type GroupConfig struct {
	// Committers is how many groups may be in flight at once, each on a
	// connection of its own; default 2.
	Committers int
	// MaxGroup is the most transactions one group carries; default 64.
	MaxGroup int
	// Timeout bounds one group's statements on the server; default 30 s.
	Timeout time.Duration
}

// group is the group committer of a DB: transactions that arrive while
// every committer is busy wait in a queue, and the next free committer
// takes all of them (up to MaxGroup, one per key) as one group. A group is
// ONE Postgres transaction on one connection: each member's function runs
// on its own goroutine as usual, and whenever every member is either
// waiting for its next statements' results or done, the statements of all
// of them go out in one round trip, in the order of their keys (so that
// two groups take row locks in the same order and cannot deadlock). The
// statements a member defers (appends, links, timers) go out only with
// the group's COMMIT, and only for members whose function succeeded.
//
// Each request is answered as if it ran alone: members of one group hold
// distinct keys (a member whose key is in flight waits, so one key's
// transactions run in arrival order); a member whose function fails after
// reads alone (see Tx.Reader) gets its own error while the rest commit; and
// whenever the group cannot commit as a whole (a member failed after
// sending a write, a statement failed, the commit failed) it rolls back and
// every member runs again alone, on its own transaction, with the outcome
// it would have had anyway.
type group struct {
	db  *DB
	cfg GroupConfig

	mu       sync.Mutex
	queue    []*member
	inFlight map[string]bool
	running  int

	sizes   prometheus.Histogram
	replays prometheus.Counter
	waiting prometheus.Gauge
}

// member is one transaction of a group, seen from both sides: its own
// goroutine runs the function, the committer sends its statements.
type member struct {
	key     string
	ctx     context.Context
	tx      *Tx
	start   chan startSignal // committer → member: admitted (or not)
	run     *groupRun
	results chan pgx.BatchResults // committer → member: its statements' results
	outcome chan outcome          // committer → member: how the group ended

	err  error          // the function's error, once done
	open *memberResults // the results handed to it last
}

type startSignal int

const (
	started   startSignal = iota // the member is in a group: run the function
	runAlone                     // no connection for the group: run alone
	cancelled                    // the member's context ended while it waited
)

// outcome is how a group ended for one member.
type outcome int

const (
	committed outcome = iota // the member's function result stands
	replay                   // rolled back: run the function again alone
)

// groupRun is one group in flight: its members report to it.
type groupRun struct {
	group *group
	msgs  chan memberMsg
}

// memberMsg is a member's next step: statements to send, or done.
type memberMsg struct {
	m     *member
	batch *pgx.Batch
	n     int // statements in batch
	done  bool
}

// EnableGroupCommit makes TransactGrouped run its transactions in groups
// (see group), registering helpdeskflow_group_commit_size (transactions
// per group), helpdeskflow_group_commit_replays_total (transactions run
// again alone after their group rolled back) and
// helpdeskflow_group_commit_waiting (transactions waiting for a committer)
// on reg, which may be nil.
// Call it once, before any TransactGrouped.
func (db *DB) EnableGroupCommit(cfg GroupConfig, reg prometheus.Registerer) error {
	if cfg.Committers <= 0 {
		cfg.Committers = 2
	}
	if cfg.MaxGroup <= 0 {
		cfg.MaxGroup = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	g := &group{db: db, cfg: cfg, inFlight: map[string]bool{},
		sizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "helpdeskflow_group_commit_size",
			Help:    "Transactions committed together in one group (one Postgres transaction and commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "helpdeskflow_group_commit_replays_total",
			Help: "Transactions run again alone because their group could not commit as a whole.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "helpdeskflow_group_commit_waiting",
			Help: "Transactions waiting for a committer (every committer busy, or their key in flight).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{g.sizes, g.replays, g.waiting} {
			if err := reg.Register(c); err != nil {
				return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register group commit metrics", Err: err}
			}
		}
	}
	db.group = g
	return nil
}

// TransactGrouped is Transact for the short, frequent commands whose
// rows are named by key (a stream id, a customer email): it may run fn in
// one transaction together with concurrent transactions of other keys,
// sharing their round trips and commit (see EnableGroupCommit; without it,
// it is Transact). Transactions of one key run one after the other, in
// arrival order (an empty key is a key of its own). Errors are Transact's, and every caller gets the outcome
// its fn would have had alone.
//
// fn may run more than once (when its group rolls back it runs again
// alone), so it must have no effect besides its statements and its
// results, and must read through Tx.Reader whatever it reads without
// changing anything.
func (db *DB) TransactGrouped(ctx context.Context, key string, fn func(tx *Tx) error) error {
	g := db.group
	if g == nil {
		return db.Transact(ctx, fn)
	}
	if key == "" {
		key = "transaction:" + uuid.NewString()
	}
	m := &member{key: key, ctx: ctx, start: make(chan startSignal, 1),
		results: make(chan pgx.BatchResults, 1), outcome: make(chan outcome, 1)}
	m.tx = &Tx{started: time.Now(), member: m}
	g.enqueue(m)
	switch <-m.start {
	case runAlone:
		defer g.release(key)
		return db.Transact(ctx, fn)
	case cancelled:
		return Unavailable("wait for a group commit", ctx.Err())
	}
	err := m.runFn(fn)
	if <-m.outcome == replay {
		g.replays.Inc()
		defer g.release(key)
		return db.Transact(ctx, fn)
	}
	g.release(key)
	if err != nil {
		return err
	}
	return m.tx.runHooks(ctx, db)
}

// runFn runs fn in the group and reports it done. When fn panics, the
// member reports done as failed after writing (so its group rolls back and
// the others run again alone) and gives its key up before the panic goes
// on, so neither the group nor the key waits for it forever.
func (m *member) runFn(fn func(tx *Tx) error) (err error) {
	finished := false
	defer func() {
		if !finished {
			if m.open != nil {
				m.open.Close() //nolint:errcheck // hands the connection back to the committer
			}
			m.err, m.tx.wrote = errPanicked, true
			m.run.msgs <- memberMsg{m: m, done: true}
			<-m.outcome
			m.run.group.release(m.key)
		}
	}()
	err = fn(m.tx)
	finished = true
	m.err = err
	m.run.msgs <- memberMsg{m: m, done: true}
	return err
}

var errPanicked = errors.New("the transaction's function panicked")

// send hands the member's statements to its group and returns their
// results once the group's round trip is back.
func (m *member) send(b *pgx.Batch, n int) pgx.BatchResults {
	m.run.msgs <- memberMsg{m: m, batch: b, n: n}
	br := <-m.results
	if r, ok := br.(*memberResults); ok {
		m.open = r
	}
	return br
}

func (g *group) enqueue(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queue = append(g.queue, m)
	g.waiting.Set(float64(len(g.queue)))
	if g.running < g.cfg.Committers {
		g.running++
		go g.commit()
	}
}

// release ends key's turn once its transaction is over (also when it ran
// again alone), and starts a committer for members that waited for it.
func (g *group) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.inFlight, key)
	if len(g.queue) > 0 && g.running < g.cfg.Committers {
		g.running++
		go g.commit()
	}
}

// commit is one committer: it runs groups while the queue has members it
// may take, then ends.
func (g *group) commit() {
	for {
		g.mu.Lock()
		members := g.admit()
		if len(members) == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.runGroup(members)
	}
}

// admit takes the next group from the queue, in arrival order: at most
// MaxGroup members, none whose key is in flight or already taken (so a
// key's later members stay behind its earlier ones). Members whose
// context ended are told so. The caller holds g.mu.
func (g *group) admit() []*member {
	var members []*member
	rest := g.queue[:0]
	for _, m := range g.queue {
		switch {
		case m.ctx.Err() != nil:
			m.start <- cancelled
		case len(members) < g.cfg.MaxGroup && !g.inFlight[m.key]:
			g.inFlight[m.key] = true
			members = append(members, m)
		default:
			rest = append(rest, m)
		}
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	g.waiting.Set(float64(len(rest)))
	return members
}

// runGroup runs members as one transaction and tells each how it ended.
func (g *group) runGroup(members []*member) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeout)
	defer cancel()
	conn, err := g.db.pool.Acquire(ctx)
	if err != nil {
		for _, m := range members {
			m.start <- runAlone
		}
		return
	}
	defer conn.Release()
	slices.SortStableFunc(members, func(a, b *member) int { return strings.Compare(a.key, b.key) })
	run := &groupRun{group: g, msgs: make(chan memberMsg, len(members))}
	for _, m := range members {
		m.run = run
		m.start <- started
	}
	g.sizes.Observe(float64(len(members)))

	begun, failed := false, false
	active := members
	for len(active) > 0 {
		// Every active member's next step: its statements, or done.
		next := map[*member]memberMsg{}
		for range active {
			msg := <-run.msgs
			next[msg.m] = msg
		}
		var senders []memberMsg
		still := active[:0:0]
		for _, m := range active {
			msg := next[m]
			if msg.done {
				if m.err != nil && m.tx.wrote {
					failed = true
				}
				continue
			}
			still = append(still, m)
			senders = append(senders, msg)
		}
		active = still
		if len(senders) == 0 {
			continue
		}
		if failed {
			// The group rolls back: nothing more goes out.
			for _, s := range senders {
				s.m.results <- failedBatch{err: errGroupRolledBack}
			}
			continue
		}
		pipeline := &pgx.Batch{}
		if !begun {
			pipeline.Queue("begin")
		}
		for _, s := range senders {
			pipeline.QueuedQueries = append(pipeline.QueuedQueries, s.batch.QueuedQueries...)
		}
		br := conn.SendBatch(ctx, pipeline)
		if !begun {
			begun = true
			if _, err := br.Exec(); err != nil {
				failed = true
			}
		}
		for _, s := range senders {
			r := &memberResults{br: br, left: s.n, done: make(chan struct{})}
			s.m.results <- r
			<-r.done
		}
		if err := br.Close(); err != nil {
			failed = true
		}
	}
	ok := !failed && g.finish(ctx, conn, members, begun)
	if !ok && begun {
		conn.Exec(context.WithoutCancel(ctx), "rollback") //nolint:errcheck // the members run again alone
	}
	for _, m := range members {
		if ok {
			m.outcome <- committed
		} else {
			m.outcome <- replay
		}
	}
}

// finish sends the deferred statements of the members whose function
// succeeded and the COMMIT, and reports whether the group committed.
func (g *group) finish(ctx context.Context, conn *pgxpool.Conn, members []*member, begun bool) bool {
	final := &pgx.Batch{}
	// deferred[i] is the statement queued i-th (the zero value for BEGIN
	// and COMMIT): the rows of DeferReturning's are read by their scan
	// (DeferRead's are not: nothing more is read in the transaction).
	var deferred []deferredExec
	if !begun {
		final.Queue("begin")
		deferred = append(deferred, deferredExec{})
	}
	for _, m := range members {
		if m.err == nil {
			for _, d := range m.tx.deferred {
				final.Queue(d.sql, d.args...)
				deferred = append(deferred, d)
			}
		}
	}
	if !begun && len(final.QueuedQueries) == 1 {
		return true // nothing was sent and nothing is to be written
	}
	final.Queue("commit")
	deferred = append(deferred, deferredExec{})
	br := conn.SendBatch(ctx, final)
	var tag pgconn.CommandTag
	var err error
	for _, d := range deferred {
		if d.write {
			err = scanDeferred(br, d.scan)
		} else {
			tag, err = br.Exec()
		}
		if err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	// COMMIT of a transaction that an error aborted answers ROLLBACK.
	return err == nil && tag.String() == "COMMIT"
}

// errGroupRolledBack answers the statements of members of a group that is
// rolling back; they run again alone.
var errGroupRolledBack = &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "group commit rolled back; running again alone"}

// memberResults is a member's share of its group's round trip: its n
// results, read by the member's goroutine while the committer waits; Close
// skips what the member left unread and hands the connection back.
type memberResults struct {
	br     pgx.BatchResults
	left   int
	done   chan struct{}
	closed bool
}

var errReadPastBatch = errors.New("read past the statements sent")

func (r *memberResults) Exec() (pgconn.CommandTag, error) {
	if r.left == 0 || r.closed {
		return pgconn.CommandTag{}, errReadPastBatch
	}
	r.left--
	return r.br.Exec()
}

func (r *memberResults) Query() (pgx.Rows, error) {
	if r.left == 0 || r.closed {
		return nil, errReadPastBatch
	}
	r.left--
	return r.br.Query()
}

func (r *memberResults) QueryRow() pgx.Row {
	if r.left == 0 || r.closed {
		return errRow{errReadPastBatch}
	}
	r.left--
	return r.br.QueryRow()
}

// Tx is nil: a member's statements never begin a transaction of pgx's.
func (r *memberResults) Tx() pgx.Tx { return nil }

func (r *memberResults) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	for ; r.left > 0; r.left-- {
		r.br.Exec() //nolint:errcheck // results the member did not read
	}
	close(r.done)
	return nil
}
