package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
)

// The webhooks phase: webhook deliveries per second through the delivery
// pipeline (the Postgres queue, dispatch.DeliveryWorker, webhook.Sender) to
// a local receiver, against a plain net/http client posting the same bodies
// to the same receiver, in the same run (issue: "target ≥ 50 % of it").
//
// It runs in the bench process on a Postgres database of its own: the dev
// process runs a DeliveryWorker of its own (with another keyring) on the
// bench database, which would claim the deliveries.
const (
	webhookHooks        = 16   // webhooks of one workspace, each its own receiver address
	webhookConcurrency  = 64   // DeliveryWorkerConfig.Concurrency's default; the plain client's goroutines
	webhookPerHook      = 4    // DeliveryWorkerConfig.PerWebhook's default
	targetWebhookRatio  = 0.50 // deliveries/s ÷ plain client requests/s
	webhookEnqueueBatch = 1000
	webhookVerifyEvery  = 50 // the receiver verifies every n-th delivery's signature
	webhookPoolConns    = 32 // serve's default HDF_POSTGRES_MAX_CONNS
)

// webhookOrder is the order of the rounds: true is the pipeline. ABBA, so
// that a drift over the phase weighs on both sides alike.
var webhookOrder = []bool{false, true, true, false}

// webhooksResult is the webhooks phase as results.json shows it.
type webhooksResult struct {
	Deliveries   int     `json:"deliveries_per_pipeline_round"`
	Webhooks     int     `json:"webhooks"`
	Concurrency  int     `json:"concurrency"`
	PerWebhook   int     `json:"per_webhook"`
	BodyBytesAvg int     `json:"body_bytes_avg"`
	RoundOrder   string  `json:"round_order"`
	PlainMinSecs float64 `json:"plain_min_seconds_per_round"`
	Database     string  `json:"postgres_database"`
	Receiver     string  `json:"receiver"`

	Plain       hookSide `json:"plain_client"`
	Pipeline    hookSide `json:"pipeline"`
	Ratio       float64  `json:"ratio_per_second"` // Pipeline ÷ Plain
	TargetRatio float64  `json:"target_ratio"`
	TargetMet   bool     `json:"target_met"`

	SignaturesVerified int64       `json:"signatures_verified"`
	SignatureFailures  int64       `json:"signature_failures"`
	FirstSignatureErr  string      `json:"first_signature_error,omitempty"`
	Rounds             []hookRound `json:"rounds"`
}

// hookSide is one side of the comparison: its rounds together.
type hookSide struct {
	Rounds    int     `json:"rounds"`
	Requests  int64   `json:"requests"` // plain: 2xx answers; pipeline: deliveries succeeded
	Errors    int64   `json:"errors"`   // plain: failed requests; pipeline: deliveries not succeeded
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// LatencyMs is, for the plain client, each request's time; for the
	// pipeline, each attempt's Duration as the worker recorded it
	// (webhook_attempts.duration_ms): the same POST seen from the sender.
	LatencyMs         latencySummary `json:"latency_ms"`
	ReceiverGapMs     latencySummary `json:"receiver_inter_arrival_ms"`
	CPUPerDeliveryMs  cpuPerOp       `json:"cpu_ms_per_delivery"`
	ConnectionsOpened int64          `json:"connections_opened"`
}

