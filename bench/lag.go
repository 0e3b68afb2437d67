package main

import (
	"context"
	"fmt"
	"math"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

const (
	// lagProbeInterval is the prober's period: at most one ClickHouse query
	// per interval for all pending samples together, so the probe costs
	// the system it measures at most 5 queries a second. It is also the
	// resolution of the lag figures.
	lagProbeInterval = 200 * time.Millisecond
	lagGiveUp        = 60 * time.Second // a sample not visible by then counts as missed
	lagQueryBatch    = 500
)

// lagTracker measures the projection lag of sampled tickets: the time from
// the 201 the client received to the ticket's row being visible in the
// ClickHouse tickets table. One prober goroutine (run) queries ClickHouse
// once per lagProbeInterval for up to lagQueryBatch pending samples
// together, by the table's sort key prefix (workspace_id, ticket_id), so
// the query reads only the granules of those tickets. A sample counts as
// visible at the start of the first query that saw it: the figure is an
// upper bound, late by at most one probe interval plus one query. FINAL is
// not needed: it only collapses versions, it never changes whether a
// ticket has a row.
//
// All samples must be tickets of one workspace (the creates phase's are
// all the dev key's); the tracker learns it once, from the first sample's
// stream in Postgres (workspaceOf). Methods are safe for concurrent use.
type lagTracker struct {
	ch          driver.Conn
	table       string
	workspaceOf func(ctx context.Context, ticketID string) (string, error)

	mu        sync.Mutex
	workspace uuid.UUID // uuid.Nil until learned
	pending   map[uuid.UUID]time.Time
	first     time.Time // the first add since the last result; zero if none
	lags      []time.Duration
	missed    int
	queries   int
	queryDur  time.Duration
	queryErr  string
}

// newLagTracker probes db.tickets on ch; workspaceOf names the workspace of
// a created ticket (called until it succeeds once).
func newLagTracker(ch driver.Conn, db string, workspaceOf func(ctx context.Context, ticketID string) (string, error)) *lagTracker {
	return &lagTracker{ch: ch, table: db + ".tickets", workspaceOf: workspaceOf, pending: map[uuid.UUID]time.Time{}}
}

func (t *lagTracker) add(id string, at time.Time) {
	u, err := uuid.Parse(id)
	if err != nil {
		return
	}
	t.mu.Lock()
	t.pending[u] = at
	if t.first.IsZero() {
		t.first = at
	}
	t.mu.Unlock()
}

func (t *lagTracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// run is the one prober: it probes every lagProbeInterval until ctx ends.
func (t *lagTracker) run(ctx context.Context) {
	tick := time.NewTicker(lagProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.probe(ctx)
		}
	}
}

// probe sends at most one ClickHouse query (and, until the workspace is
// known, one Postgres lookup) for the pending samples.
func (t *lagTracker) probe(ctx context.Context) {
	t.mu.Lock()
	ids := make([]uuid.UUID, 0, min(len(t.pending), lagQueryBatch))
	now := time.Now()
	for id, at := range t.pending {
		if now.Sub(at) > lagGiveUp {
			delete(t.pending, id)
			t.missed++
			continue
		}
		if len(ids) < lagQueryBatch {
			ids = append(ids, id)
		}
	}
	ws := t.workspace
	t.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	if ws == uuid.Nil {
		var err error
		if ws, err = t.learnWorkspace(ctx, ids[0]); err != nil {
			t.fail(fmt.Errorf("workspace of ticket %s: %w", ids[0], err))
			return
		}
	}
	var in strings.Builder
	for i, id := range ids {
		if i > 0 {
			in.WriteString(", ")
		}
		fmt.Fprintf(&in, "toUUID('%s')", id) // ids come from uuid.Parse: no quoting issue
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	rows, err := t.ch.Query(qctx, "SELECT DISTINCT toString(ticket_id) FROM "+t.table+
		" WHERE workspace_id = toUUID('"+ws.String()+"') AND ticket_id IN ("+in.String()+")")
	if err != nil {
		t.fail(err)
		return
	}
	defer rows.Close()
	var seen []uuid.UUID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err == nil {
			if u, err := uuid.Parse(s); err == nil {
				seen = append(seen, u)
			}
		}
	}
	elapsed := time.Since(start)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queries++
	t.queryDur += elapsed
	if err := rows.Err(); err != nil {
		t.queryErr = err.Error()
	}
	for _, id := range seen {
		if at, ok := t.pending[id]; ok {
			t.lags = append(t.lags, max(start.Sub(at), 0))
			delete(t.pending, id)
		}
	}
}

// learnWorkspace asks workspaceOf for the workspace of ticket and keeps it.
func (t *lagTracker) learnWorkspace(ctx context.Context, ticket uuid.UUID) (uuid.UUID, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := t.workspaceOf(qctx, ticket.String())
	if err != nil {
		return uuid.Nil, err
	}
	ws, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, err
	}
	t.mu.Lock()
	t.workspace = ws
	t.mu.Unlock()
	return ws, nil
}

