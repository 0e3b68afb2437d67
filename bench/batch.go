package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The batch phase: POST /v1/batch/tickets with batchSize create bodies per
// request, closed loop at batchConcurrency, against the single creates of
// the pure-create phase at the same concurrency (target: items/s ≥ 3×).
const (
	batchSize             = 100
	batchConcurrency      = 16
	targetBatchOverSingle = 3.0 // batch items created/s ÷ single creates/s, same concurrency, same run
	batchPath             = "/v1/batch/tickets"
)

// batchPhase is the batch phase as results.json shows it. Its loadStats
// counts batch requests (Requests: answered 200; Items: their items
// answered 201).
type batchPhase struct {
	loadStats
	BatchSize   int     `json:"batch_size"`
	ItemsPerSec float64 `json:"items_per_second"` // items answered 201 per second of the window
	// ItemStatuses counts every item's status over the phase, warm-up
	// included; FirstItemError is the first item not created.
	ItemStatuses        map[string]int64 `json:"item_statuses"`
	FirstItemError      string           `json:"first_item_error,omitempty"`
	SingleCreatesPerSec float64          `json:"single_creates_per_second"` // the pure-create phase at the same concurrency (0: not measured)
	Ratio               float64          `json:"items_over_single_creates"`
	CPU                 cpuSplit         `json:"cpu"`
	CPUPerCreateMs      cpuPerOp         `json:"cpu_ms_per_item_created"`
	MaxRSSKB            uint64           `json:"max_rss_kb"`
	CatchUpSeconds      float64          `json:"projection_catch_up_seconds"`
	SustainedPerSec     float64          `json:"sustained_items_per_second"` // items created ÷ (window + catch-up)
	Skipped             string           `json:"skipped,omitempty"`
}

// batchAnswer is the part of a 200 answer the bench reads.
type batchAnswer struct {
	Data []struct {
		Index  int `json:"index"`
		Status int `json:"status"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"data"`
}

// batchItems tallies the items of the batch answers; safe for concurrent
// use.
type batchItems struct {
	mu       sync.Mutex
	statuses map[string]int64
	firstErr string
	created  atomic.Int64 // items answered 201, warm-up included
}

// read reads one 200 answer to a batch of n items and returns how many
// were created; an answer without one result per item, in order, is an
// error.
func (bi *batchItems) read(body io.Reader, n int) (int, error) {
	var a batchAnswer
	if err := json.NewDecoder(body).Decode(&a); err != nil {
		return 0, fmt.Errorf("decode the answer: %w", err)
	}
	if len(a.Data) != n {
		return 0, fmt.Errorf("the answer has %d results for %d items", len(a.Data), n)
	}
	created := 0
	bi.mu.Lock()
	defer bi.mu.Unlock()
	for i, d := range a.Data {
		if d.Index != i {
			return 0, fmt.Errorf("result %d has index %d", i, d.Index)
		}
		bi.statuses[strconv.Itoa(d.Status)]++
		if d.Status == nethttp.StatusCreated {
			created++
			continue
		}
		if bi.firstErr == "" && d.Error != nil {
			bi.firstErr = fmt.Sprintf("item %d: %d %s: %s", i, d.Status, d.Error.Code, d.Error.Message)
		}
	}
	bi.created.Add(int64(created))
	return created, nil
}

// batchBodies joins the create bodies into batches of size items each.
func batchBodies(bodies [][]byte, size int) [][]byte {
	var out [][]byte
	for i := 0; i+size <= len(bodies); i += size {
		parts := make([]string, size)
		for j := range parts {
			parts[j] = string(bodies[i+j])
		}
		out = append(out, []byte(`{"items":[`+strings.Join(parts, ",")+`]}`))
	}
	return out
}

// runBatch probes the endpoint with one small batch (skipping the phase
// on 404: not there yet), then loads it.
func (b *bench) runBatch(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	p := &batchPhase{BatchSize: batchSize}
	p.Concurrency = batchConcurrency
	b.res.Batch = p
	items := &batchItems{statuses: map[string]int64{}}
	url := b.dev.url + batchPath
	send := func(ctx context.Context, body []byte, n int) outcome {
		var made int
		_, kind, err := call(ctx, client, request{method: "POST", url: url, key: b.dev.key, body: body, want: nethttp.StatusOK,
			read: func(r io.Reader) (err error) { made, err = items.read(r, n); return err }})
		return outcome{kind: kind, err: err, items: made}
	}

	// The probe's items count in items.created, added below.
	probe := send(ctx, batchBodies(bodies[:2], 2)[0], 2)
	switch {
	case probe.kind == "status_404":
		p.Skipped = "POST " + batchPath + " answers 404 (not there yet)"
		b.res.note("batch phase skipped: %s", p.Skipped)
		return nil
	case probe.kind != "":
		b.created += uint64(items.created.Load())
		p.Skipped = fmt.Sprintf("the probe batch failed: %v", probe.err)
		b.res.note("batch phase skipped: %s", p.Skipped)
		return nil
	}

	batches := batchBodies(bodies, batchSize)
	logf("batch: POST %s, %d items per batch, c=%d, %s warm-up + %s", batchPath, batchSize, batchConcurrency, b.o.warmup, b.o.duration)
	w := b.openWindow(ctx, metricsClient, b.dev.url+"/metrics", b.o.warmup)
	var next atomic.Uint64
	ls, _ := runClosedLoop(ctx, batchConcurrency, b.o.warmup, b.o.duration, nil, func(ctx context.Context, _ int) outcome {
		return send(ctx, batches[next.Add(1)%uint64(len(batches))], batchSize)
	})
	loadEnd := time.Now()
	ws := w.close(ctx)
	b.created += uint64(items.created.Load())
	cu := b.catchUp(ctx, metricsClient, loadEnd, "the batch phase")

	p.loadStats = ls
	p.ItemStatuses, p.FirstItemError = items.statuses, items.firstErr
	p.CPU, p.MaxRSSKB, p.CatchUpSeconds = ws.CPU, ws.MaxRSSKB, cu.seconds
	if ls.Seconds > 0 {
		p.ItemsPerSec = round1(float64(ls.Items) / ls.Seconds)
	}
	p.SustainedPerSec = sustained(ls.Items, ls.Seconds, cu.seconds)
	if ls.Errors > 0 {
		b.res.note("batch: %d of %d batch requests failed (%v); the first: %s", ls.Errors, ls.Errors+ls.Requests, ls.ErrorsByKind, ls.FirstError)
	}
	if p.FirstItemError != "" {
		b.res.note("batch: items not created (statuses %v); the first: %s", p.ItemStatuses, p.FirstItemError)
	}
	b.disturbance("batch", p.CPU, ws.Activity.AvgOtherDBs)
	logf("batch c=%d: %.0f items created/s in %.1f batches/s, p50 %.1f ms, p99 %.1f ms per batch, errors %d; projection caught up %.1f s after the load",
		batchConcurrency, p.ItemsPerSec, ls.PerSecond, ls.LatencyMs.P50, ls.LatencyMs.P99, ls.Errors, cu.seconds)
	return ctx.Err()
}
