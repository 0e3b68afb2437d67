package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
)

// The webhooks phase: webhook deliveries per second through the delivery
// pipeline (the Postgres queue, pollers.DeliveryWorker, webhook.Sender) to
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
	webhookPrefetch     = 256  // DeliveryWorkerConfig.Prefetch's default (4 × Concurrency)
	targetWebhookRatio  = 0.50 // deliveries/s ÷ plain client requests/s
	webhookEnqueueBatch = 1000
	webhookVerifyEvery  = 50 // the receiver verifies every n-th delivery's signature
	webhookPoolConns    = 32 // serve's default HDF_POSTGRES_MAX_CONNS
)

// webhookOrder is the order of the rounds: true is the pipeline. ABBA, so
// that a drift over the phase weighs on both sides alike.
var webhookOrder = []bool{false, true, true, false}

// runWebhooks is the webhooks phase.
func (b *bench) runWebhooks(ctx context.Context) (err error) {
	n := b.o.webhookDeliveries
	h := &webhooksResult{Deliveries: n, Webhooks: webhookHooks, Concurrency: webhookConcurrency, PerWebhook: webhookPerHook,
		Prefetch: webhookPrefetch, RoundOrder: pipelineOrder(webhookOrder), TargetRatio: targetWebhookRatio,
		PlainMinSecs: max(b.o.duration/2, 2*time.Second).Seconds()}
	b.res.Webhooks = h

	// A database of the phase's own, and a command service on it.
	env, err := b.inProcessEnv(ctx, "_hooks")
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	defer env.closeInto(&err)
	name := env.pg.name
	h.Database = name
	app, err := env.openService(ctx, webhookPoolConns, "bench webhooks")
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	defer app.close()
	wsID := app.ws
	hooks := outbound.New(postgres.Outbound(app.store), outbound.WithSecrets(env.keys, true))

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
		nw, err := hooks.CreateWebhook(ctx, wsID, benchActor, outbound.CreateWebhook{URL: recv.url(i), EventTypes: []string{"*"}})
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
			p, ds, err = b.pipelineRound(ctx, env, webhookStores{app.rooms.outbound, app.rooms.queues}, recv, hookIDs, wsID, bodies)
		} else {
			p, ds = b.plainRound(ctx, recv, bodies, time.Duration(h.PlainMinSecs*float64(time.Second)))
		}
		if err != nil {
			return fmt.Errorf("webhooks round %d: %w", round+1, err)
		}
		lat[side] = append(lat[side], ds...)
		cpuSecs[side].addRound(p.CPU, p.Seconds)
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
			s.CPUPerDeliveryMs = cpuSecs[side].msPer(s.Requests)
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
