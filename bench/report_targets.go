package main

import (
	"fmt"
	"slices"
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
	var c64, c16 *createPhase
	for i := range r.Creates {
		switch r.Creates[i].Concurrency {
		case targetCreatesC:
			c64 = &r.Creates[i]
		case targetP99C:
			c16 = &r.Creates[i]
		}
	}
	if c64 != nil {
		add("creates/s at c=64", fmt.Sprintf(">= %d", targetCreatesPerSec), "creates/s", true, c64.PerSecond, c64.PerSecond >= targetCreatesPerSec)
	} else {
		add("creates/s at c=64", fmt.Sprintf(">= %d", targetCreatesPerSec), "creates/s", false, 0, false)
	}
	if c16 != nil {
		add("create p99 at c=16", fmt.Sprintf("< %d", targetP99Ms), "ms", true, c16.LatencyMs.P99, c16.LatencyMs.P99 < targetP99Ms)
	} else {
		add("create p99 at c=16", fmt.Sprintf("< %d", targetP99Ms), "ms", false, 0, false)
	}
	for _, l := range r.ProjectionLag {
		ok := l.Visible > 0 && l.Missed == 0
		add("projection lag p99 ("+l.Phase+")", fmt.Sprintf("< %d", targetLagP99Ms), "ms", l.Visible > 0, l.LagMs.P99, ok && l.LagMs.P99 < targetLagP99Ms)
	}
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