// hookRound is one round: the plain client, or N fresh deliveries through
// the pipeline.
type hookRound struct {
	Pipeline          bool           `json:"pipeline"`
	Requests          int64          `json:"requests"`
	Errors            int64          `json:"errors"`
	FirstError        string         `json:"first_error,omitempty"`
	Seconds           float64        `json:"seconds"`
	PerSecond         float64        `json:"per_second"`
	LatencyMs         latencySummary `json:"latency_ms"`
	ReceiverRequests  int64          `json:"receiver_requests"`
	ReceiverGapMs     latencySummary `json:"receiver_inter_arrival_ms"`
	ConnectionsOpened int64          `json:"connections_opened"`
	CPU               cpuSplit       `json:"cpu"`

	// The pipeline only.
	EnqueueSeconds      float64          `json:"enqueue_seconds,omitempty"`
	FirstArrivalSeconds float64          `json:"first_arrival_seconds,omitempty"` // worker start → first request at the receiver
	LastArrivalSeconds  float64          `json:"last_arrival_seconds,omitempty"`  // worker start → last request at the receiver
	Statuses            map[string]int64 `json:"statuses,omitempty"`
	Attempts            int64            `json:"attempts,omitempty"`
	ErrorClasses        map[string]int64 `json:"error_classes,omitempty"`
	TimedOut            bool             `json:"timed_out,omitempty"`
	// The worker's calls to the queue (timed around dispatch.WebhookStore):
	// how many claims, deliveries per claim, and how long each call took.
	Claims             int64           `json:"claims,omitempty"`
	EmptyClaims        int64           `json:"empty_claims,omitempty"`
	DeliveriesPerClaim float64         `json:"deliveries_per_claim,omitempty"`
	ClaimMs            *latencySummary `json:"claim_ms,omitempty"`
	FinishMs           *latencySummary `json:"finish_attempt_ms,omitempty"`
	CommitsPerDelivery float64         `json:"postgres_commits_per_delivery,omitempty"`
	TuplesPerDelivery  float64         `json:"postgres_tuples_returned_per_delivery,omitempty"`
	PostgresActivity   *pgActivity     `json:"postgres_activity,omitempty"`
	PostgresError      string          `json:"postgres_error,omitempty"`
}

// hookReceiver is the local receiver: one net/http server listening on
// 127.0.0.1 … 127.0.0.16 (one address per webhook, as distinct receivers
// would be), answering 200 with a small body at once.
type hookReceiver struct {
	srv       *nethttp.Server
	listeners []net.Listener
	port      int
	secrets   []string // by webhook index, for the sampled signature checks

	requests atomic.Int64 // this round
	conns    atomic.Int64 // connections accepted, ever
	arrivals []int64      // unix nanos, this round, up to len
	next     atomic.Int64
	verified atomic.Int64
	badSig   atomic.Int64
	firstBad atomic.Value // string
}

var hookOK = []byte(`{"received":true}`)

func startHookReceiver(n int) (*hookReceiver, error) {
	r := &hookReceiver{secrets: make([]string, n)}
	r.srv = &nethttp.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ConnState: func(_ net.Conn, s nethttp.ConnState) {
			if s == nethttp.StateNew {
				r.conns.Add(1)
			}
		},
	}
	for i := range n {
		addr := fmt.Sprintf("127.0.0.%d:%d", i+1, r.port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range r.listeners {
				l.Close()
			}
			return nil, fmt.Errorf("receiver: listen on %s: %w", addr, err)
		}
		if i == 0 {
			r.port = ln.Addr().(*net.TCPAddr).Port
		}
		r.listeners = append(r.listeners, ln)
	}
	for _, ln := range r.listeners {
		go r.srv.Serve(ln)
	}
	return r, nil
}

// url is webhook i's address; the plain client posts to the same.
func (r *hookReceiver) url(i int) string {
	return fmt.Sprintf("http://127.0.0.%d:%d/hooks/%d", i%len(r.listeners)+1, r.port, i%len(r.listeners))
}

// reset starts a round, recording up to n arrival times.
func (r *hookReceiver) reset(n int) {
	r.requests.Store(0)
	r.next.Store(0)
	r.arrivals = make([]int64, n)
}

