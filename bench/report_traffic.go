package main

import (
	"fmt"
	"io"
	"strings"
)

// The report of the mix, paced and batch phases: the traffic beside the
// pure-create phase.

// finishTraffic derives the mix, paced and batch figures: CPU per
// operation, the comparisons with the pure-create phase, the memory peak.
func (r *results) finishTraffic() {
	if m := r.Mix; m != nil {
		m.CPUPerRequestMs = cpuPer(m.CPU, m.PerSecond)
		m.PureCreatesPerSec = 0
		if c := r.createLevel(m.Concurrency); c != nil {
			m.PureCreatesPerSec = round1(c.PerSecond)
		}
		r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, m.MaxRSSKB)
	}
	for i := range r.Paced {
		p := &r.Paced[i]
		p.CPUPerCreateMs = cpuPer(p.CPU, p.PerSecond)
		r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, p.MaxRSSKB)
	}
	if bp := r.Batch; bp != nil && bp.Skipped == "" {
		bp.CPUPerCreateMs = cpuPer(bp.CPU, bp.ItemsPerSec)
		bp.SingleCreatesPerSec, bp.Ratio = 0, 0
		if c := r.createLevel(bp.Concurrency); c != nil && c.PerSecond > 0 {
			bp.SingleCreatesPerSec, bp.Ratio = round1(c.PerSecond), round3(bp.ItemsPerSec/c.PerSecond)
		}
		r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, bp.MaxRSSKB)
	}
}

// kbToMB is kB (KiB, as /proc reports them) in megabytes (10^6 bytes).
func kbToMB(kb uint64) float64 { return float64(kb) * 1024 / 1e6 }

// pacedTargets adds, per paced level, the projection lag target (p99 < 1 s,
// every sample visible) and the RSS target (the dev process, every role,
// < 200 MB at its peak over the level).
func (r *results) pacedTargets(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	lagTarget, rssTarget := fmt.Sprintf("< %d", targetLagP99Ms), fmt.Sprintf("< %.0f", kbToMB(targetRSSKB))
	if len(r.Paced) == 0 {
		add("projection lag p99, paced", lagTarget, "ms", false, 0, false)
		add("dev RSS (all roles), paced", rssTarget, "MB", false, 0, false)
		return
	}
	for _, p := range r.Paced {
		l := p.Lag
		add(fmt.Sprintf("projection lag p99, paced %s", p.Level), lagTarget, "ms", l.Visible > 0, l.LagMs.P99,
			l.Visible > 0 && l.Missed == 0 && l.LagMs.P99 < targetLagP99Ms)
		detail("open loop at %.0f creates/s (%s): achieved %.0f/s, sustained %.0f/s, %d of %d sent late; %d of %d samples visible, %d missed; create p99 %.1f ms from the scheduled time",
			p.TargetPerSec, p.Basis, p.PerSecond, p.SustainedPerSec, p.Late, p.Scheduled, l.Visible, l.Samples, l.Missed, p.LatencyMs.P99)
		add(fmt.Sprintf("dev RSS (all roles), paced %s", p.Level), rssTarget, "MB", p.MaxRSSKB > 0, kbToMB(p.MaxRSSKB),
			p.MaxRSSKB > 0 && p.MaxRSSKB < targetRSSKB)
		detail("peak VmRSS of the dev process over the level (warm-up included), sampled every 250 ms: %s", mb(p.MaxRSSKB))
	}
}

// batchTarget adds the batch target: items created per second through
// batches of 100 at c=16 ≥ 3 × the single creates per second at c=16 of
// the same run.
func (r *results) batchTarget(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	name := fmt.Sprintf("batch items/s ÷ single creates/s at c=%d", batchConcurrency)
	target := fmt.Sprintf(">= %.0f", targetBatchOverSingle)
	bp := r.Batch
	switch {
	case bp == nil:
		add(name, target, "×", false, 0, false)
	case bp.Skipped != "":
		add(name, target, "×", false, 0, false)
		detail("skipped: %s", bp.Skipped)
	case bp.SingleCreatesPerSec == 0:
		add(name, target, "×", false, 0, false)
		detail("%.0f items created/s; no pure creates at c=%d in this run (phase %s)", bp.ItemsPerSec, batchConcurrency, phaseCreates)
	default:
		add(name, target, "×", true, bp.Ratio, bp.Errors == 0 && bp.Ratio >= targetBatchOverSingle)
		detail("%.0f items created/s (batches of %d; sustained %.0f/s) ÷ %.0f creates/s = %.2f; %d of %d batch requests failed; item statuses %v",
			bp.ItemsPerSec, bp.BatchSize, bp.SustainedPerSec, bp.SingleCreatesPerSec, bp.Ratio, bp.Errors, bp.Errors+bp.Requests, bp.ItemStatuses)
	}
}

