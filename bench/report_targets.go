package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// finish computes the ratios, the memory peaks and the targets.
func (r *results) finish() {
	r.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	r.Ratios = nil
	for _, c := range r.Creates {
		rt := ratio{Concurrency: c.Concurrency, CreatesPerSec: round1(c.PerSecond)}
		for _, p := range r.Pgbench {
			if p.Concurrency == c.Concurrency && p.TPS > 0 {
				rt.PgbenchTPS, rt.CreatesOverPgbench = round1(p.TPS), round3(c.PerSecond/p.TPS)
			}
		}
		for _, e := range r.EmptyHandler {
			if e.Concurrency == c.Concurrency && e.PerSecond > 0 {
				rt.EmptyPerSec, rt.CreatesOverEmptyReq = round1(e.PerSecond), round3(c.PerSecond/e.PerSecond)
			}
		}
		r.Ratios = append(r.Ratios, rt)
		r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, c.MaxRSSKB)
	}
	for i := range r.Creates {
		c := &r.Creates[i]
		c.SustainedPerSec = sustained(c.Requests, c.Seconds, c.CatchUpSeconds)
		c.CPUPerCreateMs = cpuPer(c.CPU, c.PerSecond)
	}
	for i := range r.Pgbench {
		r.Pgbench[i].PostgresCPUMsPerTx = msPerOp(r.Pgbench[i].CPU.PostgresPct, r.Pgbench[i].TPS)
	}
	r.finishTraffic()
	if cr := r.CompositeRead; cr != nil {
		for i := range cr.Phases {
			p := &cr.Phases[i]
			p.CPUPerReadMs = cpuPer(p.CPU, p.PerSecond)
			p.EmptyPerSec, p.ReadsOverEmpty = 0, 0
			for _, e := range r.EmptyHandler {
				if e.Concurrency == p.Concurrency && e.PerSecond > 0 {
					p.EmptyPerSec, p.ReadsOverEmpty = round1(e.PerSecond), round3(p.PerSecond/e.PerSecond)
				}
			}
			r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, p.MaxRSSKB)
		}
	}
	if lq := r.ListQuery; lq != nil {
		for i := range lq.Phases {
			p := &lq.Phases[i]
			p.CPUPerQueryMs = cpuPer(p.CPU, p.PerSecond)
			r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, p.MaxRSSKB)
		}
	}

	r.Targets = nil
	add := func(name, target, unit string, found bool, v float64, pass bool) {
		t := targetResult{Name: name, Target: target, Unit: unit, Measured: round1(v), Pass: found && pass}
		if !found {
			t.Target += " (not measured)"
		}
		r.Targets = append(r.Targets, t)
	}
	// detail explains the target just added: the figures it was derived
	// from, failures, what the measurement is not (yet).
	detail := func(format string, args ...any) {
		r.Targets[len(r.Targets)-1].Detail = fmt.Sprintf(format, args...)
	}
	r.createTargets(add, detail)
	if slices.Contains(r.Config.Phases, phasePaced) {
		r.pacedTargets(add, detail)
	}
	if slices.Contains(r.Config.Phases, phaseBatch) {
		r.batchTarget(add, detail)
	}
	if slices.Contains(r.Config.Phases, phaseAutomations) {
		r.automationTarget(add, detail)
	}
	if slices.Contains(r.Config.Phases, phaseWebhooks) {
		r.webhookTarget(add)
	}
	if slices.Contains(r.Config.Phases, phaseReads) {
		r.readTargets(add, detail)
	}
	if slices.Contains(r.Config.Phases, phaseRebuild) {
		r.rebuildTarget(add, detail)
	}
	if slices.Contains(r.Config.Phases, phaseList) {
		byC := map[int]*listPhase{}
		if r.ListQuery != nil {
			for i := range r.ListQuery.Phases {
				byC[r.ListQuery.Phases[i].Concurrency] = &r.ListQuery.Phases[i]
			}
		}
		for _, c := range r.Config.ListConcurrency {
			name := fmt.Sprintf("list p99 at c=%d (%s tickets)", c, thousands(r.Config.ListTickets))
			if p := byC[c]; p != nil && p.Requests+p.Errors > 0 {
				if p.Errors > 0 {
					name = fmt.Sprintf("list p99 at c=%d (%s tickets; %d of %d failed)", c, thousands(r.Config.ListTickets), p.Errors, p.Errors+p.Requests)
				}
				add(name, fmt.Sprintf("< %.0f", listTargetMs(c)), "ms", true, p.LatencyMs.P99, p.Errors == 0 && p.LatencyMs.P99 < listTargetMs(c))
				detail("over every query kind (%s), %d requests; the slowest kind's p99: %s", strings.Join(listKinds, ", "), p.Requests, slowestKind(p.ByKind))
			} else {
				add(name, fmt.Sprintf("< %.0f", listTargetMs(c)), "ms", false, 0, false)
			}
		}
	}
}

