package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	nethttp "net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The mix phase: integrators' traffic in the demo workspace, closed loop at
// -mix-concurrency, beside the pure-create phase (POST /v1/tickets only,
// where the create targets are measured).
const (
	mixPatchShare       = 0.10 // of all requests: PATCH /v1/tickets/{id} on a ticket created earlier in the phase
	mixMessageShare     = 0.10 // of all requests: POST /v1/tickets/{id}/messages on one
	mixNewCustomerShare = 0.30 // of the creates: a fresh customer email
	mixKeyShare         = 0.50 // of all requests: a unique Idempotency-Key header
	mixTicketPool       = 4096 // the phase's most recent tickets, which the PATCHes and messages pick from
	mixBodies           = 64   // PATCH bodies and message bodies each
)

// The mix's request kinds.
const (
	mixCreateNew      = "create-new-customer"
	mixCreateExisting = "create-existing"
	mixPatch          = "patch"
	mixMessage        = "message"
)

var mixKinds = []string{mixCreateNew, mixCreateExisting, mixPatch, mixMessage}

// mixPhase is the mix phase as results.json shows it.
type mixPhase struct {
	loadStats                      // every request of the mix, whatever its kind
	CreatesPerSec          float64 `json:"creates_per_second"`           // 201s of both create kinds per second of the window
	SustainedCreatesPerSec float64 `json:"sustained_creates_per_second"` // those creates ÷ (window + catch-up)
	// PureCreatesPerSec is the pure-create phase's rate at the same
	// concurrency in this run (0: not measured).
	PureCreatesPerSec float64   `json:"pure_creates_per_second"`
	Kinds             []mixKind `json:"kinds"`        // per request kind, then with and without an Idempotency-Key
	KindsByKey        []mixKind `json:"kinds_by_key"` // per request kind and key
	CPU               cpuSplit  `json:"cpu"`
	// CPUPerRequestMs is CPU time per successful request of any kind, by
	// process.
	CPUPerRequestMs    cpuPerOp   `json:"cpu_ms_per_request"`
	CommitsPerRequest  float64    `json:"postgres_commits_per_request"`
	TuplesPerRequest   float64    `json:"postgres_tuples_returned_per_request"`
	PostgresActivity   pgActivity `json:"postgres_activity"`
	PostgresError      string     `json:"postgres_error,omitempty"`
	MaxRSSKB           uint64     `json:"max_rss_kb"`
	CatchUpSeconds     float64    `json:"projection_catch_up_seconds"` // from the end of the load
	DispatchCatchUpSec float64    `json:"relay_dispatch_catch_up_seconds_after_projection"`
}

