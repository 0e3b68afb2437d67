package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	nethttp "net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// The seeded read model of the list phase.
const (
	listBatchRows     = 100_000
	listCustomers     = 100_000
	listOtherSpaces   = 9    // other workspaces sharing the table
	listDemoShare     = 0.9  // of the seeded tickets, in the demo workspace
	listUnassignedPct = 0.15 // tickets with no team
	listHistoryDays   = 180  // updated_at spreads over this many days before now
	listPagesPerWalk  = 3    // a next_cursor walk reads this many pages
)

var (
	listTeams = []string{"billing", "shipping", "returns", "tech-support", "accounts", "onboarding", "enterprise", "vip-desk",
		"payments", "logistics", "warranty", "mobile-app", "web-shop", "partners", "escalations", "emea", "americas", "apac",
		"night-shift", "tier-2"}
	// listTags is the tag vocabulary, most used first (weights fall as 1/rank).
	listTags = []string{"refund", "billing", "shipping", "login", "bug", "feature-request", "vip", "invoice", "damaged", "mobile",
		"password-reset", "delivery-delay", "wrong-item", "missing-item", "cancellation", "subscription", "upgrade", "downgrade",
		"discount", "coupon", "gdpr", "data-export", "account-locked", "2fa", "api", "integration", "webhook", "performance",
		"outage", "android", "ios", "desktop", "checkout", "payment-failed", "chargeback", "tax", "vat", "address-change",
		"gift-card", "loyalty", "warranty", "repair", "replacement", "spare-parts", "manual", "installation", "compatibility",
		"feedback", "complaint", "praise"}
	listTypes    = weighted[string]{{"question", 60}, {"incident", 20}, {"problem", 10}, {"task", 10}}
	listChannels = weighted[string]{{"email", 50}, {"web", 25}, {"api", 15}, {"chat", 10}}
	listPriority = weighted[string]{{"low", 20}, {"normal", 55}, {"high", 18}, {"urgent", 7}}
	listTagCount = weighted[int]{{0, 15}, {1, 30}, {2, 25}, {3, 15}, {4, 10}, {5, 5}}
	// Recently updated tickets are mostly open; older ones mostly done.
	listRecentStatus = weighted[string]{{"new", 15}, {"open", 35}, {"pending", 20}, {"on_hold", 5}, {"solved", 20}, {"closed", 5}}
	listOldStatus    = weighted[string]{{"new", 1}, {"open", 4}, {"pending", 3}, {"on_hold", 2}, {"solved", 20}, {"closed", 70}}
)

// weighted is a discrete distribution.
type weighted[T any] []struct {
	v T
	w int
}

func (d weighted[T]) pick(r *rand.Rand) T {
	total := 0
	for _, e := range d {
		total += e.w
	}
	n := r.IntN(total)
	for _, e := range d {
		if n < e.w {
			return e.v
		}
		n -= e.w
	}
	return d[len(d)-1].v
}

// listQuery is the list phase: GET /v1/tickets against a read model of a
// million projected tickets, with a mix of filters and keyset pages.
type listQuery struct {
	SeededTickets    int     `json:"seeded_tickets"`
	Workspaces       int     `json:"workspaces"`
	DemoWorkspace    string  `json:"demo_workspace_id"`
	DemoTickets      uint64  `json:"demo_workspace_tickets_final"` // count() … FINAL, the bench's own creates included
	TableRows        uint64  `json:"table_rows"`
	InsertSeconds    float64 `json:"insert_seconds"`
	InsertRowsPerSec float64 `json:"insert_rows_per_second"`
	MergeWaitSeconds float64 `json:"merge_wait_seconds"`
	ActiveParts      uint64  `json:"active_parts_at_load"`
	ActivePartsList  uint64  `json:"active_parts_at_load_tickets_by_created"`
	ActivePartsCust  uint64  `json:"active_parts_at_load_tickets_by_customer"`
	// ServerTime is ClickHouse's own time per query kind, read from
	// system.query_log for requests the bench sends through the reader
	// one at a time after the load.
	ServerTime       []kindServerTime `json:"clickhouse_time_by_kind"`
	PagesPerWalk     int              `json:"pages_per_next_cursor_walk"`
	DurationSeconds  float64          `json:"duration_seconds"`
	WarmupSeconds    float64          `json:"warmup_seconds_first_level"`
	UpdatedAfterDays int              `json:"updated_after_days"`
	QueryKinds       []string         `json:"query_kinds"`
	Phases           []listPhase      `json:"phases"`
}

// listPhase is the list load at one concurrency.
type listPhase struct {
	loadStats
	ByKind []kindStats `json:"by_kind"`
	// ServerMs is the dev process's own latency of GET /v1/tickets
	// (bucket-interpolated), warm-up included.
	ServerMs      histSummary `json:"server_ms"`
	CPU           cpuSplit    `json:"cpu"`
	CPUPerQueryMs cpuPerOp    `json:"cpu_ms_per_query"`
	// DrainSeconds is how long ClickHouse still ran list queries after the
	// load generator stopped.
	DrainSeconds float64 `json:"clickhouse_drain_seconds"`
	MaxRSSKB     uint64  `json:"max_rss_kb"`
}