func (t *lagTracker) fail(err error) {
	t.mu.Lock()
	t.queryErr = err.Error()
	t.mu.Unlock()
}

// wait blocks until no sample is pending (each either seen or given up on),
// or ctx ends.
func (t *lagTracker) wait(ctx context.Context) {
	for i := 0; i < int(2*lagGiveUp/lagProbeInterval) && t.pendingCount() > 0 && ctx.Err() == nil; i++ {
		poll.Sleep(ctx, lagProbeInterval)
	}
}

type lagResult struct {
	Phase           string         `json:"phase"`
	Samples         int            `json:"samples"`
	Visible         int            `json:"visible"`
	Missed          int            `json:"missed"`
	LagMs           latencySummary `json:"lag_ms"`
	PollIntervalMs  float64        `json:"poll_interval_ms"`         // the probe's period: the figures' resolution
	ProbeQueries    int            `json:"probe_queries"`            // ClickHouse queries the prober sent
	ProbeQPS        float64        `json:"probe_queries_per_second"` // from the first sample to the result
	MeanQueryMs     float64        `json:"mean_query_ms"`
	LastQueryError  string         `json:"last_query_error,omitempty"`
	CreatesPerSec   float64        `json:"creates_per_second"`
	CreateLatencyMs latencySummary `json:"create_latency_ms"`
}

// result summarizes and resets the tracker for the next measurement.
func (t *lagTracker) result(phase string) lagResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := lagResult{Phase: phase, Visible: len(t.lags), Missed: t.missed + len(t.pending),
		LagMs: summarize(t.lags), PollIntervalMs: float64(lagProbeInterval.Milliseconds()), LastQueryError: t.queryErr}
	r.Samples = r.Visible + r.Missed
	r.ProbeQueries = t.queries
	if t.queries > 0 {
		r.MeanQueryMs = float64((t.queryDur / time.Duration(t.queries)).Microseconds()) / 1000
		if span := time.Since(t.first); !t.first.IsZero() && span > 0 {
			r.ProbeQPS = math.Round(float64(t.queries)/span.Seconds()*10) / 10
		}
	}
	t.lags, t.missed, t.queries, t.queryDur, t.queryErr, t.first = nil, 0, 0, 0, "", time.Time{}
	clear(t.pending)
	return r
}

// projectedTickets is how many distinct tickets the read model holds.
func projectedTickets(ctx context.Context, ch driver.Conn, db string) (uint64, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n uint64
	err := ch.QueryRow(qctx, "SELECT uniqExact(ticket_id) FROM "+db+".tickets").Scan(&n)
	return n, err
}

// settle waits until the read model holds want tickets (everything created
// so far), up to limit, and returns how long that took.
func settle(ctx context.Context, ch driver.Conn, db string, want uint64, limit time.Duration) (time.Duration, uint64, error) {
	start := time.Now()
	var have uint64
	var err error
	for i := 0; i < 10000 && time.Since(start) < limit && ctx.Err() == nil; i++ {
		if have, err = projectedTickets(ctx, ch, db); err == nil && have >= want {
			return time.Since(start), have, nil
		}
		poll.Sleep(ctx, 100*time.Millisecond)
	}
	if err == nil {
		err = fmt.Errorf("read model has %d of %d tickets after %s", have, want, limit)
	}
	return time.Since(start), have, err
}

// drainPipeline waits, up to limit, until the relay has published every
// appended event and the dispatcher has handled every published one, going
// by the dev process's counters; a counter it does not find is not waited for.
func drainPipeline(ctx context.Context, client *nethttp.Client, metricsURL string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var last string
	for i := 0; i < 1000 && time.Since(start) < limit && ctx.Err() == nil; i++ {
		m, err := scrape(ctx, client, metricsURL)
		if err == nil {
			appended := m.sum("helpdeskflow_events_appended_total", nil)
			published := m.sum("helpdeskflow_relay_published_total", nil)
			done := published >= appended
			last = fmt.Sprintf("appended %.0f, published %.0f", appended, published)
			if m.has("helpdeskflow_dispatch_events_total") {
				handled := m.sum("helpdeskflow_dispatch_events_total", nil) + m.sum("helpdeskflow_dispatch_duplicates_total", nil)
				done = done && handled >= published
				last += fmt.Sprintf(", dispatched %.0f", handled)
			}
			if done {
				return time.Since(start), nil
			}
		} else {
			last = err.Error()
		}
		poll.Sleep(ctx, 100*time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("relay/dispatcher not caught up after %s: %s", limit, last)
}
