package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

const (
	customers       = 1000 // distinct customer emails the bodies spread over
	bodyPool        = 4096 // pre-built request bodies, so building them costs the load generator nothing
	maxPerWorker    = 1 << 22
	transportBackof = 10 * time.Millisecond
)

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
		"Radia", "John", "Sophie", "Leslie", "Hedy", "Tim", "Katherine", "Niklaus", "Shafi", "Linus"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
		"Ritchie", "Perlman", "McCarthy", "Wilson", "Lamport", "Lamarr", "Berners-Lee", "Johnson", "Wirth", "Goldwasser", "Torvalds"}
	subjects = []string{"Refund for order %d", "Order %d arrived damaged", "Cannot log in since update %d",
		"Invoice %d shows the wrong VAT", "Where is my parcel (order %d)?", "Feature request: export #%d",
		"Charged twice for order %d", "Password reset mail never arrives (case %d)"}
	priorities = []string{"low", "normal", "normal", "normal", "high", "urgent"}
	tagPool    = []string{"refund", "billing", "shipping", "login", "bug", "feature-request", "vip", "invoice", "damaged", "mobile"}
	products   = []string{"espresso machine", "standing desk", "noise-cancelling headphones", "mechanical keyboard", "e-bike battery"}
)

type createBody struct {
	Subject  string `json:"subject"`
	Customer struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	} `json:"customer"`
	Message struct {
		Body string `json:"body"`
	} `json:"message"`
	Priority string   `json:"priority"`
	Tags     []string `json:"tags"`
}

// makeBodies builds realistic POST /v1/tickets bodies: ~1000 distinct
// customers, a few hundred bytes of HTML, a priority and 1–3 tags.
func makeBodies(n int) [][]byte {
	r := rand.New(rand.NewPCG(42, 1042))
	out := make([][]byte, n)
	for i := range out {
		var b createBody
		c := r.IntN(customers)
		first, last := firstNames[c%len(firstNames)], lastNames[(c/len(firstNames))%len(lastNames)]
		order := 10000 + r.IntN(90000)
		b.Subject = fmt.Sprintf(subjects[r.IntN(len(subjects))], order)
		b.Customer.Email = fmt.Sprintf("%s.%s.%04d@example.com", strings.ToLower(first), strings.ToLower(last), c)
		b.Customer.Name = first + " " + last
		product := products[r.IntN(len(products))]
		b.Message.Body = fmt.Sprintf(`<p>Hello support team,</p>`+
			`<p>I ordered the <b>%s</b> (order <a href="https://shop.example.com/orders/%d">#%d</a>) on %s, `+
			`and it arrived with a cracked housing. The box looked fine, so it must have happened before packing.</p>`+
			`<ul><li>Serial number: SN-%08d</li><li>Delivered by: Parcel Express</li><li>Photos: attached to my previous mail</li></ul>`+
			`<p>Could you send a replacement or refund the <i>%d.%02d EUR</i>? I would prefer a replacement.</p>`+
			`<p>Kind regards,<br>%s %s</p>`,
			product, order, order, time.Date(2025, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format("2 January 2006"),
			r.IntN(100000000), 20+r.IntN(900), r.IntN(100), first, last)
		b.Priority = priorities[r.IntN(len(priorities))]
		for _, j := range r.Perm(len(tagPool))[:1+r.IntN(3)] {
			b.Tags = append(b.Tags, tagPool[j])
		}
		out[i], _ = json.Marshal(b)
	}
	return out
}

func avgLen(bodies [][]byte) int {
	total := 0
	for _, b := range bodies {
		total += len(b)
	}
	return total / max(len(bodies), 1)
}

// newClient is the load generator's client: keep-alive connections, enough
// idle ones per host for the highest concurrency, no HTTP/2, no compression.
func newClient(maxConcurrency int) *nethttp.Client {
	return &nethttp.Client{
		Timeout: 30 * time.Second,
		Transport: &nethttp.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        maxConcurrency * 2,
			MaxIdleConnsPerHost: maxConcurrency * 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// target is where a load phase sends its POSTs.
type target struct {
	url        string
	key        string
	wantStatus int
}

// loadStats is one load phase as the client saw it.
type loadStats struct {
	Concurrency    int              `json:"concurrency"`
	Seconds        float64          `json:"seconds"`
	Requests       int64            `json:"requests"`
	Items          int64            `json:"items,omitempty"` // units of work of the successful requests that do several (batch items created)
	Errors         int64            `json:"errors"`
	ErrorsByKind   map[string]int64 `json:"errors_by_kind,omitempty"`
	FirstError     string           `json:"first_error,omitempty"`
	PerSecond      float64          `json:"per_second"`
	LatencyMs      latencySummary   `json:"latency_ms"`
	WarmupRequests int64            `json:"warmup_requests"`
}

type latencySummary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func summarize(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.5) - 1
		return ms(ds[min(max(i, 0), len(ds)-1)])
	}
	return latencySummary{N: len(ds), Mean: ms(sum / time.Duration(len(ds))), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(ds[len(ds)-1])}
}

// sampler picks about n successful creates spread evenly over a phase.
type sampler struct {
	next     atomic.Int64 // unix nanos of the next sample
	interval int64
	left     atomic.Int64
	add      func(id string, at time.Time)
}

func newSampler(start time.Time, d time.Duration, n int, add func(id string, at time.Time)) *sampler {
	s := &sampler{interval: int64(d) / int64(n), add: add}
	s.next.Store(start.UnixNano())
	s.left.Store(int64(n))
	return s
}

func (s *sampler) offer(id string, at time.Time) {
	if s == nil || id == "" {
		return
	}
	next := s.next.Load()
	if at.UnixNano() < next || s.left.Load() <= 0 || !s.next.CompareAndSwap(next, next+s.interval) {
		return
	}
	s.left.Add(-1)
	s.add(id, at)
}

// runLoad sends POSTs from c workers: warmup first (not recorded), then
// measured for d. Each worker sends its next request as soon as the previous
// one is answered (closed loop). Requests that started inside the measured
// window count; the rate divides them by the time until the last finished.
func runLoad(ctx context.Context, client *nethttp.Client, t target, bodies [][]byte, c int, warmup, d time.Duration, smp func(start time.Time) *sampler) loadStats {
	var bodyIndex atomic.Uint64
	ls, _ := runClosedLoop(ctx, c, warmup, d, smp, func(ctx context.Context, _ int) outcome {
		body := bodies[bodyIndex.Add(1)%uint64(len(bodies))]
		id, kind, err := post(ctx, client, t, body)
		return outcome{id: id, kind: kind, err: err}
	})
	return ls
}

// meanOfSummaries averages the rounds' summaries (the gaps of different
// rounds are not one series).
func meanOfSummaries(ss []latencySummary) latencySummary {
	var out latencySummary
	if len(ss) == 0 {
		return out
	}
	for _, s := range ss {
		out.N += s.N
		out.Mean += s.Mean / float64(len(ss))
		out.P50 += s.P50 / float64(len(ss))
		out.P90 += s.P90 / float64(len(ss))
		out.P99 += s.P99 / float64(len(ss))
		out.Max = max(out.Max, s.Max)
	}
	out.Mean, out.P50, out.P90, out.P99 = round3(out.Mean), round3(out.P50), round3(out.P90), round3(out.P99)
	return out
}