// trafficCPU hands visit each of the mix, paced and batch phases that ran:
// its name, CPU split and CPU time per operation (the mix: per request of
// any kind; paced: per create; batch: per item created).
func (r *results) trafficCPU(visit func(name string, s cpuSplit, perOp cpuPerOp)) {
	if m := r.Mix; m != nil {
		visit(fmt.Sprintf("mix c=%d", m.Concurrency), m.CPU, m.CPUPerRequestMs)
	}
	for _, p := range r.Paced {
		visit("paced "+p.Level, p.CPU, p.CPUPerCreateMs)
	}
	if bp := r.Batch; bp != nil && bp.Skipped == "" {
		visit(fmt.Sprintf("batch c=%d", bp.Concurrency), bp.CPU, bp.CPUPerCreateMs)
	}
}

// mixRows hands row the mix's kinds, then the whole mix.
func (m *mixPhase) mixRows(row func(k mixKind)) {
	for _, k := range m.Kinds {
		row(k)
	}
	row(mixKind{Kind: "all", Requests: m.Requests, Errors: m.Errors, ErrorsByKind: m.ErrorsByKind, Share: 1,
		PerSecond: round1(m.PerSecond), LatencyMs: m.LatencyMs})
}

func errorKinds(k mixKind) string {
	if k.Errors == 0 {
		return ""
	}
	return fmt.Sprint(k.ErrorsByKind)
}

func (m *mixPhase) summaryLine() string {
	pure := fmt.Sprintf("the pure-create phase did not run at c=%d", m.Concurrency)
	if m.PureCreatesPerSec > 0 {
		pure = fmt.Sprintf("the pure-create phase at c=%d: %.0f creates/s", m.Concurrency, m.PureCreatesPerSec)
	}
	return fmt.Sprintf("creates %.0f/s, sustained %.0f/s (projection caught up %.1f s after the load); %s",
		m.CreatesPerSec, m.SustainedCreatesPerSec, m.CatchUpSeconds, pure)
}

const mixDescription = "closed loop; %.0f%% PATCH /v1/tickets/{id} and %.0f%% POST /v1/tickets/{id}/messages on tickets the phase created, the rest creates (%.0f%% for a fresh customer email, the others for the pool's %d customers); %.0f%% of all requests with a unique Idempotency-Key; latency over every request, failed ones included"

func mixDescribe(customers int) string {
	return fmt.Sprintf(mixDescription, mixPatchShare*100, mixMessageShare*100, mixNewCustomerShare*100, customers, mixKeyShare*100)
}

const pacedDescription = "open loop: each create is sent at its scheduled time whether or not the earlier ones were answered (at most %d in flight), latency runs from the scheduled time, so waiting to be sent counts; late = sent more than %.0f ms after schedule; sustained = creates ÷ (window + time until the projection caught up)"

// printTraffic writes the mix, paced and batch sections of the table.
func (r *results) printTraffic(w io.Writer) {
	if m := r.Mix; m != nil {
		fmt.Fprintf(w, "\nMix at c=%d (%s)\n", m.Concurrency, mixDescribe(r.Config.DistinctCustomers))
		fmt.Fprintf(w, "%-30s %9s %7s %9s %9s %9s %7s\n", "kind", "ok/s", "share", "p50 ms", "p99 ms", "max ms", "errors")
		m.mixRows(func(k mixKind) {
			fmt.Fprintf(w, "%-30s %9.0f %6.0f%% %9.2f %9.2f %9.1f %7d %s\n", k.Kind, k.PerSecond, k.Share*100, k.LatencyMs.P50, k.LatencyMs.P99,
				k.LatencyMs.Max, k.Errors, errorKinds(k))
		})
		fmt.Fprintf(w, "  %s\n", m.summaryLine())
	}
	if len(r.Paced) > 0 {
		fmt.Fprintf(w, "\nPaced creates (%s)\n", fmt.Sprintf(pacedDescription, r.Paced[0].MaxInFlight, r.Paced[0].LateAfterMs))
		fmt.Fprintf(w, "%-12s %9s %10s %11s %13s %9s %9s %7s %11s %9s\n", "level", "target/s", "achieved/s", "sustained/s", "late/sent",
			"p50 ms", "p99 ms", "errors", "lag p99 ms", "RSS max")
		for _, p := range r.Paced {
			fmt.Fprintf(w, "%-12s %9.0f %10.0f %11.0f %6d/%-6d %9.2f %9.2f %7d %11.0f %9s\n", p.Level, p.TargetPerSec, p.PerSecond,
				p.SustainedPerSec, p.Late, p.Scheduled, p.LatencyMs.P50, p.LatencyMs.P99, p.Errors, p.Lag.LagMs.P99, mb(p.MaxRSSKB))
		}
	}
	if bp := r.Batch; bp != nil {
		if bp.Skipped != "" {
			fmt.Fprintf(w, "\nBatch creates (POST %s): skipped: %s\n", batchPath, bp.Skipped)
			return
		}
		fmt.Fprintf(w, "\nBatch creates (POST %s, %d items per batch, c=%d, closed loop)\n", batchPath, bp.BatchSize, bp.Concurrency)
		fmt.Fprintf(w, "  %.0f items created/s (sustained %.0f/s) in %.1f batches/s; per batch p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d batch requests failed%s; item statuses %v\n",
			bp.ItemsPerSec, bp.SustainedPerSec, bp.PerSecond, bp.LatencyMs.P50, bp.LatencyMs.P99, bp.LatencyMs.Max, bp.Errors,
			orEmpty(bp.ErrorsByKind), bp.ItemStatuses)
		fmt.Fprintf(w, "  ÷ single creates at c=%d (%.0f/s): %.2f (target ≥ %.0f)\n", bp.Concurrency, bp.SingleCreatesPerSec, bp.Ratio, targetBatchOverSingle)
	}
}

