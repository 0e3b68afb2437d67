package main

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

type bench struct {
	o   options
	res *results
	// The run's environment: dev on the bench databases, which the creates,
	// automations, reads, baselines and list phases share.
	*phaseEnv
	tmp   string
	procs *procWatch

	created      uint64 // 201s received from dev so far, warm-ups included
	demoTicketID string // the composite-read ticket, once created
}

func (b *bench) runPhases(ctx context.Context) error {
	bodies := makeBodies(bodyPool)
	b.res.RequestBodyBytes = avgLen(bodies)
	b.res.InProcess = measureInProcess(bodies)
	maxC := max(slices.Max(b.o.concurrency), slices.Max(b.o.listConcurrency), b.o.automationConcurrency, b.o.mixConcurrency, batchConcurrency)
	client := newClient(max(maxC, 32))
	defer client.CloseIdleConnections()
	metricsClient := newClient(2)
	defer metricsClient.CloseIdleConnections()
	if b.procs.pgPid == 0 || b.procs.chPid == 0 {
		b.res.note("could not find the Postgres (pid %d) or ClickHouse (pid %d) server process by its port; their CPU share is counted as other", b.procs.pgPid, b.procs.chPid)
	}

	b.res.Memory.StartRSSKB, _ = memory(b.dev.pid)
	raised := []string{helpdeskflow.RateTicketsCreate, helpdeskflow.RateTicketsUpdate, helpdeskflow.RateTicketsRead}
	if err := raiseLimits(ctx, client, b.dev.url, b.dev.key, raised...); err != nil {
		return err
	}
	b.res.note("the demo workspace's %s rate limits are raised to %d per second (PUT /v1/rate-limits): every request still goes through the limiter, which never refuses",
		strings.Join(raised, ", "), maxRateLimit)

	// In allPhases's order. The list phase comes late: its million rows and
	// slow queries leave ClickHouse busy (merges, queries of cancelled
	// requests) for a while afterwards. The webhooks and mail phases run in
	// this process, each on a database of its own, while dev is idle.
	phases := map[string]func() error{
		phaseCreates:     func() error { return b.runCreates(ctx, client, metricsClient, bodies) },
		phaseMix:         func() error { return b.runMix(ctx, client, metricsClient, bodies) },
		phasePaced:       func() error { return b.runPaced(ctx, metricsClient, bodies) },
		phaseBatch:       func() error { return b.runBatch(ctx, client, metricsClient, bodies) },
		phaseAutomations: func() error { return b.runAutomations(ctx, client, metricsClient, bodies) },
		phaseWebhooks:    func() error { return b.runWebhooks(ctx) },
		phaseReads:       func() error { return b.runCompositeRead(ctx, client, metricsClient, bodies) },
		phaseBaselines:   func() error { return b.runBaselines(ctx, client, bodies) },
		phaseList:        func() error { return b.runListQuery(ctx, client, metricsClient, bodies) },
		phaseMail:        func() error { return b.runMail(ctx) },
		phaseRebuild:     func() error { return b.runRebuild(ctx) },
		phaseAnalytics:   func() error { return b.runAnalytics(ctx) },
		phaseCapacity:    func() error { return b.runCapacity(ctx, bodies) },
	}
	for _, name := range allPhases {
		if b.o.phases.has(name) {
			if err := phases[name](); err != nil {
				return err
			}
		}
	}

	b.res.Memory.EndRSSKB, b.res.Memory.EndHWMKB = memory(b.dev.pid)
	if ts, err := tableStats(ctx, b.pg); err == nil {
		b.res.PostgresTables = ts
	}
	return nil
}

