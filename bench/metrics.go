package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	nethttp "net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

type sample struct {
	labels map[string]string
	value  float64
}

// metricSnap is one scrape of /metrics: samples by series name (a
// histogram's _bucket, _sum and _count are separate names).
type metricSnap map[string][]sample

func scrape(ctx context.Context, client *nethttp.Client, url string) (metricSnap, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body), nil
}

func parseMetrics(r io.Reader) metricSnap {
	m := metricSnap{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := line, map[string]string{}, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			labels = parseLabels(line[i+1 : j])
			rest = strings.TrimSpace(line[j+1:])
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, rest = f[0], f[1]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		m[name] = append(m[name], sample{labels: labels, value: v})
	}
	return m
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		key := strings.TrimSpace(strings.TrimLeft(s[:eq], ", "))
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			val.WriteByte(s[i])
		}
		out[key] = val.String()
		s = s[min(i+1, len(s)):]
	}
	return out
}

type labelMatch map[string]string

func (lm labelMatch) ok(labels map[string]string) bool {
	for k, v := range lm {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// sum adds up the series of name whose labels match.
func (m metricSnap) sum(name string, lm labelMatch) float64 {
	var total float64
	for _, s := range m[name] {
		if lm.ok(s.labels) {
			total += s.value
		}
	}
	return total
}

func (m metricSnap) has(name string) bool { return len(m[name]) > 0 }

type histogram struct {
	les    []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
	count  float64
	sum    float64
}

// histogram sums the matching series of a histogram metric.
func (m metricSnap) histogram(name string, lm labelMatch) histogram {
	byLE := map[float64]float64{}
	for _, s := range m[name+"_bucket"] {
		if !lm.ok(s.labels) {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			continue
		}
		byLE[le] += s.value
	}
	h := histogram{count: m.sum(name+"_count", lm), sum: m.sum(name+"_sum", lm)}
	for le := range byLE {
		h.les = append(h.les, le)
	}
	sort.Float64s(h.les)
	for _, le := range h.les {
		h.counts = append(h.counts, byLE[le])
	}
	return h
}

// since is h minus an earlier scrape of the same histogram.
func (h histogram) since(before histogram) histogram {
	out := histogram{les: h.les, count: h.count - before.count, sum: h.sum - before.sum}
	for i, le := range h.les {
		prev := 0.0
		for j, ble := range before.les {
			if ble == le {
				prev = before.counts[j]
			}
		}
		out.counts = append(out.counts, h.counts[i]-prev)
	}
	return out
}

// quantile interpolates linearly inside the bucket, as histogram_quantile
// does; a quantile in the +Inf bucket is reported as the highest finite bound.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 || len(h.les) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	lower, prevCount := 0.0, 0.0
	for i, le := range h.les {
		if h.counts[i] >= rank {
			if math.IsInf(le, 1) {
				return lower
			}
			inBucket := h.counts[i] - prevCount
			if inBucket <= 0 {
				return le
			}
			return lower + (le-lower)*(rank-prevCount)/inBucket
		}
		lower, prevCount = le, h.counts[i]
	}
	return lower
}

// histSummary is a histogram's change over a phase, scaled (1000 for
// seconds → ms). Percentiles are bucket interpolations: coarse.
type histSummary struct {
	Count float64 `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
}

func summarizeHist(h histogram, scale float64) histSummary {
	if h.count <= 0 {
		return histSummary{}
	}
	return histSummary{Count: h.count, Mean: round3(h.sum / h.count * scale),
		P50: round3(h.quantile(0.5) * scale), P99: round3(h.quantile(0.99) * scale)}
}

func round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

// serverStats is what the dev process's /metrics says about one phase.
type serverStats struct {
	HTTPCreateMs         histSummary `json:"http_create_ms"`
	StreamLockHoldMs     histSummary `json:"stream_lock_hold_ms"`
	AppendDurationMs     histSummary `json:"append_duration_ms"`
	ProjectorBatchSize   histSummary `json:"projector_batch_size"`
	GroupCommitSize      histSummary `json:"group_commit_size"`
	GroupCommitReplays   float64     `json:"group_commit_replays"`
	ProjectorInsertMs    histSummary `json:"projector_insert_ms"`
	DispatchHandleMs     histSummary `json:"dispatch_handle_ms"`
	EventsAppended       float64     `json:"events_appended"`
	RelayPublished       float64     `json:"relay_published"`
	RelayProduceErrors   float64     `json:"relay_produce_errors"`
	ProjectorEvents      float64     `json:"projector_events"`
	ProjectorErrors      float64     `json:"projector_errors"`
	ProcessCPUSeconds    float64     `json:"process_cpu_seconds"`
	GCCycles             float64     `json:"gc_cycles"`
	GCPauseTotalMs       float64     `json:"gc_pause_total_ms"`
	MaxRelayLagEvents    float64     `json:"max_relay_lag_events"`
	MaxRelayLagSeconds   float64     `json:"max_relay_lag_seconds"`
	MaxProjectorLag      float64     `json:"max_projector_consumer_lag"`
	MaxDispatchLag       float64     `json:"max_dispatch_consumer_lag"`
	MaxOldestTxAgeSecond float64     `json:"max_oldest_transaction_age_seconds"`
	MaxGoroutines        float64     `json:"max_goroutines"`
	ScrapeError          string      `json:"scrape_error,omitempty"`
}

func diffServer(before, after metricSnap) serverStats {
	h := func(name string, lm labelMatch, scale float64) histSummary {
		return summarizeHist(after.histogram(name, lm).since(before.histogram(name, lm)), scale)
	}
	c := func(name string) float64 { return after.sum(name, nil) - before.sum(name, nil) }
	post := labelMatch{"method": "POST", "route": "/v1/tickets"}
	return serverStats{
		HTTPCreateMs:       h("helpdeskflow_http_request_duration_seconds", post, 1000),
		StreamLockHoldMs:   h("helpdeskflow_stream_lock_hold_seconds", nil, 1000),
		AppendDurationMs:   h("helpdeskflow_append_duration_seconds", nil, 1000),
		ProjectorBatchSize: h("helpdeskflow_projector_batch_size", nil, 1),
		GroupCommitSize:    h("helpdeskflow_group_commit_size", nil, 1),
		GroupCommitReplays: c("helpdeskflow_group_commit_replays_total"),
		ProjectorInsertMs:  h("helpdeskflow_projector_insert_duration_seconds", nil, 1000),
		DispatchHandleMs:   h("helpdeskflow_dispatch_handle_duration_seconds", nil, 1000),
		EventsAppended:     c("helpdeskflow_events_appended_total"),
		RelayPublished:     c("helpdeskflow_relay_published_total"),
		RelayProduceErrors: c("helpdeskflow_relay_produce_errors_total"),
		ProjectorEvents:    c("helpdeskflow_projector_events_total"),
		ProjectorErrors:    c("helpdeskflow_projector_errors_total"),
		ProcessCPUSeconds:  round3(c("process_cpu_seconds_total")),
		GCCycles:           c("go_gc_duration_seconds_count"),
		GCPauseTotalMs:     round3(c("go_gc_duration_seconds_sum") * 1000),
	}
}
