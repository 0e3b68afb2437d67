package main

import (
	"context"
	"fmt"
	nethttp "net/http"
	"time"
)

// The paced phase: POST /v1/tickets sent on a schedule (open loop, see
// runOpenLoop) at targetLagPacedRate and at half the maximum creates/s, for
// -warmup + -duration each, measuring the projection lag and the dev
// process's RSS at that load (targets: lag p99 < 1 s at both rates, RSS <
// 200 MB).
const (
	targetRSSKB       = 200_000_000 / 1024 // RSS of the dev process (every role) at a paced load: 200 MB, in kB (KiB) as /proc reports it
	pacedMaxShare     = 0.5                // the second level: this share of the maximum creates/s
	pacedMaxReference = 64                 // the pure-create level whose rate is the maximum
)

// pacedPhase is one paced level as results.json shows it.
type pacedPhase struct {
	Level string `json:"level"` // "2,000/s" or "50% of max"
	Basis string `json:"basis"` // where the rate comes from
	openLoopStats
	Lag             lagResult `json:"projection_lag"`
	CPU             cpuSplit  `json:"cpu"`
	CPUPerCreateMs  cpuPerOp  `json:"cpu_ms_per_create"`
	MaxRSSKB        uint64    `json:"max_rss_kb"` // the dev process (every role), peak over the level
	CatchUpSeconds  float64   `json:"projection_catch_up_seconds"`
	SustainedPerSec float64   `json:"sustained_creates_per_second"` // creates ÷ (window + catch-up)
}

// pacedLevel is a rate the paced phase runs at.
type pacedLevel struct {
	name, basis string
	rate        float64
}

// pacedLevels are the paced phase's rates: half the maximum (the creates
// phase's rate at c=64 of this run, or else -paced-rate), then
// targetLagPacedRate.
func (b *bench) pacedLevels() []pacedLevel {
	var out []pacedLevel
	half := fmt.Sprintf("%.0f%% of max", pacedMaxShare*100)
	switch c := b.res.createLevel(pacedMaxReference); {
	case c != nil && c.PerSecond > 0:
		out = append(out, pacedLevel{half, fmt.Sprintf("%.0f%% of the %.0f creates/s at c=%d of this run", pacedMaxShare*100, c.PerSecond, pacedMaxReference),
			pacedMaxShare * c.PerSecond})
	case b.o.pacedRate > 0:
		out = append(out, pacedLevel{half, fmt.Sprintf("%.0f%% of -paced-rate %.0f creates/s; no creates at c=%d in this run", pacedMaxShare*100, b.o.pacedRate, pacedMaxReference),
			pacedMaxShare * b.o.pacedRate})
	default:
		b.res.note("paced: no creates at c=%d in this run and no -paced-rate: the %s level is skipped", pacedMaxReference, half)
	}
	return append(out, pacedLevel{thousands(targetLagPacedRate) + "/s", "the issue's fixed rate", targetLagPacedRate})
}

// runPaced runs the paced levels, sampling -lag-samples creates of each
// level's window for the projection lag.
func (b *bench) runPaced(ctx context.Context, metricsClient *nethttp.Client, bodies [][]byte) error {
	client := newClient(openLoopMaxInFlight)
	defer client.CloseIdleConnections()
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	tracker := b.startLagTracker(tctx)
	devTarget := target{url: b.dev.url + "/v1/tickets", key: b.dev.key, wantStatus: nethttp.StatusCreated}
	for _, lv := range b.pacedLevels() {
		logf("paced %s: %.0f creates/s open loop, %s warm-up + %s", lv.name, lv.rate, b.o.warmup, b.o.duration)
		w := b.openWindow(ctx, metricsClient, b.dev.url+"/metrics", b.o.warmup)
		ol := runOpenLoop(ctx, lv.rate, b.o.warmup, b.o.duration, openLoopMaxInFlight, func(start time.Time) *sampler {
			return newSampler(start, b.o.duration, b.o.lagSamples, tracker.add)
		}, createAt(client, devTarget, bodies))
		loadEnd := time.Now()
		ws := w.close(ctx)
		b.created += uint64(ol.Requests + ol.WarmupRequests)
		tracker.wait(ctx)
		name := fmt.Sprintf("paced %s (%.0f/s)", lv.name, lv.rate)
		lag := tracker.result(name)
		lag.CreatesPerSec, lag.CreateLatencyMs = ol.PerSecond, ol.LatencyMs
		b.res.ProjectionLag = append(b.res.ProjectionLag, lag)
		cu := b.catchUp(ctx, metricsClient, loadEnd, name)

		p := pacedPhase{Level: lv.name, Basis: lv.basis, openLoopStats: ol, Lag: lag, CPU: ws.CPU, MaxRSSKB: ws.MaxRSSKB,
			CatchUpSeconds: cu.seconds, SustainedPerSec: sustained(ol.Requests, ol.Seconds, cu.seconds)}
		b.res.Paced = append(b.res.Paced, p)
		if ol.Errors > 0 {
			b.res.note("%s: %d of %d creates failed (%v); the first: %s", name, ol.Errors, ol.Errors+ol.Requests, ol.ErrorsByKind, ol.FirstError)
		}
		b.disturbance(name, p.CPU, ws.Activity.AvgOtherDBs)
		logf("%s: achieved %.0f creates/s, %d of %d late, p50 %.1f ms, p99 %.1f ms (from the scheduled time), lag p99 %.0f ms, RSS max %s; caught up %.1f s after",
			name, ol.PerSecond, ol.Late, ol.Scheduled, ol.LatencyMs.P50, ol.LatencyMs.P99, lag.LagMs.P99, mb(p.MaxRSSKB), cu.seconds)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}