// mixKind is one kind of the mix's requests: Requests counts the
// successful ones (201, or 200 for a PATCH), the latency every one, failed
// ones included.
type mixKind struct {
	Kind         string           `json:"kind"`
	Requests     int64            `json:"requests"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	Share        float64          `json:"share_of_requests"`
	PerSecond    float64          `json:"per_second"`
	LatencyMs    latencySummary   `json:"latency_ms"`
}

// mixTraffic makes and sends the mix's requests.
type mixTraffic struct {
	client   *nethttp.Client
	base     string // dev's URL
	key      string
	bodies   [][]byte // create bodies of the pool's customers
	patches  [][]byte
	messages [][]byte
	rngs     []*rand.Rand // one per worker

	serial  atomic.Int64 // fresh emails and Idempotency-Keys so far
	created atomic.Int64 // 201s of creates, warm-up included
	tickets ticketRing
}

func newMixTraffic(client *nethttp.Client, base, key string, bodies [][]byte, workers int) *mixTraffic {
	m := &mixTraffic{client: client, base: base, key: key, bodies: bodies, patches: mixPatchBodies(mixBodies)}
	for i, msg := range messageBodies(mixBodies) {
		author := "agent"
		if i%2 == 1 {
			author = "customer"
		}
		body, _ := json.Marshal(map[string]string{"body": msg, "author_type": author})
		m.messages = append(m.messages, body)
	}
	for w := range workers {
		m.rngs = append(m.rngs, rand.New(rand.NewPCG(uint64(w), 2024)))
	}
	return m
}

// mixPatchBodies are n PATCH /v1/tickets/{id} bodies an integrator's sync
// sends: a priority, a team, an assignee with a status move (new or open
// to open or pending; never solved or closed, so every one applies), a tag.
func mixPatchBodies(n int) [][]byte {
	r := rand.New(rand.NewPCG(11, 1011))
	teams := []string{"billing", "shipping", "tier-2", "returns"}
	out := make([][]byte, n)
	for i := range out {
		p := map[string]any{}
		switch i % 4 {
		case 0:
			p["priority"] = priorities[r.IntN(len(priorities))]
		case 1:
			p["team"] = teams[r.IntN(len(teams))]
		case 2:
			p["assignee_id"] = fmt.Sprintf("agent-%d", 1+r.IntN(20))
			p["status"] = []string{"open", "pending"}[r.IntN(2)]
		default:
			p["tags_add"] = []string{tagPool[r.IntN(len(tagPool))]}
		}
		out[i], _ = json.Marshal(p)
	}
	return out
}

// next sends worker's next request: a PATCH or a message on a ticket the
// phase created (a create while there is none yet), otherwise a create for
// a fresh customer or one of the pool's; half of them with a unique
// Idempotency-Key. Its label is the kind and whether it had a key.
func (m *mixTraffic) next(ctx context.Context, worker int) outcome {
	r := m.rngs[worker]
	req := request{method: "POST", url: m.base + "/v1/tickets", key: m.key, want: nethttp.StatusCreated}
	var kind, ticket string
	x := r.Float64()
	if x < mixPatchShare+mixMessageShare {
		ticket = m.tickets.pick(r)
	}
	switch {
	case ticket != "" && x < mixPatchShare:
		kind, req.method, req.want = mixPatch, "PATCH", nethttp.StatusOK
		req.url += "/" + ticket
		req.body = m.patches[r.IntN(len(m.patches))]
	case ticket != "":
		kind = mixMessage
		req.url += "/" + ticket + "/messages"
		req.body = m.messages[r.IntN(len(m.messages))]
	case r.Float64() < mixNewCustomerShare:
		kind = mixCreateNew
		req.body = freshCustomer(m.bodies[r.IntN(len(m.bodies))], m.serial.Add(1))
	default:
		kind = mixCreateExisting
		req.body = m.bodies[r.IntN(len(m.bodies))]
	}
	keyed := r.Float64() < mixKeyShare
	if keyed {
		req.idempotencyKey = fmt.Sprintf("bench-mix-%d", m.serial.Add(1))
	}
	id, errKind, err := call(ctx, m.client, req)
	if errKind == "" && (kind == mixCreateNew || kind == mixCreateExisting) {
		m.created.Add(1)
		m.tickets.add(id)
	} else {
		id = "" // only creates are sampled
	}
	return outcome{label: mixLabel(kind, keyed), id: id, kind: errKind, err: err}
}

func mixLabel(kind string, keyed bool) string {
	if keyed {
		return kind + " with key"
	}
	return kind + " without key"
}

// freshCustomer is a create body with its customer's email made unique by
// serial: a customer the service has not seen.
func freshCustomer(body []byte, serial int64) []byte {
	return bytes.Replace(body, []byte(`@example.com"`), fmt.Appendf(nil, `.new%d@example.com"`, serial), 1)
}

// ticketRing is the most recent mixTicketPool created tickets; safe for
// concurrent use.
type ticketRing struct {
	mu  sync.Mutex
	ids [mixTicketPool]string
	n   int // tickets added so far
}

func (t *ticketRing) add(id string) {
	if id == "" {
		return
	}
	t.mu.Lock()
	t.ids[t.n%len(t.ids)] = id
	t.n++
	t.mu.Unlock()
}

// pick is a random one of the ring's tickets, "" while it has none.
func (t *ticketRing) pick(r *rand.Rand) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return ""
	}
	return t.ids[r.IntN(min(t.n, len(t.ids)))]
}

// runMix loads the mix at -mix-concurrency for -warmup + -duration.
func (b *bench) runMix(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	c := b.o.mixConcurrency
	if !b.o.phases.has(phaseCreates) {
		b.res.note("mix: the creates phase did not run, so the first create for each of the pool's %d customers (warm-up included) makes the customer", customers)
	}
	logf("mix: c=%d, %s warm-up + %s", c, b.o.warmup, b.o.duration)
	m := newMixTraffic(client, b.dev.url, b.dev.key, bodies, c)
	w := b.openWindow(ctx, metricsClient, b.dev.url+"/metrics", b.o.warmup)
	ls, byLabel := runClosedLoop(ctx, c, b.o.warmup, b.o.duration, nil, m.next)
	loadEnd := time.Now()
	ws := w.close(ctx)
	b.created += uint64(m.created.Load())
	cu := b.catchUp(ctx, metricsClient, loadEnd, "the mix")

	p := &mixPhase{loadStats: ls, CPU: ws.CPU, PostgresActivity: ws.Activity, PostgresError: ws.PgErr, MaxRSSKB: ws.MaxRSSKB,
		CatchUpSeconds: cu.seconds, DispatchCatchUpSec: cu.dispatchSeconds}
	if ls.Requests > 0 && ws.PgErr == "" {
		p.CommitsPerRequest = round3(ws.PgDelta.Commits / float64(ls.Requests))
		p.TuplesPerRequest = round3(ws.PgDelta.Returned / float64(ls.Requests))
	}
	all := ls.Requests + ls.Errors
	var keyed, unkeyed, creates []*labelRecord
	for _, k := range mixKinds {
		with, without := byLabel[mixLabel(k, true)], byLabel[mixLabel(k, false)]
		p.Kinds = append(p.Kinds, sumKind(k, ls.Seconds, all, with, without))
		p.KindsByKey = append(p.KindsByKey, sumKind(mixLabel(k, true), ls.Seconds, all, with),
			sumKind(mixLabel(k, false), ls.Seconds, all, without))
		keyed, unkeyed = append(keyed, with), append(unkeyed, without)
		if k == mixCreateNew || k == mixCreateExisting {
			creates = append(creates, with, without)
		}
	}
	p.Kinds = append(p.Kinds, sumKind("with key", ls.Seconds, all, keyed...), sumKind("without key", ls.Seconds, all, unkeyed...))
	made := sumKind("creates", ls.Seconds, all, creates...)
	p.CreatesPerSec = made.PerSecond
	p.SustainedCreatesPerSec = sustained(made.Requests, ls.Seconds, cu.seconds)
	b.res.Mix = p
	if ls.Errors > 0 {
		b.res.note("mix: %d of %d requests failed (%v); the first: %s", ls.Errors, all, ls.ErrorsByKind, ls.FirstError)
	}
	b.disturbance("mix", p.CPU, ws.Activity.AvgOtherDBs)
	logf("mix c=%d: %.0f requests/s (%.0f creates/s), p50 %.1f ms, p99 %.1f ms, errors %d; projection caught up %.1f s after the load",
		c, ls.PerSecond, p.CreatesPerSec, ls.LatencyMs.P50, ls.LatencyMs.P99, ls.Errors, cu.seconds)
	return ctx.Err()
}

// sumKind sums the records of one kind (nil ones had no request): its
// successes per second of the window, its share of all requests and the
// latency over every request, failed ones included.
func sumKind(kind string, seconds float64, all int64, recs ...*labelRecord) mixKind {
	k := mixKind{Kind: kind}
	var lat []time.Duration
	for _, r := range recs {
		if r == nil {
			continue
		}
		k.Requests += int64(len(r.OK))
		lat = append(lat, r.All...)
		for e, n := range r.Errors {
			k.Errors += n
			if k.ErrorsByKind == nil {
				k.ErrorsByKind = map[string]int64{}
			}
			k.ErrorsByKind[e] += n
		}
	}
	k.LatencyMs = summarize(lat)
	if seconds > 0 {
		k.PerSecond = round1(float64(k.Requests) / seconds)
	}
	if all > 0 {
		k.Share = round3(float64(k.Requests+k.Errors) / float64(all))
	}
	return k
}