// msPerOp is pct of one core's CPU time at rate operations per second, as
// milliseconds per operation.
func msPerOp(pct, rate float64) float64 {
	if rate <= 0 {
		return 0
	}
	return round3(pct / 100 * 1000 / rate)
}

// cpuPer is the CPU split s at rate operations per second, as milliseconds
// per operation by process.
func cpuPer(s cpuSplit, rate float64) cpuPerOp {
	return cpuPerOp{Dev: msPerOp(s.DevPct, rate), Postgres: msPerOp(s.PostgresPct, rate), ClickHouse: msPerOp(s.ClickHousePct, rate),
		Bench: msPerOp(s.LoadGenPct, rate), Machine: msPerOp(s.MachineBusyPct*float64(max(s.Cores, 1)), rate)}
}

// createLevel is the pure-create phase's level at concurrency c, nil if
// it did not run.
func (r *results) createLevel(c int) *createPhase {
	for i := range r.Creates {
		if r.Creates[i].Concurrency == c {
			return &r.Creates[i]
		}
	}
	return nil
}

// createTargets adds the create targets: creates/s at c=64 against durable
// pgbench at c=64 of the same run, and the p99 at c=16 and c=1. Only 201s
// count as creates; the p99 is taken over every request, failed ones
// included, and a level with failed requests misses its latency target.
func (r *results) createTargets(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	failed := func(p *createPhase) string {
		if p.Errors == 0 {
			return "no request failed"
		}
		return fmt.Sprintf("%d of %d requests failed %v", p.Errors, p.Errors+p.Requests, p.ErrorsByKind)
	}

	name := fmt.Sprintf("creates/s at c=%d (201s only)", targetCreatesC)
	ratioTarget := fmt.Sprintf(">= %.2f × durable pgbench tps at c=%d", targetCreatesOverPgbench, targetCreatesC)
	c64 := r.createLevel(targetCreatesC)
	var pgb *pgbenchPhase
	for i := range r.Pgbench {
		if r.Pgbench[i].Concurrency == targetCreatesC && r.Pgbench[i].TPS > 0 {
			pgb = &r.Pgbench[i]
		}
	}
	switch {
	case c64 == nil:
		add(name, ratioTarget, "creates/s", false, 0, false)
	case pgb == nil:
		add(name, ratioTarget, "creates/s", false, c64.PerSecond, false)
		detail("%.0f creates/s (sustained %.0f); no pgbench at c=%d in this run (phase %s)", c64.PerSecond, c64.SustainedPerSec, targetCreatesC, phaseBaselines)
	default:
		want := targetCreatesOverPgbench * pgb.TPS
		add(name, fmt.Sprintf(">= %.0f (%.2f × pgbench %.0f tps)", want, targetCreatesOverPgbench, pgb.TPS), "creates/s", true,
			c64.PerSecond, c64.PerSecond >= want)
		detail("%.0f creates/s ÷ %.0f pgbench tps = %.3f (target %.2f); sustained %.0f creates/s (projection caught up %.1f s after the %.1f s window); %s%s",
			c64.PerSecond, pgb.TPS, c64.PerSecond/pgb.TPS, targetCreatesOverPgbench, c64.SustainedPerSec, c64.CatchUpSeconds, c64.Seconds,
			failed(c64), r.durability())
	}

	for _, lt := range []struct{ c, ms int }{{targetP99C, targetP99Ms}, {targetP99C1, targetP99C1Ms}} {
		name, target := fmt.Sprintf("create p99 at c=%d (all requests)", lt.c), fmt.Sprintf("< %d", lt.ms)
		p := r.createLevel(lt.c)
		if p == nil || p.LatencyMs.N == 0 {
			add(name, target, "ms", false, 0, false)
			continue
		}
		add(name, target, "ms", true, p.LatencyMs.P99, p.Errors == 0 && p.LatencyMs.P99 < float64(lt.ms))
		detail("over %d requests; %s", p.LatencyMs.N, failed(p))
	}
}