// kindStats is one kind of list query within a phase.
type kindStats struct {
	Kind      string         `json:"kind"`
	Requests  int            `json:"requests"`
	PerSecond float64        `json:"per_second"`
	LatencyMs latencySummary `json:"latency_ms"`
	// RowsPerPage is the mean number of tickets a page returned
	// (warm-up included): 25 unless the filter matches fewer.
	RowsPerPage float64 `json:"rows_per_page"`
}

// Query kinds of the list mix, in the order they are reported.
const (
	kindNone         = "no filter"
	kindStatus       = "status=open"
	kindPriorityTag  = "priority=high&tag"
	kindTeam         = "team"
	kindCustomer     = "customer_id"
	kindUpdatedAfter = "updated_after (30 days)"
	kindNextPage     = "next_cursor (pages 2-3)"
	kindDeepPage     = "page 20 (none, status=open)"
)

var listKinds = []string{kindNone, kindStatus, kindPriorityTag, kindTeam, kindCustomer, kindUpdatedAfter, kindNextPage, kindDeepPage}

// The list targets: p99 over every query kind, at c=1 and at the other
// levels (c=16); targetListP99Ms (report.go) is the latter.
const (
	targetListP99C1Ms = 100
	listDeepPage      = 20 // the page kindDeepPage reads
)

// listTargetMs is the list p99 target at concurrency c.
func listTargetMs(c int) float64 {
	if c == 1 {
		return targetListP99C1Ms
	}
	return targetListP99Ms
}

// listSeed is what the seeding generated that the queries need.
type listSeed struct {
	customers []uuid.UUID // the first demoCusts are the demo workspace's
	demoCusts int
	now       time.Time
	// deepPages are queries of page listDeepPage (their cursor found by
	// walking the pages before it once): no filter, and status=open.
	deepPages []url.Values
}

