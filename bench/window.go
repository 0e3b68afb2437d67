package main

import (
	"context"
	"fmt"
	nethttp "net/http"
	"runtime"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// window gathers, around one HTTP load phase of the read side, what the
// create phases gather inline: the CPU split and the Postgres figures of
// the measured window (from the end of the warm-up), the dev process's
// /metrics before and after, and its peak RSS.
type window struct {
	b          *bench
	client     *nethttp.Client
	metricsURL string

	before    metricSnap
	beforeErr error
	mon       *monitor
	pgs       *pgSampler

	ready chan struct{}
	cpu0  cpuSnap
	pg0   pgDBStats
	pg0Er error
}

// windowStats is what a window saw.
type windowStats struct {
	CPU      cpuSplit
	PgDelta  pgDBStats
	PgErr    string
	Activity pgActivity
	MaxRSSKB uint64
	before   metricSnap
	after    metricSnap
	scrapeEr string
}

// openWindow starts watching; the measured window begins warmup from now.
func (b *bench) openWindow(ctx context.Context, client *nethttp.Client, metricsURL string, warmup time.Duration) *window {
	w := &window{b: b, client: client, metricsURL: metricsURL, ready: make(chan struct{})}
	w.before, w.beforeErr = scrape(ctx, client, metricsURL)
	w.mon = startMonitor(ctx, client, metricsURL, b.dev.pid)
	go func() {
		poll.Sleep(ctx, warmup)
		w.cpu0 = b.procs.snap()
		w.pg0, w.pg0Er = readPgDBStats(ctx, b.pg)
		close(w.ready)
	}()
	w.pgs = startPgSampler(ctx, b.pg, warmup)
	return w
}

// close ends the window; call it right after the load returned.
func (w *window) close(ctx context.Context) windowStats {
	<-w.ready
	var s windowStats
	s.CPU = split(w.cpu0, w.b.procs.snap(), runtime.NumCPU())
	s.Activity = w.pgs.finish()
	pg1, pg1Err := readPgDBStats(ctx, w.b.pg)
	if w.pg0Er == nil && pg1Err == nil {
		s.PgDelta = pg1.since(w.pg0)
	} else {
		s.PgErr = fmt.Sprint(w.pg0Er, " / ", pg1Err)
	}
	s.MaxRSSKB, _, _ = w.mon.finish()
	after, err := scrape(ctx, w.client, w.metricsURL)
	if w.beforeErr == nil && err == nil {
		s.before, s.after = w.before, after
	} else {
		s.scrapeEr = fmt.Sprint(w.beforeErr, " / ", err)
	}
	return s
}

// serverLatency is the dev process's own latency histogram of one route
// over the window (bucket-interpolated percentiles, ms).
func (s windowStats) serverLatency(method, route string) histSummary {
	if s.before == nil || s.after == nil {
		return histSummary{}
	}
	lm := labelMatch{"method": method, "route": route}
	name := "helpdeskflow_http_request_duration_seconds"
	return summarizeHist(s.after.histogram(name, lm).since(s.before.histogram(name, lm)), 1000)
}

// gcCycles is the dev process's garbage collections during the window
// (warm-up included).
func (s windowStats) gcCycles() float64 {
	if s.before == nil || s.after == nil {
		return 0
	}
	return s.after.sum("go_gc_duration_seconds_count", nil) - s.before.sum("go_gc_duration_seconds_count", nil)
}
