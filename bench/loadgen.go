package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// outcome is one call of a load generator: label groups it (per request
// kind; "" for none), id is a created ticket's id for the sampler, kind is
// "" on success, otherwise the error class as call gives it; items is how
// many units of work a successful call did when it does several (the
// tickets a batch created), 0 otherwise.
type outcome struct {
	label string
	id    string
	kind  string
	err   error
	items int
}

// labelRecord is the measured calls of one label.
type labelRecord struct {
	OK     []time.Duration  // the successful calls' latencies
	All    []time.Duration  // every call's, failed ones included
	Errors map[string]int64 // the failed calls by error class
}

// tally is what a load generator recorded of its measured calls. It is
// not safe for concurrent use: each closed-loop worker keeps its own and
// merges it at the end; the open loop guards its one with a mutex.
type tally struct {
	all      []time.Duration // every call, failed ones included
	ok       int64
	items    int64
	labels   map[string]*labelRecord
	errs     map[string]int64
	firstErr string
	lastEnd  time.Time
}

// record adds a call that took lat and ended at done.
func (t *tally) record(o outcome, lat time.Duration, done time.Time) {
	t.all = append(t.all, lat)
	if done.After(t.lastEnd) {
		t.lastEnd = done
	}
	var l *labelRecord
	if o.label != "" {
		l = t.label(o.label)
		l.All = append(l.All, lat)
	}
	if o.kind != "" {
		if t.errs == nil {
			t.errs = map[string]int64{}
		}
		t.errs[o.kind]++
		if l != nil {
			l.Errors[o.kind]++
		}
		if t.firstErr == "" && o.err != nil {
			t.firstErr = o.err.Error()
		}
		return
	}
	t.ok++
	t.items += int64(o.items)
	if l != nil {
		l.OK = append(l.OK, lat)
	}
}

// ok is l's successful calls' latencies; none for a nil l (a label no
// call had).
func (l *labelRecord) ok() []time.Duration {
	if l == nil {
		return nil
	}
	return l.OK
}

func (t *tally) label(name string) *labelRecord {
	if t.labels == nil {
		t.labels = map[string]*labelRecord{}
	}
	l := t.labels[name]
	if l == nil {
		l = &labelRecord{Errors: map[string]int64{}}
		t.labels[name] = l
	}
	return l
}

// merge adds o's calls to t.
func (t *tally) merge(o *tally) {
	t.all = append(t.all, o.all...)
	t.ok += o.ok
	t.items += o.items
	for name, ol := range o.labels {
		l := t.label(name)
		l.OK, l.All = append(l.OK, ol.OK...), append(l.All, ol.All...)
		for k, v := range ol.Errors {
			l.Errors[k] += v
		}
	}
	for k, v := range o.errs {
		if t.errs == nil {
			t.errs = map[string]int64{}
		}
		t.errs[k] += v
	}
	if t.firstErr == "" {
		t.firstErr = o.firstErr
	}
	if o.lastEnd.After(t.lastEnd) {
		t.lastEnd = o.lastEnd
	}
}

// stats is the load as loadStats: the successes divided by the time from
// measureStart until the last measured call ended, the latency over every
// call.
func (t *tally) stats(c int, measureStart time.Time, warm int64) loadStats {
	st := loadStats{Concurrency: c, Requests: t.ok, Items: t.items, WarmupRequests: warm, FirstError: t.firstErr}
	if !t.lastEnd.IsZero() {
		st.Seconds = t.lastEnd.Sub(measureStart).Seconds()
	}
	if st.Seconds > 0 {
		st.PerSecond = float64(st.Requests) / st.Seconds
	}
	for k, v := range t.errs {
		st.Errors += v
		if st.ErrorsByKind == nil {
			st.ErrorsByKind = map[string]int64{}
		}
		st.ErrorsByKind[k] = v
	}
	st.LatencyMs = summarize(t.all)
	return st
}

// runClosedLoop is the closed-loop load generator: c workers each call do
// (with their worker index, so do may keep per-worker state without
// locking) as soon as the previous call returned; warmup first (not
// recorded), then measured for d. Calls that started inside the measured
// window count: Requests and the rate count only the successful ones (the
// wanted status), Errors the failed ones, and LatencyMs is taken over every
// call, failed ones included, so a slow failure is not hidden. The rate
// divides the successes by the time until the last call finished. It also
// returns the calls per label.
func runClosedLoop(ctx context.Context, c int, warmup, d time.Duration, smp func(start time.Time) *sampler, do func(ctx context.Context, worker int) outcome) (loadStats, map[string]*labelRecord) {
	var (
		mu    sync.Mutex
		total tally
		warm  int64
		wg    sync.WaitGroup
	)
	measureStart := time.Now().Add(warmup)
	end := measureStart.Add(d)
	var s *sampler
	if smp != nil {
		s = smp(measureStart)
	}
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			my := tally{all: make([]time.Duration, 0, 1<<14)}
			var myWarm int64
			for i := 0; i < maxPerWorker && ctx.Err() == nil; i++ {
				start := time.Now()
				if !start.Before(end) {
					break
				}
				o := do(ctx, w)
				done := time.Now()
				if !start.Before(measureStart) {
					my.record(o, done.Sub(start), done)
					if o.kind == "" {
						s.offer(o.id, done)
					}
				} else if o.kind == "" {
					myWarm++
				}
				if o.err != nil {
					poll.Sleep(ctx, transportBackof)
				}
			}
			mu.Lock()
			total.merge(&my)
			warm += myWarm
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total.stats(c, measureStart, warm), total.labels
}

