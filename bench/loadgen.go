package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// outcome is one request of a closed-loop worker: label groups its latency
// (per query kind; "" for none), id is a created ticket's id for the
// sampler, kind is "" on success, otherwise the error class as post gives it.
type outcome struct {
	label string
	id    string
	kind  string
	err   error
}

// runClosedLoop is the load generator behind every HTTP phase: c workers
// each call do (with their worker index, so do may keep per-worker state
// without locking) as soon as the previous call returned; warmup first
// (not recorded), then measured for d. Calls that started inside the
// measured window count: Requests and the rate count only the successful
// ones (the wanted status), Errors the failed ones, and LatencyMs is taken
// over every call, failed ones included, so a slow failure is not hidden.
// The rate divides the successes by the time until the last call finished.
// It also returns the successful calls' latencies per label.
func runClosedLoop(ctx context.Context, c int, warmup, d time.Duration, smp func(start time.Time) *sampler, do func(ctx context.Context, worker int) outcome) (loadStats, map[string][]time.Duration) {
	var (
		mu       sync.Mutex
		all      []time.Duration // every measured call, failed ones included
		ok       int64
		byLabel  = map[string][]time.Duration{}
		errs     = map[string]int64{}
		firstErr string
		warm     atomic.Int64
		lastEnd  atomic.Int64
		wg       sync.WaitGroup
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
			lat := make([]time.Duration, 0, 1<<14)
			var myOK int64
			labelled := map[string][]time.Duration{}
			myErrs := map[string]int64{}
			var myFirst string
			for i := 0; i < maxPerWorker && ctx.Err() == nil; i++ {
				start := time.Now()
				if !start.Before(end) {
					break
				}
				o := do(ctx, w)
				done := time.Now()
				if start.Before(measureStart) {
					if o.kind == "" {
						warm.Add(1)
					}
					if o.err != nil {
						poll.Sleep(ctx, transportBackof)
					}
					continue
				}
				for {
					prev := lastEnd.Load()
					if done.UnixNano() <= prev || lastEnd.CompareAndSwap(prev, done.UnixNano()) {
						break
					}
				}
				lat = append(lat, done.Sub(start))
				if o.kind != "" {
					myErrs[o.kind]++
					if myFirst == "" && o.err != nil {
						myFirst = o.err.Error()
					}
					if o.err != nil {
						poll.Sleep(ctx, transportBackof)
					}
					continue
				}
				myOK++
				if o.label != "" {
					labelled[o.label] = append(labelled[o.label], done.Sub(start))
				}
				s.offer(o.id, done)
			}
			mu.Lock()
			all = append(all, lat...)
			ok += myOK
			for k, v := range labelled {
				byLabel[k] = append(byLabel[k], v...)
			}
			for k, v := range myErrs {
				errs[k] += v
			}
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	st := loadStats{Concurrency: c, Requests: ok, WarmupRequests: warm.Load(), FirstError: firstErr}
	if le := lastEnd.Load(); le > 0 {
		st.Seconds = time.Unix(0, le).Sub(measureStart).Seconds()
	}
	if st.Seconds > 0 {
		st.PerSecond = float64(st.Requests) / st.Seconds
	}
	for k, v := range errs {
		st.Errors += v
		if st.ErrorsByKind == nil {
			st.ErrorsByKind = map[string]int64{}
		}
		st.ErrorsByKind[k] = v
	}
	st.LatencyMs = summarize(all)
	return st, byLabel
}

// post sends one request. kind is "" on the wanted status, otherwise
// "status_NNN" or a transport error class; id is the created ticket's id
// (from Location) when there is one.
func post(ctx context.Context, client *nethttp.Client, t target, body []byte) (id, kind string, err error) {
	req, err := nethttp.NewRequestWithContext(ctx, "POST", t.url, bytes.NewReader(body))
	if err != nil {
		return "", "request", err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
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
	if resp.StatusCode != t.wantStatus {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Sprintf("status_%d", resp.StatusCode), fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	io.Copy(io.Discard, resp.Body)
	if loc := resp.Header.Get("Location"); loc != "" {
		id = loc[strings.LastIndexByte(loc, '/')+1:]
	}
	return id, "", nil
}

// paced sends n creates at rate per second (open loop, at most 32 in
// flight), handing each created id and the time of its 201 to add.
// Requests and the rate count the 201s only; LatencyMs is taken over every
// request, failed ones included.
func paced(ctx context.Context, client *nethttp.Client, t target, bodies [][]byte, n int, rate float64, add func(id string, at time.Time)) (loadStats, error) {
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, 32)
	var (
		mu   sync.Mutex
		lat  []time.Duration // every request, failed ones included
		ok   int64
		errs = map[string]int64{}
		wg   sync.WaitGroup
	)
	start := time.Now()
send:
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			poll.Sleep(ctx, wait)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		wg.Add(1)
		go func(body []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			id, kind, _ := post(ctx, client, t, body)
			done := time.Now()
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, done.Sub(t0))
			if kind != "" {
				errs[kind]++
				return
			}
			ok++
			add(id, done)
		}(bodies[(i*7919)%len(bodies)])
	}
	wg.Wait()
	st := loadStats{Concurrency: 0, Seconds: time.Since(start).Seconds(), Requests: ok}
	for k, v := range errs {
		st.Errors += v
		if st.ErrorsByKind == nil {
			st.ErrorsByKind = map[string]int64{}
		}
		st.ErrorsByKind[k] = v
	}
	st.PerSecond = float64(st.Requests) / st.Seconds
	st.LatencyMs = summarize(lat)
	return st, ctx.Err()
}
