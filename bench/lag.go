package main

import (
	"context"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

const (
	lagPollInterval = 20 * time.Millisecond
	lagGiveUp       = 60 * time.Second // a sample not visible by then counts as missed
	lagQueryBatch   = 500
)

// lagTracker measures the projection lag of sampled tickets: the time from
// the 201 the client received to the ticket's row being visible in the
// ClickHouse tickets table. It polls ClickHouse every 20 ms with one query
// for all pending samples (the equivalent of `SELECT count() FROM tickets
// FINAL WHERE ticket_id = ?` per sample: FINAL only collapses versions, it
// never changes whether a ticket has a row). A sample counts as visible at
// the start of the first query that saw it, so the figure is an upper
// bound, by at most one poll interval plus one query.
type lagTracker struct {
	ch    driver.Conn
	table string

	mu       sync.Mutex
	pending  map[uuid.UUID]time.Time
	lags     []time.Duration
	missed   int
	queries  int
	queryDur time.Duration
	queryErr string
}

func newLagTracker(ch driver.Conn, db string) *lagTracker {
	return &lagTracker{ch: ch, table: db + ".tickets", pending: map[uuid.UUID]time.Time{}}
}

func (t *lagTracker) add(id string, at time.Time) {
	u, err := uuid.Parse(id)
	if err != nil {
		return
	}
	t.mu.Lock()
	t.pending[u] = at
	t.mu.Unlock()
}

func (t *lagTracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// run polls until ctx ends.
func (t *lagTracker) run(ctx context.Context) {
	tick := time.NewTicker(lagPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.poll(ctx)
		}
	}
}

func (t *lagTracker) poll(ctx context.Context) {
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
	t.mu.Unlock()
	if len(ids) == 0 {
		return
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
	rows, err := t.ch.Query(qctx, "SELECT DISTINCT toString(ticket_id) FROM "+t.table+" WHERE ticket_id IN ("+in.String()+")")
	if err != nil {
		t.mu.Lock()
		t.queryErr = err.Error()
		t.mu.Unlock()
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

// wait blocks until no sample is pending (each either seen or given up on),
// or ctx ends.
func (t *lagTracker) wait(ctx context.Context) {
	for i := 0; i < int(2*lagGiveUp/lagPollInterval) && t.pendingCount() > 0 && ctx.Err() == nil; i++ {
		sleepCtx(ctx, lagPollInterval)
	}
}

type lagResult struct {
	Phase           string         `json:"phase"`
	Samples         int            `json:"samples"`
	Visible         int            `json:"visible"`
	Missed          int            `json:"missed"`
	LagMs           latencySummary `json:"lag_ms"`
	PollIntervalMs  float64        `json:"poll_interval_ms"`
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
		LagMs: summarize(t.lags), PollIntervalMs: float64(lagPollInterval.Milliseconds()), LastQueryError: t.queryErr}
	r.Samples = r.Visible + r.Missed
	if t.queries > 0 {
		r.MeanQueryMs = float64((t.queryDur / time.Duration(t.queries)).Microseconds()) / 1000
	}
	t.lags, t.missed, t.queries, t.queryDur, t.queryErr = nil, 0, 0, 0, ""
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
		sleepCtx(ctx, 100*time.Millisecond)
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
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("relay/dispatcher not caught up after %s: %s", limit, last)
}
