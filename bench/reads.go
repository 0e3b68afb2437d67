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

// readTicketMessages is how many messages the composite-read ticket has:
// the one it is created with and 49 replies.
const readTicketMessages = 50

// compositeRead is the composite-read phase: GET /v1/tickets/{id} of one
// ticket with 50 messages, composed by the dev process from the event store
// (the ticket's 50 events and its customer's) at each concurrency.
type compositeRead struct {
	TicketID      string      `json:"ticket_id"`
	Messages      int         `json:"messages"`
	Version       int64       `json:"ticket_version"`
	ResponseBytes int         `json:"response_bytes"`
	MessageBytes  int         `json:"message_body_bytes_avg"`
	SeedSeconds   float64     `json:"seed_seconds"`
	Phases        []readPhase `json:"phases"`
}

// readPhase is the composite read at one concurrency.
type readPhase struct {
	loadStats
	// ServerMs is the dev process's own latency of GET /v1/tickets/:id
	// (bucket-interpolated), warm-up included.
	ServerMs histSummary `json:"server_ms"`
	CPU      cpuSplit    `json:"cpu"`
	// CPUPerReadMs is CPU time per read, by process.
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

// runCompositeRead seeds the 50-message ticket and loads GET
// /v1/tickets/{id} at each concurrency.
func (b *bench) runCompositeRead(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	start := time.Now()
	id, err := createTicket(ctx, client, b.dev.url, b.dev.key, bodies[0])
	if err != nil {
		return fmt.Errorf("composite read: %w", err)
	}
	b.created++
	b.demoTicketID = id
	msgs := messageBodies(readTicketMessages - 1)
	total := 0
	for i, m := range msgs {
		author := "agent" // messageBodies alternates, starting with the agent's reply
		if i%2 == 1 {
			author = "customer"
		}
		body, _ := json.Marshal(map[string]string{"body": m, "author_type": author})
		status, raw, err := send(ctx, client, "POST", b.dev.url+"/v1/tickets/"+id+"/messages", b.dev.key, body)
		if err != nil {
			return fmt.Errorf("composite read: add message %d: %w", i+2, err)
		}
		if status != nethttp.StatusCreated {
			return fmt.Errorf("composite read: add message %d: status %d: %s", i+2, status, trimBody(raw))
		}
		total += len(m)
	}
	r := &compositeRead{TicketID: id, MessageBytes: total / max(len(msgs), 1)}
	b.res.CompositeRead = r
	url := b.dev.url + "/v1/tickets/" + id
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
	logf("composite read: ticket %s has %d messages (version %d), %d-byte response; seeded in %.1f s",
		id, r.Messages, r.Version, r.ResponseBytes, r.SeedSeconds)

	metricsURL := b.dev.url + "/metrics"
	for _, c := range b.o.concurrency {
		logf("composite read: c=%d, %s warm-up + %s", c, b.o.warmup, b.o.duration)
		w := b.openWindow(ctx, metricsClient, metricsURL, b.o.warmup)
		ls, _ := runClosedLoop(ctx, c, b.o.warmup, b.o.duration, nil, func(ctx context.Context, _ int) outcome {
			_, kind, err := get(ctx, client, url, b.dev.key, false)
			return outcome{kind: kind, err: err}
		})
		ws := w.close(ctx)
		p := readPhase{loadStats: ls, ServerMs: ws.serverLatency("GET", "/v1/tickets/:id"), CPU: ws.CPU,
			Postgres: ws.PgDelta, PostgresWaits: ws.Activity.WaitEvents, PostgresError: ws.PgErr,
			MaxRSSKB: ws.MaxRSSKB, GCCycles: ws.gcCycles()}
		if ls.Requests > 0 {
			p.TuplesReturnedPerRead = round3(ws.PgDelta.Returned / float64(ls.Requests))
		}
		if ls.Errors > 0 {
			b.res.note("composite read c=%d: %d of %d requests failed (%v); the first: %s", c, ls.Errors, ls.Errors+ls.Requests, ls.ErrorsByKind, ls.FirstError)
		}
		b.disturbance(fmt.Sprintf("composite read c=%d", c), p.CPU, ws.Activity.AvgOtherDBs)
		r.Phases = append(r.Phases, p)
		logf("composite read c=%d: %.0f reads/s, p50 %.2f ms, p99 %.2f ms, errors %d", c, ls.PerSecond,
			ls.LatencyMs.P50, ls.LatencyMs.P99, ls.Errors)
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