// orEmpty is " " and m, "" for an empty m.
func orEmpty(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	return fmt.Sprint(" ", m)
}

// markdownTraffic writes the mix, paced and batch sections of summary.md.
func (r *results) markdownTraffic(w io.Writer) {
	if m := r.Mix; m != nil {
		fmt.Fprintf(w, "\n## Mix at c=%d\n\n%s. Beside it, the pure-create phase (POST /v1/tickets only), where the create targets are measured.\n\n",
			m.Concurrency, upperFirst(mixDescribe(r.Config.DistinctCustomers)))
		fmt.Fprintf(w, "| kind | ok/s | share | p50 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|---|\n")
		m.mixRows(func(k mixKind) {
			fmt.Fprintf(w, "| %s | %.0f | %.0f%% | %.2f | %.2f | %.1f | %d %s |\n", k.Kind, k.PerSecond, k.Share*100, k.LatencyMs.P50,
				k.LatencyMs.P99, k.LatencyMs.Max, k.Errors, errorKinds(k))
		})
		fmt.Fprintf(w, "\n%s; %.1f Postgres commits and %.0f tuples returned per request.\n", upperFirst(m.summaryLine()), m.CommitsPerRequest,
			m.TuplesPerRequest)
	}
	if len(r.Paced) > 0 {
		fmt.Fprintf(w, "\n## Paced creates\n\n%s.\n\n", upperFirst(fmt.Sprintf(pacedDescription, r.Paced[0].MaxInFlight, r.Paced[0].LateAfterMs)))
		fmt.Fprintf(w, "| level | rate from | target/s | achieved/s | sustained/s | late / sent | send delay p99 ms | p50 ms | p99 ms | errors | lag p50 / p99 ms | lag samples (missed) | RSS max | catch-up s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range r.Paced {
			fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.0f | %d / %d | %.1f | %.2f | %.2f | %d | %.0f / %.0f | %d (%d) | %s | %.1f |\n", p.Level, p.Basis,
				p.TargetPerSec, p.PerSecond, p.SustainedPerSec, p.Late, p.Scheduled, p.SendDelayMs.P99, p.LatencyMs.P50, p.LatencyMs.P99, p.Errors,
				p.Lag.LagMs.P50, p.Lag.LagMs.P99, p.Lag.Samples, p.Lag.Missed, mb(p.MaxRSSKB), p.CatchUpSeconds)
		}
	}
	if bp := r.Batch; bp != nil {
		fmt.Fprintf(w, "\n## Batch creates (`POST %s`)\n\n", batchPath)
		if bp.Skipped != "" {
			fmt.Fprintf(w, "Skipped: %s.\n", bp.Skipped)
			return
		}
		fmt.Fprintf(w, "%d items per batch (the create phase's bodies), c=%d, closed loop; only items answered 201 count.\n\n", bp.BatchSize, bp.Concurrency)
		fmt.Fprintf(w, "| items created/s | sustained/s | batches/s | batch p50 ms | batch p99 ms | failed batches | item statuses | single creates/s at c=%d | ratio (target ≥ %.0f) |\n|---|---|---|---|---|---|---|---|---|\n",
			bp.Concurrency, targetBatchOverSingle)
		fmt.Fprintf(w, "| %.0f | %.0f | %.1f | %.1f | %.1f | %d%s | %v | %.0f | %.2f |\n", bp.ItemsPerSec, bp.SustainedPerSec, bp.PerSecond,
			bp.LatencyMs.P50, bp.LatencyMs.P99, bp.Errors, orEmpty(bp.ErrorsByKind), bp.ItemStatuses, bp.SingleCreatesPerSec, bp.Ratio)
		if bp.FirstItemError != "" {
			fmt.Fprintf(w, "\nFirst item not created: `%s`.\n", strings.ReplaceAll(bp.FirstItemError, "`", "'"))
		}
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
