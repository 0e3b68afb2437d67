package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

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
func (b *bench) pipelineRound(ctx context.Context, env *phaseEnv, store webhookStores, recv *hookReceiver,
	hookIDs []uuid.UUID, wsID uuid.UUID, bodies [][]byte) (hookRound, []time.Duration, error) {
	db := env.pg
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

	timed := &timedStore{DeliveryStore: store}
	sender := webhook.NewSender(webhook.Config{AllowLoopback: true})
	defer sender.CloseIdleConnections()
	worker, err := pollers.NewDeliveryWorker(pollers.DeliveryWorkerConfig{
		Store: timed, Sender: sender, Secrets: env.keys, Logger: env.logger,
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
		poll.Sleep(ctx, 20*time.Millisecond)
		if ctx.Err() != nil {
			break
		}
		if recv.requests.Load() < int64(n) && time.Since(lastDB) < time.Second {
			continue
		}
		lastDB = time.Now()
		// EXISTS, not count(*): the check reads the first pending row, not
		// the whole queue, so it weighs next to nothing on Postgres.
		pending, err := db.queryString(ctx, "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = 'pending')::text")
		if err == nil && pending == "false" {
			elapsed = time.Since(start)
			break
		}
		if time.Since(start) > limit {
			p.TimedOut = true
			elapsed = time.Since(start)
			b.res.note("webhooks: deliveries still pending %s after the worker started (the receiver has %d of %d): the round is cut short", elapsed.Round(time.Second), recv.requests.Load(), n)
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
	if len(timed.finish) > 0 {
		p.OutcomesPerBatch = round3(float64(timed.finished) / float64(len(timed.finish)))
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
	pollers.DeliveryStore
	mu              sync.Mutex
	claims, finish  []time.Duration
	finished        int // outcomes written
	claimed, misses int64
}

func (s *timedStore) ClaimDeliveries(ctx context.Context, now time.Time, limit, perWebhook int, room map[uuid.UUID]int, lease time.Duration) ([]queues.ClaimedDelivery, error) {
	t := time.Now()
	out, err := s.DeliveryStore.ClaimDeliveries(ctx, now, limit, perWebhook, room, lease)
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

func (s *timedStore) FinishAttempts(ctx context.Context, fs []queues.FinishedAttempt) error {
	t := time.Now()
	err := s.DeliveryStore.FinishAttempts(ctx, fs)
	d := time.Since(t)
	s.mu.Lock()
	s.finish = append(s.finish, d)
	s.finished += len(fs)
	s.mu.Unlock()
	return err
}
