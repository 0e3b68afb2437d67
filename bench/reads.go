package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"strings"
	"time"
)

// The composite-read phase's tickets: readTickets of readTicketMessages
// messages each (the one a ticket is created with and 49 replies), read
// with one request in readWriteEvery a write to one of them.
const (
	readTickets        = 1000
	readTicketMessages = 50
	readWriteEvery     = 20 // 5% writes
)

// compositeRead is the composite-read phase: GET /v1/tickets/{id} of
// 1,000 tickets of 50 messages, each read composed by the dev process
// (through its read cache, checked against the event store), with 5%
// writes (PATCH, messages) to the same tickets, at each concurrency; and
// beside it a static handler in this process serving a body of the same
// size, the baseline of the same run.
type compositeRead struct {
	TicketID      string      `json:"ticket_id"` // the first of them
	Tickets       int         `json:"tickets"`
	Messages      int         `json:"messages"`
	Version       int64       `json:"ticket_version"`
	ResponseBytes int         `json:"response_bytes"`
	MessageBytes  int         `json:"message_body_bytes_avg"`
	SeedSeconds   float64     `json:"seed_seconds"`
	Phases        []readPhase `json:"phases"`
}

// readPhase is the composite read at one concurrency.
type readPhase struct {
	loadStats // every request, reads and writes
	// Reads are the GETs alone (the target's rate and p99), Writes the
	// PATCHes and messages among them.
	Reads  mixKind `json:"reads"`
	Writes mixKind `json:"writes"`
	// Static is the static handler with a body of the same size at the
	// same concurrency, measured just before.
	Static          loadStats `json:"static_handler"`
	ReadsOverStatic float64   `json:"reads_over_static_handler"`
	Cache           readCache `json:"read_cache"`
	// ServerMs is the dev process's own latency of GET /v1/tickets/:id
	// (bucket-interpolated), warm-up included.
	ServerMs histSummary `json:"server_ms"`
	CPU      cpuSplit    `json:"cpu"`
	// CPUPerReadMs is CPU time per request (reads and writes), by process.
	CPUPerReadMs          cpuPerOp     `json:"cpu_ms_per_read"`
	Postgres              pgDBStats    `json:"postgres_delta"`
	TuplesReturnedPerRead float64      `json:"postgres_tuples_returned_per_read"`
	PostgresWaits         []countShare `json:"postgres_wait_events"`
	PostgresError         string       `json:"postgres_error,omitempty"`
	MaxRSSKB              uint64       `json:"max_rss_kb"`
	GCCycles              float64      `json:"gc_cycles"`
	EmptyPerSec           float64      `json:"empty_handler_per_second"`
	ReadsOverEmpty        float64      `json:"reads_over_empty_handler"`
}

// readCache is the dev process's read cache over a window (warm-up
// included): streams found current, repaired by a delta load, loaded
// afresh; evictions; the shared version checks; its size at the end.
type readCache struct {
	Hits          float64 `json:"hits"`
	DeltaLoads    float64 `json:"delta_loads"`
	Misses        float64 `json:"misses"`
	Evictions     float64 `json:"evictions"`
	VersionChecks float64 `json:"version_checks"`
	HitRate       float64 `json:"hit_rate"`        // hits ÷ (hits + delta loads + misses)
	ReadsPerCheck float64 `json:"reads_per_check"` // GETs ÷ version checks
	Bytes         float64 `json:"bytes"`
	Entries       float64 `json:"entries"`
	// CheckMs is the version checks' duration, sent to answered
	// (bucket-interpolated); a read waits for at most the check in flight
	// and its own.
	CheckMs histSummary `json:"version_check_ms"`
}

func (s windowStats) readCache(reads int64) readCache {
	if s.before == nil || s.after == nil {
		return readCache{}
	}
	d := func(name string) float64 { return s.after.sum(name, nil) - s.before.sum(name, nil) }
	c := readCache{Hits: d("helpdeskflow_read_cache_hits_total"), DeltaLoads: d("helpdeskflow_read_cache_delta_loads_total"),
		Misses: d("helpdeskflow_read_cache_misses_total"), Evictions: d("helpdeskflow_read_cache_evictions_total"),
		VersionChecks: d("helpdeskflow_read_cache_version_checks_total"),
		Bytes:         s.after.sum("helpdeskflow_read_cache_bytes", nil), Entries: s.after.sum("helpdeskflow_read_cache_entries", nil)}
	name := "helpdeskflow_read_cache_version_check_seconds"
	c.CheckMs = summarizeHist(s.after.histogram(name, nil).since(s.before.histogram(name, nil)), 1000)
	if all := c.Hits + c.DeltaLoads + c.Misses; all > 0 {
		c.HitRate = round3(c.Hits / all)
	}
	if c.VersionChecks > 0 {
		c.ReadsPerCheck = round1(float64(reads) / c.VersionChecks)
	}
	return c
}

