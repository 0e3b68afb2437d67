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
	perOp := func(pct, rate float64) float64 {
		if rate <= 0 {
			return 0
		}
		return round3(pct / 100 * 1000 / rate)
	}
	for i := range r.Creates {
		c := &r.Creates[i]
		c.CPUPerCreateMs = cpuPerOp{Dev: perOp(c.CPU.DevPct, c.PerSecond), Postgres: perOp(c.CPU.PostgresPct, c.PerSecond),
			ClickHouse: perOp(c.CPU.ClickHousePct, c.PerSecond), Bench: perOp(c.CPU.LoadGenPct, c.PerSecond),
			Machine: perOp(c.CPU.MachineBusyPct*float64(max(c.CPU.Cores, 1)), c.PerSecond)}
	}
	for i := range r.Pgbench {
		r.Pgbench[i].PostgresCPUMsPerTx = perOp(r.Pgbench[i].CPU.PostgresPct, r.Pgbench[i].TPS)
	}
	cpuPer := func(s cpuSplit, rate float64) cpuPerOp {
		return cpuPerOp{Dev: perOp(s.DevPct, rate), Postgres: perOp(s.PostgresPct, rate), ClickHouse: perOp(s.ClickHousePct, rate),
			Bench: perOp(s.LoadGenPct, rate), Machine: perOp(s.MachineBusyPct*float64(max(s.Cores, 1)), rate)}
	}
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
	r.lagTargets(add, detail)
	if slices.Contains(r.Config.Phases, phaseAutomations) {
		r.automationTarget(add)
	}
	if slices.Contains(r.Config.Phases, phaseWebhooks) {
		r.webhookTarget(add)
	}
	if slices.Contains(r.Config.Phases, phaseReads) {
		var found *readPhase
		if r.CompositeRead != nil {
			for i := range r.CompositeRead.Phases {
				if r.CompositeRead.Phases[i].Concurrency == targetReadsC {
					found = &r.CompositeRead.Phases[i]
				}
			}
		}
		name, target := fmt.Sprintf("composite reads/s at c=%d (50 messages)", targetReadsC), fmt.Sprintf(">= %d", targetReadsPerSec)
		if found != nil {
			if found.Errors > 0 {
				name = fmt.Sprintf("composite reads/s at c=%d (50 messages; %d failed)", targetReadsC, found.Errors)
			}
			add(name, target, "reads/s", true, found.PerSecond, found.Errors == 0 && found.PerSecond >= targetReadsPerSec)
		} else {
			add(name, target, "reads/s", false, 0, false)
		}
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
				add(name, fmt.Sprintf("< %d", targetListP99Ms), "ms", true, p.LatencyMs.P99, p.Errors == 0 && p.LatencyMs.P99 < targetListP99Ms)
			} else {
				add(name, fmt.Sprintf("< %d", targetListP99Ms), "ms", false, 0, false)
			}
		}
	}
}

// createTargets adds the create targets: creates/s at c=64 against durable
// pgbench at c=64 of the same run, and the p99 at c=16 and c=1. Only 201s
// count as creates; the p99 is taken over every request, failed ones
// included, and a level with failed requests misses its latency target.
func (r *results) createTargets(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	level := func(c int) *createPhase {
		for i := range r.Creates {
			if r.Creates[i].Concurrency == c {
				return &r.Creates[i]
			}
		}
		return nil
	}
	failed := func(p *createPhase) string {
		if p.Errors == 0 {
			return "no request failed"
		}
		return fmt.Sprintf("%d of %d requests failed %v", p.Errors, p.Errors+p.Requests, p.ErrorsByKind)
	}

	name := fmt.Sprintf("creates/s at c=%d (201s only)", targetCreatesC)
	ratioTarget := fmt.Sprintf(">= %.2f × durable pgbench tps at c=%d", targetCreatesOverPgbench, targetCreatesC)
	c64 := level(targetCreatesC)
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
		detail("%.0f creates/s; no pgbench at c=%d in this run (phase %s)", c64.PerSecond, targetCreatesC, phaseBaselines)
	default:
		want := targetCreatesOverPgbench * pgb.TPS
		add(name, fmt.Sprintf(">= %.0f (%.2f × pgbench %.0f tps)", want, targetCreatesOverPgbench, pgb.TPS), "creates/s", true,
			c64.PerSecond, c64.PerSecond >= want)
		detail("%.0f creates/s ÷ %.0f pgbench tps = %.3f (target %.2f); %s%s", c64.PerSecond, pgb.TPS, c64.PerSecond/pgb.TPS,
			targetCreatesOverPgbench, failed(c64), r.durability())
	}

	for _, lt := range []struct{ c, ms int }{{targetP99C, targetP99Ms}, {targetP99C1, targetP99C1Ms}} {
		name, target := fmt.Sprintf("create p99 at c=%d (all requests)", lt.c), fmt.Sprintf("< %d", lt.ms)
		p := level(lt.c)
		if p == nil || p.LatencyMs.N == 0 {
			add(name, target, "ms", false, 0, false)
			continue
		}
		add(name, target, "ms", true, p.LatencyMs.P99, p.Errors == 0 && p.LatencyMs.P99 < float64(lt.ms))
		detail("over %d requests; %s", p.LatencyMs.N, failed(p))
	}
}

// lagTargets adds a projection lag target per lag measurement. Neither is
// yet the measurement (an open-loop 2,000 creates/s): the steady
// phase is paced at -lag-rate, the other samples a closed-loop level.
func (r *results) lagTargets(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	for _, l := range r.ProjectionLag {
		ok := l.Visible > 0 && l.Missed == 0
		add("projection lag p99 ("+l.Phase+")", fmt.Sprintf("< %d", targetLagP99Ms), "ms", l.Visible > 0, l.LagMs.P99, ok && l.LagMs.P99 < targetLagP99Ms)
		how := fmt.Sprintf("closed loop at %.0f creates/s", l.CreatesPerSec)
		if strings.HasPrefix(l.Phase, "steady") {
			how = fmt.Sprintf("paced at %.0f creates/s (-lag-rate)", r.Config.LagRate)
		}
		detail("%s; pacing at %s/s not built yet; %d of %d samples visible, %d missed", how, thousands(targetLagPacedRate),
			l.Visible, l.Samples, l.Missed)
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