// runCreates is the projection lag at a steady rate, then ticket creates
// at each concurrency (one of them also sampling the lag under load).
func (b *bench) runCreates(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	metricsURL := b.dev.url + "/metrics"
	devTarget := target{url: b.dev.url + "/v1/tickets", key: b.dev.key, wantStatus: 201}
	cores := runtime.NumCPU()
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	tracker := b.startLagTracker(tctx)

	// 1. Projection lag at a steady moderate rate, on the fresh system.
	logf("projection lag: %d creates at %.0f/s", b.o.lagSamples, b.o.lagRate)
	steady := time.Duration(float64(b.o.lagSamples) / b.o.lagRate * float64(time.Second))
	st := runOpenLoop(ctx, b.o.lagRate, 0, steady, openLoopMaxInFlight, func(start time.Time) *sampler {
		return newSampler(start, 0, b.o.lagSamples, tracker.add) // every create, up to -lag-samples
	}, createAt(client, devTarget, bodies))
	b.created += uint64(st.Requests)
	if err := ctx.Err(); err != nil {
		return err
	}
	tracker.wait(ctx)
	lr := tracker.result(fmt.Sprintf("steady %.0f creates/s", b.o.lagRate))
	lr.CreatesPerSec, lr.CreateLatencyMs = st.PerSecond, st.LatencyMs
	b.res.ProjectionLag = append(b.res.ProjectionLag, lr)
	if _, _, err := settle(ctx, b.ch, b.chDB, b.created, b.o.settleTimeout); err != nil {
		b.res.note("after the steady lag phase: %v", err)
	}

	// 2. Ticket creates at each concurrency.
	sampledUnderLoad := false
	for _, c := range b.o.concurrency {
		logf("creates: c=%d, %s warm-up + %s", c, b.o.warmup, b.o.duration)
		var smp func(time.Time) *sampler
		if c == b.o.lagConcurrency {
			sampledUnderLoad = true
			smp = func(start time.Time) *sampler { return newSampler(start, b.o.duration, b.o.lagSamples, tracker.add) }
		}
		before, berr := scrape(ctx, metricsClient, metricsURL)
		mon := startMonitor(ctx, metricsClient, metricsURL, b.dev.pid)
		topc := make(chan []string, 1)
		go func() {
			poll.Sleep(ctx, b.o.warmup+b.o.duration/2-time.Second)
			topc <- topSnapshot(ctx)
		}()
		// The CPU split and the Postgres figures cover the measured window only.
		var cpu0 cpuSnap
		var pg0 pgDBStats
		var pg0Err error
		cpuReady := make(chan struct{})
		go func() {
			poll.Sleep(ctx, b.o.warmup)
			cpu0 = b.procs.snap()
			pg0, pg0Err = readPgDBStats(ctx, b.pg)
			close(cpuReady)
		}()
		pgs := startPgSampler(ctx, b.pg, b.o.warmup)
		ls := runLoad(ctx, client, devTarget, bodies, c, b.o.warmup, b.o.duration, smp)
		loadEnd := time.Now()
		<-cpuReady
		cpu1 := b.procs.snap()
		act := pgs.finish()
		pg1, pg1Err := readPgDBStats(ctx, b.pg)
		maxRSS, gauges, monErr := mon.finish()
		after, aerr := scrape(ctx, metricsClient, metricsURL)
		b.created += uint64(ls.Requests + ls.WarmupRequests)

		p := createPhase{loadStats: ls, CPU: split(cpu0, cpu1, cores), MaxRSSKB: maxRSS, Top: <-topc}
		p.Postgres.Activity = act
		if pg0Err == nil && pg1Err == nil {
			p.Postgres.Delta = pg1.since(pg0)
			if ls.Requests > 0 {
				p.Postgres.CommitsPerCreate = round3(p.Postgres.Delta.Commits / float64(ls.Requests))
				p.Postgres.RowsReadPerCreate = round3(p.Postgres.Delta.Returned / float64(ls.Requests))
			}
		} else {
			p.Postgres.Error = fmt.Sprint(pg0Err, " / ", pg1Err)
		}
		if berr == nil && aerr == nil {
			p.Server = diffServer(before, after)
		} else {
			p.Server.ScrapeError = fmt.Sprint(berr, " / ", aerr)
		}
		p.Server.MaxRelayLagEvents, p.Server.MaxRelayLagSeconds = gauges.MaxRelayLagEvents, gauges.MaxRelayLagSeconds
		p.Server.MaxProjectorLag, p.Server.MaxDispatchLag = gauges.MaxProjectorLag, gauges.MaxDispatchLag
		p.Server.MaxOldestTxAgeSecond, p.Server.MaxGoroutines = gauges.MaxOldestTxAgeSecond, gauges.MaxGoroutines
		if monErr != "" && p.Server.ScrapeError == "" {
			p.Server.ScrapeError = monErr
		}
		if smp != nil {
			tracker.wait(ctx)
			lr := tracker.result(fmt.Sprintf("under load, c=%d", c))
			lr.CreatesPerSec, lr.CreateLatencyMs = ls.PerSecond, ls.LatencyMs
			b.res.ProjectionLag = append(b.res.ProjectionLag, lr)
		}
		cu := b.catchUp(ctx, metricsClient, loadEnd, fmt.Sprintf("creates c=%d", c))
		p.CatchUpSeconds, p.DispatchCatchUpSeconds, p.ProjectedTickets = cu.seconds, cu.dispatchSeconds, cu.projected
		p.RSSAfterKB, _ = memory(b.dev.pid)
		b.disturbance(fmt.Sprintf("creates c=%d", c), p.CPU, act.AvgOtherDBs)
		b.res.Creates = append(b.res.Creates, p)
		logf("creates c=%d: %.0f/s, p50 %.1f ms, p99 %.1f ms, errors %d; projection caught up %.1f s after the load", c, ls.PerSecond,
			ls.LatencyMs.P50, ls.LatencyMs.P99, ls.Errors, cu.seconds)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if !sampledUnderLoad {
		b.res.note("-lag-concurrency %d is not one of -concurrency: no projection lag under load", b.o.lagConcurrency)
	}
	tcancel()
	b.res.Memory.AfterLoadRSSKB, b.res.Memory.AfterLoadHWMKB = memory(b.dev.pid)
	b.res.ReadModel.Created = b.created
	if n, err := projectedTickets(ctx, b.ch, b.chDB); err == nil {
		b.res.ReadModel.Projected = n
	}
	return nil
}

// startLagTracker starts a projection lag tracker of the demo workspace's
// tickets, probing until ctx ends.
func (b *bench) startLagTracker(ctx context.Context) *lagTracker {
	tracker := newLagTracker(b.ch, b.chDB, func(ctx context.Context, ticketID string) (string, error) {
		return b.pg.queryString(ctx, "SELECT workspace_id::text FROM streams WHERE id = $1", ticketID)
	})
	go tracker.run(ctx)
	return tracker
}

// caughtUp is how long the pipeline took to catch up after a load.
type caughtUp struct {
	seconds         float64 // from the end of the load until the read model held every ticket created so far
	dispatchSeconds float64 // then until the relay and the dispatcher had handled every event
	projected       uint64  // tickets in the read model then
}

// catchUp waits until the projection has caught up with every ticket
// created so far (b.created) and the relay and dispatcher with every
// event, so that a backlog does not steal the next phase's CPU; how long
// the projection took, from loadEnd, is itself a figure (the sustained
// rate's denominator). A limit reached is noted, naming what.
func (b *bench) catchUp(ctx context.Context, metricsClient *nethttp.Client, loadEnd time.Time, what string) caughtUp {
	_, have, err := settle(ctx, b.ch, b.chDB, b.created, b.o.settleTimeout)
	cu := caughtUp{seconds: round3(time.Since(loadEnd).Seconds()), projected: have}
	if err != nil {
		b.res.note("after %s: %v", what, err)
	}
	dd, err := drainPipeline(ctx, metricsClient, b.dev.url+"/metrics", 30*time.Second)
	cu.dispatchSeconds = round3(dd.Seconds())
	if err != nil {
		b.res.note("after %s: %v", what, err)
	}
	return cu
}

// sustained is n operations over the window and the time the projection
// took to catch up after it, per second: what the system sustains end to
// end, not only what the API accepts.
func sustained(n int64, windowSeconds, catchUpSeconds float64) float64 {
	if windowSeconds+catchUpSeconds <= 0 {
		return 0
	}
	return round1(float64(n) / (windowSeconds + catchUpSeconds))
}

// runBaselines measures pgbench and the empty handler at each concurrency.
func (b *bench) runBaselines(ctx context.Context, client *nethttp.Client, bodies [][]byte) error {
	cores := runtime.NumCPU()

	// 3. Baseline: pgbench, one INSERT + COMMIT per transaction.
	pgb, err := pgbenchPath(b.o.pgbench)
	if err != nil {
		b.res.note("pgbench baseline skipped: %v", err)
	} else if err := b.pg.exec(ctx, scratchTable); err != nil {
		b.res.note("pgbench baseline skipped: create scratch table: %v", err)
	} else {
		for _, c := range b.o.concurrency {
			logf("pgbench: c=%d, %s", c, b.o.duration)
			cpu0 := b.procs.snap()
			r := runPgbench(ctx, pgb, b.tmp, b.pg, c, b.o.duration)
			// Let the postmaster reap pgbench's backends, so their CPU time
			// has moved into its children's total before the snapshot.
			poll.Sleep(ctx, 500*time.Millisecond)
			cpu := split(cpu0, b.procs.snap(), cores)
			b.disturbance(fmt.Sprintf("pgbench c=%d", c), cpu, 0)
			b.res.Pgbench = append(b.res.Pgbench, pgbenchPhase{pgbenchResult: r, CPU: cpu})
			logf("pgbench c=%d: %.0f tps, p50 %.2f ms, p99 %.2f ms", c, r.TPS, r.LatencyMs.P50, r.LatencyMs.P99)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	// 4. Baseline: an empty net/http handler, same load generator, same bodies.
	srv, err := startEmptyServer()
	if err != nil {
		b.res.note("empty-handler baseline skipped: %v", err)
	} else {
		defer srv.close()
		for _, c := range b.o.concurrency {
			logf("empty handler: c=%d, %s warm-up + %s", c, b.o.warmup, b.o.duration)
			var cpu0 cpuSnap
			cpuReady := make(chan struct{})
			go func() {
				poll.Sleep(ctx, b.o.warmup)
				cpu0 = b.procs.snap()
				close(cpuReady)
			}()
			ls := runLoad(ctx, client, target{url: srv.url, wantStatus: 201}, bodies, c, b.o.warmup, b.o.duration, nil)
			<-cpuReady
			cpu := split(cpu0, b.procs.snap(), cores)
			b.disturbance(fmt.Sprintf("empty handler c=%d", c), cpu, 0)
			b.res.EmptyHandler = append(b.res.EmptyHandler, emptyPhase{loadStats: ls, CPU: cpu})
			logf("empty handler c=%d: %.0f req/s, p50 %.2f ms, p99 %.2f ms", c, ls.PerSecond, ls.LatencyMs.P50, ls.LatencyMs.P99)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// disturbance notes a phase during which processes outside the benchmark
// (or other databases on the shared Postgres server) took a noticeable share
// of the machine.
func (b *bench) disturbance(phase string, cpu cpuSplit, otherDBBackends float64) {
	if cpu.disturbed() {
		b.res.note("%s: processes outside the benchmark used %.0f%% of a core (%s); its figures are unreliable",
			phase, cpu.OtherPct, strings.Join(cpu.OtherTop, ", "))
	}
	if otherDBBackends >= 1 {
		b.res.note("%s: on average %.1f busy backends of other databases shared the Postgres server", phase, otherDBBackends)
	}
}

// maxRateLimit is the limit the benchmark sets on the categories it
// loads: the largest the API accepts, per one-second window.
const maxRateLimit = helpdeskflow.MaxRateLimit

// raiseLimits sets the workspace's limit of each category to maxRateLimit
// per second, so the load measures the service and not the default limits
// (per minute: 1,200 creates and updates, 3,000 reads).
func raiseLimits(ctx context.Context, client *nethttp.Client, baseURL, key string, categories ...string) error {
	limits := map[string]map[string]int{}
	for _, c := range categories {
		limits[c] = map[string]int{"limit": maxRateLimit, "window_seconds": 1}
	}
	body, err := json.Marshal(map[string]any{"limits": limits})
	if err != nil {
		return err
	}
	what := strings.Join(categories, ", ")
	status, raw, err := send(ctx, client, "PUT", baseURL+"/v1/rate-limits", key, body)
	if err != nil {
		return fmt.Errorf("raise the %s rate limits: %w", what, err)
	}
	if status != nethttp.StatusOK {
		return fmt.Errorf("raise the %s rate limits: %d %s", what, status, trimBody(raw))
	}
	return nil
}