// durability names the Postgres settings that make the pgbench baseline
// less than durable, "" when fsync, synchronous_commit and
// full_page_writes are all on.
func (r *results) durability() string {
	var off []string
	for _, k := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		if v := r.Postgres[k]; v != "on" {
			off = append(off, k+"="+v)
		}
	}
	if len(off) == 0 {
		return ""
	}
	return "; NOT durable: " + strings.Join(off, ", ")
}

// slowestKind names the list query kind with the highest p99, and that p99.
func slowestKind(kinds []kindStats) string {
	var worst *kindStats
	for i := range kinds {
		if kinds[i].Requests > 0 && (worst == nil || kinds[i].LatencyMs.P99 > worst.LatencyMs.P99) {
			worst = &kinds[i]
		}
	}
	if worst == nil {
		return "none measured"
	}
	return fmt.Sprintf("%s %.1f ms", worst.Kind, worst.LatencyMs.P99)
}

// readLevel is the composite-read phase at concurrency c, nil if it did
// not run.
func (r *results) readLevel(c int) *readPhase {
	if r.CompositeRead == nil {
		return nil
	}
	for i := range r.CompositeRead.Phases {
		if r.CompositeRead.Phases[i].Concurrency == c {
			return &r.CompositeRead.Phases[i]
		}
	}
	return nil
}

// readTargets adds the composite-read targets: GETs/s at c=64 against the
// static handler serving a body of the same size at c=64 in the same run,
// and the GETs' p99 at c=16, both with 5% writes to the same tickets.
func (r *results) readTargets(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	failed := func(p *readPhase) string {
		if p.Errors == 0 {
			return "no request failed"
		}
		return fmt.Sprintf("%d of %d requests failed %v", p.Errors, p.Errors+p.Requests, p.ErrorsByKind)
	}
	cache := func(p *readPhase) string {
		return fmt.Sprintf("read cache hit rate %.3f (%.0f hits, %.0f delta loads, %.0f misses, %.0f evictions), %.1f reads per version check (check p50/p99 %.2f/%.2f ms), %.1f MB",
			p.Cache.HitRate, p.Cache.Hits, p.Cache.DeltaLoads, p.Cache.Misses, p.Cache.Evictions, p.Cache.ReadsPerCheck, p.Cache.CheckMs.P50, p.Cache.CheckMs.P99, p.Cache.Bytes/(1<<20))
	}
	name := fmt.Sprintf("composite reads/s at c=%d (%d tickets × %d messages, 5%% writes)", targetReadsC, readTickets, readTicketMessages)
	ratioTarget := fmt.Sprintf(">= %.1f × static handler (same body size)", targetReadsOverStatic)
	switch p := r.readLevel(targetReadsC); {
	case p == nil:
		add(name, ratioTarget, "reads/s", false, 0, false)
	case p.Static.PerSecond <= 0:
		add(name, ratioTarget, "reads/s", false, p.Reads.PerSecond, false)
		detail("no static-handler baseline at c=%d in this run", targetReadsC)
	default:
		want := targetReadsOverStatic * p.Static.PerSecond
		add(name, fmt.Sprintf(">= %.0f (%.1f × static handler %.0f req/s, %d-byte body)", want, targetReadsOverStatic, p.Static.PerSecond, r.CompositeRead.ResponseBytes),
			"reads/s", true, p.Reads.PerSecond, p.Errors == 0 && p.Reads.PerSecond >= want)
		detail("%.0f reads/s ÷ %.0f static req/s = %.3f (target %.1f); %.0f writes/s beside them; %s; %s",
			p.Reads.PerSecond, p.Static.PerSecond, p.ReadsOverStatic, targetReadsOverStatic, p.Writes.PerSecond, cache(p), failed(p))
	}
	name = fmt.Sprintf("composite read p99 at c=%d (GETs, 5%% writes beside them)", targetReadP99C)
	target := fmt.Sprintf("< %d", targetReadP99Ms)
	if p := r.readLevel(targetReadP99C); p != nil && p.Reads.LatencyMs.N > 0 {
		add(name, target, "ms", true, p.Reads.LatencyMs.P99, p.Errors == 0 && p.Reads.LatencyMs.P99 < targetReadP99Ms)
		detail("over %d reads; writes p99 %.2f ms; %s; %s", p.Reads.LatencyMs.N, p.Writes.LatencyMs.P99, cache(p), failed(p))
	} else {
		add(name, target, "ms", false, 0, false)
	}
}