func (r *hookReceiver) ServeHTTP(w nethttp.ResponseWriter, req *nethttp.Request) {
	at := time.Now().UnixNano()
	body, _ := io.ReadAll(req.Body)
	if i := r.next.Add(1) - 1; i < int64(len(r.arrivals)) {
		r.arrivals[i] = at
	}
	n := r.requests.Add(1)
	if sig := req.Header.Get("X-HDF-Signature"); sig != "" && n%webhookVerifyEvery == 0 {
		hook, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hooks/"))
		switch {
		case err != nil || hook < 0 || hook >= len(r.secrets):
			err = fmt.Errorf("unexpected path %s", req.URL.Path)
			r.bad(err)
		default:
			if err := webhook.Verify(sig, body, r.secrets[hook], 0, time.Now()); err != nil {
				r.bad(err)
			} else {
				r.verified.Add(1)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(hookOK)
}

func (r *hookReceiver) bad(err error) {
	r.badSig.Add(1)
	r.firstBad.CompareAndSwap(nil, err.Error())
}

// gaps summarizes the times between arrivals of this round.
func (r *hookReceiver) gaps() latencySummary {
	n := min(int(r.next.Load()), len(r.arrivals))
	if n < 2 {
		return latencySummary{}
	}
	at := slices.Clone(r.arrivals[:n])
	slices.Sort(at)
	ds := make([]time.Duration, n-1)
	for i := 1; i < n; i++ {
		ds[i-1] = time.Duration(at[i] - at[i-1])
	}
	return summarize(ds)
}

func (r *hookReceiver) span() (first, last time.Time) {
	n := min(int(r.next.Load()), len(r.arrivals))
	if n == 0 {
		return
	}
	lo, hi := r.arrivals[0], r.arrivals[0]
	for _, a := range r.arrivals[:n] {
		lo, hi = min(lo, a), max(hi, a)
	}
	return time.Unix(0, lo), time.Unix(0, hi)
}

func (r *hookReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
}

// webhookBodies builds n delivery bodies as WebhookHandler writes them: a
// ticket.created event of the workspace with its data, about 1 KB.
func webhookBodies(n int, workspaceID uuid.UUID) [][]byte {
	r := rand.New(rand.NewPCG(7, 1007))
	out := make([][]byte, n)
	type payload struct {
		ID          uuid.UUID                  `json:"id"`
		Type        string                     `json:"type"`
		WorkspaceID uuid.UUID                  `json:"workspace_id"`
		OccurredAt  string                     `json:"occurred_at"`
		Data        helpdeskflow.TicketCreated `json:"data"`
	}
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	for i := range out {
		c := r.IntN(customers)
		first, last := firstNames[c%len(firstNames)], lastNames[(c/len(firstNames))%len(lastNames)]
		order := 10000 + r.IntN(90000)
		product := products[r.IntN(len(products))]
		text := fmt.Sprintf("Hello support team, I ordered the %s (order #%d) and it arrived with a cracked housing. "+
			"Could you send a replacement or refund the %d.%02d EUR? Kind regards, %s %s", product, order, 20+r.IntN(900), r.IntN(100), first, last)
		d := helpdeskflow.TicketCreated{Subject: fmt.Sprintf(subjects[r.IntN(len(subjects))], order), Status: "open",
			Priority: priorities[r.IntN(len(priorities))], Type: "question", Channel: "api", CustomerID: uuid.New(),
			Message: helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: "customer", Body: "<p>" + text + "</p>", BodyText: text}}
		for _, j := range r.Perm(len(tagPool))[:1+r.IntN(3)] {
			d.Tags = append(d.Tags, tagPool[j])
		}
		out[i], _ = json.Marshal(payload{ID: uuid.New(), Type: helpdeskflow.EventTicketCreated, WorkspaceID: workspaceID,
			OccurredAt: t0.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00"), Data: d})
	}
	return out
}

// runWebhooks is the webhooks phase.
func (b *bench) runWebhooks(ctx context.Context) (err error) {
	n := b.o.webhookDeliveries
	h := &webhooksResult{Deliveries: n, Webhooks: webhookHooks, Concurrency: webhookConcurrency, PerWebhook: webhookPerHook,
		RoundOrder: pipelineOrder(webhookOrder), TargetRatio: targetWebhookRatio,
		PlainMinSecs: max(b.o.duration/2, 2*time.Second).Seconds()}
	b.res.Webhooks = h

	// A database of the phase's own, migrated.
	name := b.pg.name + "_hooks"
	db, err := createPostgresDatabase(ctx, os.Getenv("HDF_POSTGRES_URL"), name)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	h.Database = name
	defer func() {
		if b.o.keep {
			logf("kept Postgres database %s", name)
			db.close()
			return
		}
		if derr := db.drop(); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	pool, err := eventstore.Connect(ctx, db.url, webhookPoolConns)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	defer pool.Close()
	if err := eventstore.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("webhooks: migrate %s: %w", name, err)
	}
	store, err := eventstore.New(pool, nil)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	spec, err := secretbox.NewKey("bench1")
	if err != nil {
		return err
	}
	keyring, err := secretbox.ParseKeyring(spec)
	if err != nil {
		return err
	}
	svc := outbound.New(outbound.AdaptStore(store), outbound.WithSecrets(keyring, true))
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "bench"}, Channel: helpdeskflow.ChannelSystem}
	wsID, _, err := access.New(access.AdaptStore(store)).CreateWorkspace(ctx, md, "bench webhooks")
	if err != nil {
		return fmt.Errorf("webhooks: create workspace: %w", err)
	}

	recv, err := startHookReceiver(webhookHooks)
	if err != nil {
		b.res.note("webhooks phase skipped: %v", err)
		b.res.Webhooks = nil
		return nil
	}
	defer recv.close()
	h.Receiver = fmt.Sprintf("net/http server in the bench process on 127.0.0.1–127.0.0.%d:%d, 200 with a %d-byte body", webhookHooks, recv.port, len(hookOK))
	hookIDs := make([]uuid.UUID, webhookHooks)
	for i := range hookIDs {
		nw, err := svc.CreateWebhook(ctx, wsID, md, outbound.CreateWebhook{URL: recv.url(i), EventTypes: []string{"*"}})
		if err != nil {
			return fmt.Errorf("webhooks: create webhook %d: %w", i, err)
		}
		hookIDs[i], recv.secrets[i] = nw.ID, nw.Secret
	}
	bodies := webhookBodies(n, wsID)
	h.BodyBytesAvg = avgLen(bodies)
	logf("webhooks: %d webhooks in workspace %s (database %s), %d deliveries per pipeline round, avg body %d B", webhookHooks, wsID, name, n, h.BodyBytesAvg)

	var lat [2][]time.Duration
	var cpuSecs [2]cpuPerOp
	for round, pipeline := range webhookOrder {
		side, label := 0, "plain net/http client"
		if pipeline {
			side, label = 1, "delivery pipeline"
		}
		logf("webhooks round %d/%d (%s): %d bodies at %d in flight", round+1, len(webhookOrder), label, n, webhookConcurrency)
		var p hookRound
		var ds []time.Duration
		if pipeline {
			p, ds, err = b.pipelineRound(ctx, db, store, keyring, recv, hookIDs, wsID, bodies)
		} else {
			p, ds = b.plainRound(ctx, recv, bodies, time.Duration(h.PlainMinSecs*float64(time.Second)))
		}
		if err != nil {
			return fmt.Errorf("webhooks round %d: %w", round+1, err)
		}
		lat[side] = append(lat[side], ds...)
		sec := func(pct float64) float64 { return pct / 100 * p.Seconds }
		cpuSecs[side].Dev += sec(p.CPU.DevPct)
		cpuSecs[side].Postgres += sec(p.CPU.PostgresPct)
		cpuSecs[side].ClickHouse += sec(p.CPU.ClickHousePct)
		cpuSecs[side].Bench += sec(p.CPU.LoadGenPct)
		cpuSecs[side].Machine += sec(p.CPU.MachineBusyPct * float64(max(p.CPU.Cores, 1)))
		if p.Errors > 0 {
			b.res.note("webhooks round %d (%s): %d failed; the first: %s", round+1, label, p.Errors, p.FirstError)
		}
		b.disturbance(fmt.Sprintf("webhooks round %d (%s)", round+1, label), p.CPU, 0)
		h.Rounds = append(h.Rounds, p)
		logf("webhooks round %d (%s): %.0f/s over %.1f s, latency p50 %.2f ms p99 %.2f ms, receiver gap p99 %.2f ms, %d connections, errors %d",
			round+1, label, p.PerSecond, p.Seconds, p.LatencyMs.P50, p.LatencyMs.P99, p.ReceiverGapMs.P99, p.ConnectionsOpened, p.Errors)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	for side, s := range []*hookSide{&h.Plain, &h.Pipeline} {
		var gaps []latencySummary
		for _, p := range h.Rounds {
			if p.Pipeline != (side == 1) {
				continue
			}
			s.Rounds++
			s.Requests += p.Requests
			s.Errors += p.Errors
			s.Seconds += p.Seconds
			s.ConnectionsOpened += p.ConnectionsOpened
			gaps = append(gaps, p.ReceiverGapMs)
		}
		s.Seconds = round3(s.Seconds)
		if s.Seconds > 0 {
			s.PerSecond = round1(float64(s.Requests) / s.Seconds)
		}
		s.LatencyMs = summarize(lat[side])
		s.ReceiverGapMs = meanOfSummaries(gaps)
		if s.Requests > 0 {
			per := func(v float64) float64 { return round3(v * 1000 / float64(s.Requests)) }
			x := cpuSecs[side]
			s.CPUPerDeliveryMs = cpuPerOp{Dev: per(x.Dev), Postgres: per(x.Postgres), ClickHouse: per(x.ClickHouse), Bench: per(x.Bench), Machine: per(x.Machine)}
		}
	}
	if h.Plain.PerSecond > 0 {
		h.Ratio = round3(h.Pipeline.PerSecond / h.Plain.PerSecond)
	}
	h.SignaturesVerified, h.SignatureFailures = recv.verified.Load(), recv.badSig.Load()
	if s, ok := recv.firstBad.Load().(string); ok {
		h.FirstSignatureErr = s
		b.res.note("webhooks: %d of %d sampled signatures did not verify; the first: %s", h.SignatureFailures, h.SignatureFailures+h.SignaturesVerified, s)
	}
	h.TargetMet = h.valid() && h.Ratio >= targetWebhookRatio
	logf("webhooks: %.0f deliveries/s through the pipeline, %.0f requests/s from a plain client: ratio %.3f (target >= %.2f: %s)",
		h.Pipeline.PerSecond, h.Plain.PerSecond, h.Ratio, targetWebhookRatio, passMiss(h.TargetMet))
	return nil
}

// valid says whether the comparison measured what it should: both sides
// ran, without failures, and the sampled signatures verified.
func (h *webhooksResult) valid() bool {
	return h.Plain.Requests > 0 && h.Pipeline.Requests > 0 && h.Plain.Errors == 0 && h.Pipeline.Errors == 0 &&
		h.SignatureFailures == 0 && h.SignaturesVerified > 0
}

// plainRound posts the bodies with webhookConcurrency goroutines and a
// plain keep-alive client, in passes over them until at least minDur has
// passed; each body goes to its webhook's receiver address.
func (b *bench) plainRound(ctx context.Context, recv *hookReceiver, bodies [][]byte, minDur time.Duration) (hookRound, []time.Duration) {
	client := &nethttp.Client{Timeout: 30 * time.Second, Transport: &nethttp.Transport{
		Proxy:               nil,
		MaxIdleConns:        2 * webhookConcurrency,
		MaxIdleConnsPerHost: webhookConcurrency,
		IdleConnTimeout:     90 * time.Second,
	}}
	defer client.CloseIdleConnections()
	urls := make([]string, webhookHooks)
	for i := range urls {
		urls[i] = recv.url(i)
	}
	recv.reset(len(bodies) * 8)
	conns0 := recv.conns.Load()
	p := hookRound{}
	var next, okN, errN atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, webhookConcurrency)
	cpu0 := b.procs.snap()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range webhookConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= int64(len(bodies)) && time.Since(start) >= minDur {
					return
				}
				i := int(k % int64(len(bodies)))
				t := time.Now()
				err := plainPost(ctx, client, urls[i%webhookHooks], bodies[i])
				if err != nil {
					errN.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[g] = append(lats[g], time.Since(t))
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	p.CPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	p.Seconds = round3(elapsed.Seconds())
	p.Requests, p.Errors = okN.Load(), errN.Load()
	if s, ok := firstErr.Load().(string); ok {
		p.FirstError = s
	}
	p.PerSecond = round1(float64(p.Requests) / elapsed.Seconds())
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	p.LatencyMs = summarize(slices.Clone(all))
	p.ReceiverRequests = recv.requests.Load()
	p.ReceiverGapMs = recv.gaps()
	p.ConnectionsOpened = recv.conns.Load() - conns0
	return p, all
}

func plainPost(ctx context.Context, client *nethttp.Client, url string, body []byte) error {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// pipelineRound enqueues one delivery per body (each of its own stream,
// spread over the webhooks in turn), then runs a DeliveryWorker with its
// defaults until none is pending.
func (b *bench) pipelineRound(ctx context.Context, db *pgDatabase, store *eventstore.Store, keyring *secretbox.Keyring, recv *hookReceiver,
	hookIDs []uuid.UUID, wsID uuid.UUID, bodies [][]byte) (hookRound, []time.Duration, error) {
	p := hookRound{Pipeline: true}
	n := len(bodies)

	// Enqueue, as WebhookHandler does, in batches.
	t := time.Now()
	round := uuid.New() // event ids differ from round to round
	for lo := 0; lo < n; lo += webhookEnqueueBatch {
		at := time.Now()
		var ds []helpdeskflow.Delivery
		for i := lo; i < min(lo+webhookEnqueueBatch, n); i++ {
			ds = append(ds, helpdeskflow.Delivery{ID: uuid.New(), WebhookID: hookIDs[i%len(hookIDs)], WorkspaceID: wsID,
				EventID: uuid.NewSHA1(round, []byte(strconv.Itoa(i))), EventType: helpdeskflow.EventTicketCreated,
				StreamID: uuid.New(), StreamVersion: 1, Payload: bodies[i], MaxAttempts: 3, NextAttemptAt: &at})
		}
		if err := store.EnqueueDeliveries(ctx, ds); err != nil {
			return p, nil, err
		}
	}
	p.EnqueueSeconds = round3(time.Since(t).Seconds())
	// What autovacuum would do soon after such a batch: the claim query's
	// plan depends on the statistics.
	if err := db.exec(ctx, "VACUUM ANALYZE webhook_deliveries"); err != nil {
		return p, nil, err
	}
	if err := db.exec(ctx, "ANALYZE webhook_attempts"); err != nil {
		return p, nil, err
	}

	timed := &timedStore{WebhookStore: store}
	sender := webhook.NewSender(webhook.Config{AllowLoopback: true})
	defer sender.CloseIdleConnections()
	worker, err := dispatch.NewDeliveryWorker(dispatch.DeliveryWorkerConfig{
		Store: timed, Sender: sender, Secrets: keyring,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return p, nil, err
	}
	recv.reset(2 * n)
	conns0 := recv.conns.Load()
	pg0, pg0Err := readPgDBStats(ctx, db)
	pgs := startPgSampler(ctx, db, 0)
	cpu0 := b.procs.snap()
	wctx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	start := time.Now()
	go func() { runDone <- worker.Run(wctx) }()

	// Wait until nothing is pending: the receiver's count first (cheap),
	// then the queue, at least once a second.
	limit := max(b.o.settleTimeout, 2*time.Minute, time.Duration(n)*time.Millisecond*20)
	var elapsed time.Duration
	lastDB := time.Now()
	for {
		sleepCtx(ctx, 20*time.Millisecond)
		if ctx.Err() != nil {
			break
		}
		if recv.requests.Load() < int64(n) && time.Since(lastDB) < time.Second {
			continue
		}
		lastDB = time.Now()
		pending, err := db.queryString(ctx, "SELECT count(*)::text FROM webhook_deliveries WHERE status = 'pending'")
		if err == nil && pending == "0" {
			elapsed = time.Since(start)
			break
		}
		if time.Since(start) > limit {
			p.TimedOut = true
			elapsed = time.Since(start)
			b.res.note("webhooks: deliveries still pending %s after the worker started (%s of %d): the round is cut short", elapsed.Round(time.Second), pending, n)
			break
		}
	}
	p.CPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	act := pgs.finish()
	pg1, pg1Err := readPgDBStats(ctx, db)
	stop()
	<-runDone

	if elapsed <= 0 {
		elapsed = time.Since(start)
	}
	p.Seconds = round3(elapsed.Seconds())
	p.ReceiverRequests = recv.requests.Load()
	p.ReceiverGapMs = recv.gaps()
	p.ConnectionsOpened = recv.conns.Load() - conns0
	if first, last := recv.span(); !first.IsZero() {
		p.FirstArrivalSeconds = round3(first.Sub(start).Seconds())
		p.LastArrivalSeconds = round3(last.Sub(start).Seconds())
	}
	p.PostgresActivity = &act
	timed.mu.Lock()
	p.Claims, p.EmptyClaims = int64(len(timed.claims)), timed.misses
	if p.Claims > 0 {
		p.DeliveriesPerClaim = round3(float64(timed.claimed) / float64(p.Claims))
	}
	cs, fs := summarize(timed.claims), summarize(timed.finish)
	p.ClaimMs, p.FinishMs = &cs, &fs
	timed.mu.Unlock()
	if pg0Err == nil && pg1Err == nil {
		d := pg1.since(pg0)
		p.CommitsPerDelivery = round3(d.Commits / float64(n))
		p.TuplesPerDelivery = round3(d.Returned / float64(n))
	} else {
		p.PostgresError = fmt.Sprint(pg0Err, " / ", pg1Err)
	}

	// What the queue says: statuses, attempts and their durations, error
	// classes. The table holds earlier rounds' deliveries too: this
	// round's are those of its event ids' namespace, which the created_at
	// after t selects.
	p.Statuses = map[string]int64{}
	rows, err := db.queryRows(ctx, "SELECT status, count(*) FROM webhook_deliveries WHERE created_at >= $1 GROUP BY status", t)
	if err != nil {
		return p, nil, fmt.Errorf("read the delivery statuses: %w", err)
	}
	for _, r := range rows {
		p.Statuses[fmt.Sprint(r[0])] = toInt64(r[1])
	}
	p.Requests = p.Statuses[helpdeskflow.DeliverySucceeded]
	p.Errors = int64(n) - p.Requests
	p.PerSecond = round1(float64(p.Requests) / elapsed.Seconds())
	rows, err = db.queryRows(ctx, `SELECT a.duration_ms, a.error_class, a.error FROM webhook_attempts a
		JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.created_at >= $1`, t)
	if err != nil {
		return p, nil, fmt.Errorf("read the attempts: %w", err)
	}
	var ds []time.Duration
	for _, r := range rows {
		p.Attempts++
		ms, _ := r[0].(float64)
		ds = append(ds, time.Duration(ms*float64(time.Millisecond)))
		if class := fmt.Sprint(r[1]); class != "" {
			if p.ErrorClasses == nil {
				p.ErrorClasses = map[string]int64{}
			}
			p.ErrorClasses[class]++
			if p.FirstError == "" {
				p.FirstError = class + ": " + fmt.Sprint(r[2])
			}
		}
	}
	p.LatencyMs = summarize(slices.Clone(ds))
	if p.Errors > 0 && p.FirstError == "" {
		p.FirstError = fmt.Sprintf("statuses %v", p.Statuses)
	}
	return p, ds, nil
}

// timedStore counts and times the worker's calls to the queue.
type timedStore struct {
	dispatch.WebhookStore
	mu              sync.Mutex
	claims, finish  []time.Duration
	claimed, misses int64
}

func (s *timedStore) ClaimDeliveries(ctx context.Context, now time.Time, limit, perWebhook int, busy []uuid.UUID, lease time.Duration) ([]eventstore.ClaimedDelivery, error) {
	t := time.Now()
	out, err := s.WebhookStore.ClaimDeliveries(ctx, now, limit, perWebhook, busy, lease)
	d := time.Since(t)
	s.mu.Lock()
	s.claims = append(s.claims, d)
	s.claimed += int64(len(out))
	if len(out) == 0 {
		s.misses++
	}
	s.mu.Unlock()
	return out, err
}

func (s *timedStore) FinishAttempts(ctx context.Context, fs []eventstore.FinishedAttempt) error {
	t := time.Now()
	err := s.WebhookStore.FinishAttempts(ctx, fs)
	d := time.Since(t)
	s.mu.Lock()
	s.finish = append(s.finish, d)
	s.mu.Unlock()
	return err
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return n
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

func pipelineOrder(order []bool) string {
	var parts []string
	for _, p := range order {
		if p {
			parts = append(parts, "pipeline")
		} else {
			parts = append(parts, "plain")
		}
	}
	return strings.Join(parts, ", ")
}