// Open-loop pacing.
const (
	// openLoopMaxInFlight caps an open loop's requests in flight: a request
	// due while the cap is reached waits for a free slot, and is late.
	openLoopMaxInFlight = 256
	// lateAfter is how long after its scheduled time a request may start
	// and still count as on time.
	lateAfter = 5 * time.Millisecond
)

// openLoopStats is an open-loop load as the client saw it. Its LatencyMs
// runs from each request's scheduled send time, not from when it was sent,
// so the time a request waited to be sent (queueing the closed loop would
// hide: coordinated omission) is in it.
type openLoopStats struct {
	loadStats
	TargetPerSec float64        `json:"target_per_second"`
	Scheduled    int64          `json:"scheduled"`     // measured requests sent (scheduled inside the window)
	Late         int64          `json:"late"`          // of those, sent more than late_after_ms after their scheduled time
	LateAfterMs  float64        `json:"late_after_ms"` // lateAfter
	SendDelayMs  latencySummary `json:"send_delay_ms"` // scheduled time → sent, measured requests
	MaxInFlight  int            `json:"max_in_flight"` // the cap on requests in flight
}

// runOpenLoop sends requests on a schedule, rate per second, whether or
// not the earlier ones have been answered (at most maxInFlight in flight):
// warmup first (not recorded), then measured for d. The i-th request is
// due at start + i/rate; do sends it (i lets do pick its body). A request
// counts in the window its scheduled time falls in; its latency runs from
// its scheduled time to its answer, failed requests included. The rate
// divides the successes by the time from the window's start until the last
// measured request was answered.
func runOpenLoop(ctx context.Context, rate float64, warmup, d time.Duration, maxInFlight int, smp func(start time.Time) *sampler, do func(ctx context.Context, i int) outcome) openLoopStats {
	var (
		mu     sync.Mutex
		t      tally
		delays []time.Duration
		late   int64
		warm   int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	measureStart := start.Add(warmup)
	var s *sampler
	if smp != nil {
		s = smp(measureStart)
	}
	total := int(math.Ceil((warmup + d).Seconds() * rate))
	measuredFrom := int(math.Ceil(warmup.Seconds() * rate))
	sem := make(chan struct{}, maxInFlight)
	sent := 0
send:
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if wait := time.Until(due); wait > 0 && !poll.Sleep(ctx, wait) {
			break send
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := time.Now()
			o := do(ctx, i)
			done := time.Now()
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if i < measuredFrom {
				if o.kind == "" {
					warm++
				}
				return
			}
			delays = append(delays, at.Sub(due))
			if at.Sub(due) > lateAfter {
				late++
			}
			t.record(o, done.Sub(due), done)
			if o.kind == "" {
				s.offer(o.id, done)
			}
		}()
	}
	wg.Wait()
	return openLoopStats{loadStats: t.stats(0, measureStart, warm), TargetPerSec: rate, Scheduled: int64(max(sent-measuredFrom, 0)),
		Late: late, LateAfterMs: float64(lateAfter.Milliseconds()), SendDelayMs: summarize(delays), MaxInFlight: maxInFlight}
}

// request is one HTTP request of the load generator: want is the status
// that counts as success; idempotencyKey, if set, is sent as the
// Idempotency-Key header; read, if set, reads a successful response's body
// (which is otherwise discarded), and its error fails the call.
type request struct {
	method, url, key string
	idempotencyKey   string
	body             []byte
	want             int
	read             func(body io.Reader) error
}

// call sends one request. kind is "" on the wanted status, otherwise
// "status_NNN", "response" (read failed) or a transport error class; id is
// the last segment of the Location header, when there is one (a created
// ticket's id).
func call(ctx context.Context, client *nethttp.Client, r request) (id, kind string, err error) {
	req, err := nethttp.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return "", "request", err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return "", "timeout", err
		case ctx.Err() != nil:
			return "", "cancelled", err
		default:
			return "", "transport", err
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != r.want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Sprintf("status_%d", resp.StatusCode), fmt.Errorf("%s %s: status %d: %s", r.method, r.url, resp.StatusCode, bytes.TrimSpace(b))
	}
	if r.read != nil {
		if err := r.read(resp.Body); err != nil {
			return "", "response", fmt.Errorf("%s %s: %w", r.method, r.url, err)
		}
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		id = loc[strings.LastIndexByte(loc, '/')+1:]
	}
	return id, "", nil
}

// createAt is a load generator's call that posts the i-th of bodies (in a
// scattered order) to t.
func createAt(client *nethttp.Client, t target, bodies [][]byte) func(ctx context.Context, i int) outcome {
	return func(ctx context.Context, i int) outcome {
		id, kind, err := post(ctx, client, t, bodies[(i*7919)%len(bodies)])
		return outcome{id: id, kind: kind, err: err}
	}
}

// post sends one POST of body to t.
func post(ctx context.Context, client *nethttp.Client, t target, body []byte) (id, kind string, err error) {
	return call(ctx, client, request{method: "POST", url: t.url, key: t.key, body: body, want: t.wantStatus})
}