// runCompositeRead seeds the tickets and, at each concurrency, loads the
// static handler and then the composite reads with their writes.
func (b *bench) runCompositeRead(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	start := time.Now()
	ids, err := b.seedReadTickets(ctx, client, bodies)
	if err != nil {
		return fmt.Errorf("composite read: %w", err)
	}
	b.demoTicketID = ids[0]
	r := &compositeRead{TicketID: ids[0], Tickets: len(ids)}
	for _, m := range messageBodies(readTicketMessages - 1) {
		r.MessageBytes += len(m)
	}
	r.MessageBytes /= readTicketMessages - 1
	b.res.CompositeRead = r
	url := b.dev.url + "/v1/tickets/" + ids[0]
	status, raw, err := send(ctx, client, "GET", url, b.dev.key, nil)
	if err != nil || status != nethttp.StatusOK {
		return fmt.Errorf("composite read: GET %s: status %d: %v %s", url, status, err, trimBody(raw))
	}
	var got struct {
		Version  int64             `json:"version"`
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("composite read: decode the ticket: %w", err)
	}
	r.Messages, r.Version, r.ResponseBytes = len(got.Messages), got.Version, len(raw)
	r.SeedSeconds = round3(time.Since(start).Seconds())
	if r.Messages != readTicketMessages {
		return fmt.Errorf("composite read: the ticket has %d messages, want %d", r.Messages, readTicketMessages)
	}
	logf("composite read: %d tickets of %d messages (version %d), %d-byte response; seeded in %.1f s",
		len(ids), r.Messages, r.Version, r.ResponseBytes, r.SeedSeconds)

	static, err := startStaticServer(raw)
	if err != nil {
		return fmt.Errorf("composite read: static handler: %w", err)
	}
	defer static.close()
	metricsURL := b.dev.url + "/metrics"
	for _, c := range b.o.concurrency {
		logf("static handler (%d-byte body): c=%d, %s warm-up + %s", len(raw), c, b.o.warmup, b.o.duration)
		st, _ := runClosedLoop(ctx, c, b.o.warmup, b.o.duration, nil, func(ctx context.Context, _ int) outcome {
			_, kind, err := get(ctx, client, static.url, "", false)
			return outcome{kind: kind, err: err}
		})
		logf("composite read: c=%d, %s warm-up + %s", c, b.o.warmup, b.o.duration)
		w := b.openWindow(ctx, metricsClient, metricsURL, b.o.warmup)
		mix := newReadMix(client, b.dev.url, b.dev.key, ids, c)
		ls, byLabel := runClosedLoop(ctx, c, b.o.warmup, b.o.duration, nil, mix.next)
		ws := w.close(ctx)
		p := readPhase{loadStats: ls, Static: st, ServerMs: ws.serverLatency("GET", "/v1/tickets/:id"), CPU: ws.CPU,
			Postgres: ws.PgDelta, PostgresWaits: ws.Activity.WaitEvents, PostgresError: ws.PgErr,
			MaxRSSKB: ws.MaxRSSKB, GCCycles: ws.gcCycles()}
		all := ls.Requests + ls.Errors
		p.Reads = sumKind("GET /v1/tickets/{id}", ls.Seconds, all, byLabel["read"])
		p.Writes = sumKind("PATCH /v1/tickets/{id}, POST /v1/tickets/{id}/messages", ls.Seconds, all, byLabel["patch"], byLabel["message"])
		p.Cache = ws.readCache(p.Reads.Requests + p.Reads.Errors + ls.WarmupRequests)
		if st.PerSecond > 0 {
			p.ReadsOverStatic = round3(p.Reads.PerSecond / st.PerSecond)
		}
		if ls.Requests > 0 {
			p.TuplesReturnedPerRead = round3(ws.PgDelta.Returned / float64(ls.Requests))
		}
		if ls.Errors > 0 {
			b.res.note("composite read c=%d: %d of %d requests failed (%v); the first: %s", c, ls.Errors, ls.Errors+ls.Requests, ls.ErrorsByKind, ls.FirstError)
		}
		if st.Errors > 0 {
			b.res.note("static handler c=%d: %d of %d requests failed (%v); the first: %s", c, st.Errors, st.Errors+st.Requests, st.ErrorsByKind, st.FirstError)
		}
		b.disturbance(fmt.Sprintf("composite read c=%d", c), p.CPU, ws.Activity.AvgOtherDBs)
		r.Phases = append(r.Phases, p)
		logf("composite read c=%d: %.0f reads/s (static %.0f/s, ratio %.3f), read p50 %.2f ms, p99 %.2f ms; %.0f writes/s; cache hit rate %.3f, %.1f reads per version check, %.1f MB; errors %d",
			c, p.Reads.PerSecond, st.PerSecond, p.ReadsOverStatic, p.Reads.LatencyMs.P50, p.Reads.LatencyMs.P99, p.Writes.PerSecond,
			p.Cache.HitRate, p.Cache.ReadsPerCheck, p.Cache.Bytes/(1<<20), ls.Errors)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// messageBodies are n conversation replies, alternately from an agent and
// the customer: a few hundred bytes of HTML each (links, lists, emphasis).
func messageBodies(n int) []string {
	r := rand.New(rand.NewPCG(7, 1007))
	// %[1]s a name, %[2]s a product, %[3]d an order number, %[4]d a serial
	// or reference number.
	agent := []string{
		`<p>Hi %[1]s,</p><p>thank you for the photos. I have opened a replacement request for the <b>%[2]s</b> (order <a href="https://shop.example.com/orders/%[3]d">#%[3]d</a>); ` +
			`the warehouse confirms stock and it should ship within <i>two working days</i>.</p><p>Best regards,<br>Support team</p>`,
		`<p>Hello %[1]s,</p><p>I checked with our carrier: the parcel with the <b>%[2]s</b> is at the regional depot, tracking number <code>PX%08[4]d</code>. ` +
			`Order <a href="https://shop.example.com/orders/%[3]d">#%[3]d</a> is flagged for priority delivery.</p><ul><li>Expected: tomorrow</li><li>Signature required: no</li></ul>`,
		`<p>Dear %[1]s,</p><p>the refund for the <b>%[2]s</b> has been approved. You will see it on your statement within 5–7 days; ` +
			`the reference is <code>RF-%08[4]d</code> (order #%[3]d).</p><p>Is there anything else I can help you with?</p>`,
	}
	customer := []string{
		`<p>Hello again,</p><p>thanks, but the <b>%[2]s</b> still has not arrived. The tracking page for order <a href="https://shop.example.com/orders/%[3]d">#%[3]d</a> ` +
			`has shown "in transit" since Monday. Could you check with the carrier?</p><p>Regards,<br>%[1]s</p>`,
		`<p>Hi,</p><p>I tried the reset steps you sent for the <b>%[2]s</b>, but the display still flickers after about ten minutes. ` +
			`Serial SN-%08[4]d, order #%[3]d. I attached a short video to my previous mail.</p><blockquote>Unplug it for 30 seconds, then hold the power button…</blockquote><p>%[1]s</p>`,
		`<p>Dear support,</p><p>the replacement <b>%[2]s</b> arrived today and works perfectly. Please cancel the return label for order ` +
			`<a href="https://shop.example.com/orders/%[3]d">#%[3]d</a>.</p><p>Many thanks!<br>%[1]s</p>`,
	}
	out := make([]string, n)
	for i := range out {
		tmpl := agent[r.IntN(len(agent))]
		if i%2 == 1 {
			tmpl = customer[r.IntN(len(customer))]
		}
		out[i] = fmt.Sprintf(tmpl, firstNames[r.IntN(len(firstNames))], products[r.IntN(len(products))], 10000+r.IntN(90000), r.IntN(100000000))
	}
	return out
}

// createTicket creates one ticket and returns its id.
func createTicket(ctx context.Context, client *nethttp.Client, baseURL, key string, body []byte) (string, error) {
	req, err := nethttp.NewRequestWithContext(ctx, "POST", baseURL+"/v1/tickets", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("create a ticket: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != nethttp.StatusCreated || loc == "" {
		return "", fmt.Errorf("create a ticket: status %d (Location %q): %s", resp.StatusCode, loc, trimBody(raw))
	}
	return loc[strings.LastIndexByte(loc, '/')+1:], nil
}

// send is one request with the key and an optional JSON body; it returns
// the status and the whole response body.
func send(ctx context.Context, client *nethttp.Client, method, url, key string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// get is one GET of the load generator, classified like post: kind is ""
// on 200. With keep it returns the body; otherwise it discards it.
func get(ctx context.Context, client *nethttp.Client, url, key string, keep bool) ([]byte, string, error) {
	req, err := nethttp.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, "request", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return nil, "timeout", err
		case ctx.Err() != nil:
			return nil, "cancelled", err
		default:
			return nil, "transport", err
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != nethttp.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Sprintf("status_%d", resp.StatusCode), fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if !keep {
		_, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return nil, "transport", err
		}
		return nil, "", nil
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "transport", err
	}
	return raw, "", nil
}

func trimBody(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