// runListQuery seeds the read model and loads GET /v1/tickets at each
// list concurrency.
func (b *bench) runListQuery(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	ws, err := b.demoWorkspace(ctx, client, bodies)
	if err != nil {
		return fmt.Errorf("list query: %w", err)
	}
	r := &listQuery{SeededTickets: b.o.listTickets, Workspaces: 1 + listOtherSpaces, DemoWorkspace: ws.String(),
		PagesPerWalk: listPagesPerWalk, UpdatedAfterDays: 30, QueryKinds: listKinds,
		DurationSeconds: b.o.listDuration.Seconds(), WarmupSeconds: b.o.warmup.Seconds()}
	b.res.ListQuery = r
	logf("list query: inserting %d tickets into %s.tickets (demo workspace %s)", b.o.listTickets, b.chDB, ws)
	start := time.Now()
	seed, err := b.seedTickets(ctx, ws, b.o.listTickets)
	if err != nil {
		return fmt.Errorf("list query: %w", err)
	}
	r.InsertSeconds = round3(time.Since(start).Seconds())
	r.InsertRowsPerSec = math.Round(float64(b.o.listTickets) / max(r.InsertSeconds, 1e-9))
	start = time.Now()
	if err := b.waitMerges(ctx, 120*time.Second); err != nil {
		b.res.note("list query: %v", err)
	}
	r.MergeWaitSeconds = round3(time.Since(start).Seconds())
	tbl := b.chDB + ".tickets"
	qctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := b.ch.QueryRow(qctx, "SELECT count() FROM "+tbl).Scan(&r.TableRows); err != nil {
		return fmt.Errorf("list query: count rows: %w", err)
	}
	// The reader's own view: FINAL, the demo workspace only.
	if err := b.ch.QueryRow(qctx, "SELECT count() FROM "+tbl+" FINAL WHERE workspace_id = toUUID(?)", ws.String()).Scan(&r.DemoTickets); err != nil {
		return fmt.Errorf("list query: count the demo workspace's tickets: %w", err)
	}
	if want := uint64(float64(b.o.listTickets) * listDemoShare * 0.98); r.DemoTickets < want {
		return fmt.Errorf("list query: the reader would see %d tickets in the demo workspace, want at least %d", r.DemoTickets, want)
	}
	r.ActiveParts = b.activeParts(ctx, "tickets")
	r.ActivePartsList = b.activeParts(ctx, "tickets_by_created")
	r.ActivePartsCust = b.activeParts(ctx, "tickets_by_customer")
	logf("list query: inserted in %.1f s (%.0f rows/s), merges settled after %.1f s, %d + %d + %d active parts; %d rows, %d in the demo workspace (FINAL)",
		r.InsertSeconds, r.InsertRowsPerSec, r.MergeWaitSeconds, r.ActiveParts, r.ActivePartsList, r.ActivePartsCust, r.TableRows, r.DemoTickets)

	metricsURL := b.dev.url + "/metrics"
	base := b.dev.url + "/v1/tickets"
	// A query takes seconds rather than milliseconds: the client waits
	// for it rather than turning it into a timeout.
	listClient := newClient(max(slices.Max(b.o.listConcurrency), 2))
	listClient.Timeout = 2 * time.Minute
	defer listClient.CloseIdleConnections()
	for _, q := range []url.Values{{}, {"status": {"open"}}} {
		deep, err := deepPage(ctx, listClient, base, b.dev.key, q, listDeepPage)
		if err != nil {
			return fmt.Errorf("list query: %w", err)
		}
		seed.deepPages = append(seed.deepPages, deep)
	}
	for i, c := range b.o.listConcurrency {
		// Only the first level warms up: a warm-up request of a later level
		// would run past the warm-up and leave its worker nothing to measure.
		warmup := b.o.warmup
		if i > 0 {
			warmup = 0
		}
		logf("list query: c=%d, %s warm-up + %s", c, warmup, b.o.listDuration)
		workers := make([]*listWorker, c)
		for i := range workers {
			workers[i] = newListWorker(i, seed, base, b.dev.key)
		}
		w := b.openWindow(ctx, metricsClient, metricsURL, warmup)
		ls, byLabel := runClosedLoop(ctx, c, warmup, b.o.listDuration, nil, func(ctx context.Context, i int) outcome {
			return workers[i].next(ctx, listClient)
		})
		ws := w.close(ctx)
		p := listPhase{loadStats: ls, ServerMs: ws.serverLatency("GET", "/v1/tickets"), CPU: ws.CPU, MaxRSSKB: ws.MaxRSSKB}
		for _, k := range listKinds {
			ks := kindStats{Kind: k, Requests: len(byLabel[k].ok()), LatencyMs: summarize(byLabel[k].ok())}
			if ls.Seconds > 0 {
				ks.PerSecond = round1(float64(ks.Requests) / ls.Seconds)
			}
			var rows, pages int
			for _, w := range workers {
				rows += w.rows[k]
				pages += w.pages[k]
			}
			if pages > 0 {
				ks.RowsPerPage = round1(float64(rows) / float64(pages))
			}
			p.ByKind = append(p.ByKind, ks)
		}
		// Requests the client gave up on may still run in ClickHouse;
		// the next phase should not share the machine with them.
		d, err := b.waitListQueries(ctx, 60*time.Second)
		p.DrainSeconds = round3(d.Seconds())
		if err != nil {
			b.res.note("after list query c=%d: %v", c, err)
		}
		if ls.Errors > 0 {
			b.res.note("list query c=%d: %d of %d requests failed (%v); the first: %s", c, ls.Errors, ls.Errors+ls.Requests, ls.ErrorsByKind, ls.FirstError)
		}
		b.disturbance(fmt.Sprintf("list query c=%d", c), p.CPU, ws.Activity.AvgOtherDBs)
		r.Phases = append(r.Phases, p)
		logf("list query c=%d: %.0f queries/s, p50 %.1f ms, p99 %.1f ms, errors %d", c, ls.PerSecond,
			ls.LatencyMs.P50, ls.LatencyMs.P99, ls.Errors)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if r.ServerTime, err = b.listServerTime(ctx, ws, seed); err != nil {
		b.res.note("list query: ClickHouse time by kind: %v", err)
	}
	return nil
}

// demoWorkspace finds the id of the workspace of the dev process's demo
// key: the API shows no workspace ids, so it reads it from the projected
// row of a ticket the key created (the composite-read ticket, or a new one).
func (b *bench) demoWorkspace(ctx context.Context, client *nethttp.Client, bodies [][]byte) (uuid.UUID, error) {
	id := b.demoTicketID
	if id == "" {
		var err error
		if id, err = createTicket(ctx, client, b.dev.url, b.dev.key, bodies[1]); err != nil {
			return uuid.Nil, err
		}
		b.created++
		b.demoTicketID = id
	}
	deadline := time.Now().Add(b.o.settleTimeout)
	var lastErr error
	for i := 0; i < 100000 && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		ws, err := b.workspaceOf(ctx, id)
		if err == nil && ws != uuid.Nil {
			return ws, nil
		}
		lastErr = err
		poll.Sleep(ctx, 100*time.Millisecond)
	}
	return uuid.Nil, fmt.Errorf("ticket %s not projected within %s (%v), so the demo workspace id is unknown", id, b.o.settleTimeout, lastErr)
}

// workspaceOf is the workspace of ticket id in the read model, uuid.Nil
// while it is not projected.
func (b *bench) workspaceOf(ctx context.Context, id string) (uuid.UUID, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := b.ch.Query(ctx, "SELECT workspace_id FROM "+b.chDB+".tickets WHERE ticket_id = toUUID(?) LIMIT 1", id)
	if err != nil {
		return uuid.Nil, err
	}
	defer rows.Close()
	var ws uuid.UUID
	for rows.Next() {
		if err := rows.Scan(&ws); err != nil {
			return uuid.Nil, err
		}
	}
	return ws, rows.Err()
}
