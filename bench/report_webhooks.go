package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// webhookTarget adds the webhooks target: deliveries/s through the pipeline
// at least targetWebhookRatio of a plain client's requests/s, as a
// percentage. It passes only when both sides ran without failures and the
// sampled signatures verified.
func (r *results) webhookTarget(add func(name, target, unit string, found bool, v float64, pass bool)) {
	h := r.Webhooks
	target := fmt.Sprintf(">= %.0f", targetWebhookRatio*100)
	name := fmt.Sprintf("webhook deliveries/s ÷ plain net/http client (%d in flight)", webhookConcurrency)
	if h == nil || h.Plain.Requests == 0 || h.Pipeline.Requests == 0 {
		add(name, target, "%", false, 0, false)
		return
	}
	switch {
	case h.Plain.Errors+h.Pipeline.Errors > 0:
		name += fmt.Sprintf(" (%d failed)", h.Plain.Errors+h.Pipeline.Errors)
	case h.SignatureFailures > 0 || h.SignaturesVerified == 0:
		name += " (signatures did not verify)"
	}
	h.TargetMet = h.valid() && h.Ratio >= targetWebhookRatio
	add(name, target, "%", true, h.Ratio*100, h.TargetMet)
}

// webhookCPURows adds the webhooks rounds to a CPU split table.
func (r *results) webhookCPURows(row func(name string, s cpuSplit)) {
	if h := r.Webhooks; h != nil {
		for i, p := range h.Rounds {
			row(fmt.Sprintf("hooks %d %s", i+1, hookSideName(p.Pipeline)), p.CPU)
		}
	}
}

func hookSideName(pipeline bool) string {
	if pipeline {
		return "pipeline"
	}
	return "plain"
}

// targetLine states the webhooks target and whether it was met.
func (h *webhooksResult) targetLine() string {
	why := ""
	switch {
	case h.Plain.Errors+h.Pipeline.Errors > 0:
		why = fmt.Sprintf("; not valid: %d requests or deliveries failed", h.Plain.Errors+h.Pipeline.Errors)
	case h.SignatureFailures > 0:
		why = fmt.Sprintf("; not valid: %d sampled signatures did not verify", h.SignatureFailures)
	case h.SignaturesVerified == 0:
		why = "; not valid: no signature was verified"
	}
	return fmt.Sprintf("Target: webhook deliveries/s ≥ %.2f × a plain net/http client's requests/s: %s (ratio %.3f = %.1f / %.1f per second%s)",
		h.TargetRatio, passMiss(h.TargetMet), h.Ratio, h.Pipeline.PerSecond, h.Plain.PerSecond, why)
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// printWebhooks writes the webhooks section of the table.
func (r *results) printWebhooks(w io.Writer) {
	h := r.Webhooks
	if h == nil {
		return
	}
	fmt.Fprintf(w, "\nWebhooks: %d deliveries per pipeline round to %d webhooks (%d in flight, %d per webhook, %d claimed ahead), avg body %d B, rounds %s\n",
		h.Deliveries, h.Webhooks, h.Concurrency, h.PerWebhook, h.Prefetch, h.BodyBytesAvg, h.RoundOrder)
	fmt.Fprintf(w, "%-10s %9s %9s %9s %9s %12s %7s %7s %11s %11s %11s\n", "", "per s", "p50 ms", "p99 ms", "max ms", "gap p99 ms", "conns", "errors",
		"bench CPU", "pg CPU", "machine")
	for _, s := range []struct {
		name string
		s    hookSide
	}{{"plain", h.Plain}, {"pipeline", h.Pipeline}} {
		x := s.s.CPUPerDeliveryMs
		fmt.Fprintf(w, "%-10s %9.0f %9.2f %9.2f %9.1f %12.3f %7d %7d %11.3f %11.3f %11.3f\n", s.name, s.s.PerSecond, s.s.LatencyMs.P50, s.s.LatencyMs.P99,
			s.s.LatencyMs.Max, s.s.ReceiverGapMs.P99, s.s.ConnectionsOpened, s.s.Errors, x.Bench, x.Postgres, x.Machine)
	}
	for i, p := range h.Rounds {
		fmt.Fprintf(w, "  round %d %-8s %7.0f/s over %5.1f s, p50 %5.2f ms, p99 %6.2f ms, errors %d, %d connections",
			i+1, hookSideName(p.Pipeline), p.PerSecond, p.Seconds, p.LatencyMs.P50, p.LatencyMs.P99, p.Errors, p.ConnectionsOpened)
		if p.Pipeline {
			fmt.Fprintf(w, "; enqueue %.1f s, first/last arrival %.2f/%.2f s, %d attempts, %.1f commits and %.0f tuples/delivery",
				p.EnqueueSeconds, p.FirstArrivalSeconds, p.LastArrivalSeconds, p.Attempts, p.CommitsPerDelivery, p.TuplesPerDelivery)
			if p.ClaimMs != nil && p.FinishMs != nil {
				fmt.Fprintf(w, "\n      %d claims (%d empty), %.2f deliveries/claim, claim p50/p99 %.2f/%.2f ms, FinishAttempt p50/p99 %.2f/%.2f ms, %.1f outcomes/FinishAttempt",
					p.Claims, p.EmptyClaims, p.DeliveriesPerClaim, p.ClaimMs.P50, p.ClaimMs.P99, p.FinishMs.P50, p.FinishMs.P99, p.OutcomesPerBatch)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  signatures verified at the receiver: %d, failed %d\n", h.SignaturesVerified, h.SignatureFailures)
	fmt.Fprintf(w, "%s\n", h.targetLine())
}

// markdownWebhooks writes the webhooks section of summary.md.
func (r *results) markdownWebhooks(w io.Writer) {
	h := r.Webhooks
	if h == nil {
		return
	}
	fmt.Fprintf(w, "\n## Webhooks (delivery pipeline vs a plain net/http client, %d in flight)\n\n", h.Concurrency)
	fmt.Fprintf(w, "In the bench process, on a Postgres database of its own (`%s`, migrated; the dev process is idle). The receiver: %s, keep-alive, counting requests and verifying every %dth delivery's signature. %d webhooks of one workspace (`outbound.Service.CreateWebhook`, secrets sealed with a `secretbox.Keyring`), each at its own address. "+
		"A **pipeline** round enqueues %d `ticket.created` deliveries (`EnqueueDeliveries`, ~%d B bodies, one stream each, spread over the webhooks in turn; then `VACUUM ANALYZE`), starts a `pollers.DeliveryWorker` with its defaults (Concurrency %d, PerWebhook %d, Prefetch %d: it claims up to that many deliveries ahead of its free slots, frees a slot as soon as a response is in, and writes the outcomes in batches) and a `webhook.Sender` (`AllowLoopback`), and measures from its start until no delivery is pending (all claimed, opened, signed, posted and recorded). "+
		"A **plain** round posts the same bodies to the same addresses with %d goroutines and one `http.Transport` (%d idle connections per host), in passes over them for at least %.0f s. Rounds in the order %s.\n\n",
		h.Database, h.Receiver, webhookVerifyEvery, h.Webhooks, h.Deliveries, h.BodyBytesAvg, h.Concurrency, h.PerWebhook, h.Prefetch, h.Concurrency, h.Concurrency, h.PlainMinSecs, h.RoundOrder)
	fmt.Fprintf(w, "| side | rounds | requests | per second | latency p50 ms | p99 ms | max ms | receiver gap p50 / p99 / max ms | connections opened | errors | CPU ms/delivery: bench | postgres | machine |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range []struct {
		name string
		s    hookSide
	}{{"plain net/http client", h.Plain}, {"delivery pipeline", h.Pipeline}} {
		x := s.s.CPUPerDeliveryMs
		g := s.s.ReceiverGapMs
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.2f | %.2f | %.1f | %.3f / %.3f / %.1f | %d | %d | %.3f | %.3f | %.3f |\n", s.name, s.s.Rounds, s.s.Requests,
			s.s.PerSecond, s.s.LatencyMs.P50, s.s.LatencyMs.P99, s.s.LatencyMs.Max, g.P50, g.P99, g.Max, s.s.ConnectionsOpened, s.s.Errors, x.Bench, x.Postgres, x.Machine)
	}
	fmt.Fprintf(w, "\n**%s.**\n\n", h.targetLine())
	fmt.Fprintf(w, "Latency is each request's time at the plain client, and each attempt's duration as the worker recorded it (`webhook_attempts.duration_ms`) for the pipeline. The receiver gap is the time between two arrivals at the receiver (mean of the rounds' percentiles). CPU per delivery: the bench process holds the sender (worker or plain client) and the receiver alike. Signatures verified at the receiver: %d, failed %d%s.\n\n",
		h.SignaturesVerified, h.SignatureFailures, errSuffix(h.FirstSignatureErr))
	fmt.Fprintf(w, "| round | side | per second | seconds | latency p50 / p99 ms | errors | connections | enqueue s | first / last arrival s | attempts | statuses | commits / tuples per delivery |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, p := range h.Rounds {
		if p.Pipeline {
			fmt.Fprintf(w, "| %d | pipeline | %.0f | %.2f | %.2f / %.2f | %d | %d | %.2f | %.2f / %.2f | %d | %s | %.1f / %.0f |\n", i+1, p.PerSecond, p.Seconds,
				p.LatencyMs.P50, p.LatencyMs.P99, p.Errors, p.ConnectionsOpened, p.EnqueueSeconds, p.FirstArrivalSeconds, p.LastArrivalSeconds,
				p.Attempts, counts(p.Statuses), p.CommitsPerDelivery, p.TuplesPerDelivery)
		} else {
			fmt.Fprintf(w, "| %d | plain | %.0f | %.2f | %.2f / %.2f | %d | %d | | | | | |\n", i+1, p.PerSecond, p.Seconds,
				p.LatencyMs.P50, p.LatencyMs.P99, p.Errors, p.ConnectionsOpened)
		}
	}
	fmt.Fprintf(w, "\nThe worker's calls to the queue (timed in the bench around `pollers.DeliveryStore`):\n\n| round | claims | empty claims | deliveries per claim | claim p50 / p99 / max ms | FinishAttempt p50 / p99 / max ms |\n|---|---|---|---|---|---|\n")
	for i, p := range h.Rounds {
		if !p.Pipeline || p.ClaimMs == nil || p.FinishMs == nil {
			continue
		}
		fmt.Fprintf(w, "| %d | %d | %d | %.2f | %.2f / %.2f / %.1f | %.2f / %.2f / %.1f |\n", i+1, p.Claims, p.EmptyClaims, p.DeliveriesPerClaim,
			p.ClaimMs.P50, p.ClaimMs.P99, p.ClaimMs.Max, p.FinishMs.P50, p.FinishMs.P99, p.FinishMs.Max)
	}
	fmt.Fprintf(w, "\nPostgres during each pipeline round (the phase's database; `pg_stat_activity` every 50 ms, share of non-idle backend observations):\n\n")
	for i, p := range h.Rounds {
		if !p.Pipeline || p.PostgresActivity == nil {
			continue
		}
		pg := p.PostgresActivity
		fmt.Fprintf(w, "- **round %d**: %.1f non-idle backends on average. Waits: %s%s. Error classes: %s.\n", i+1, pg.AvgNonIdle, shares(pg.WaitEvents, 5),
			errSuffix(p.PostgresError), counts(p.ErrorClasses))
		for _, st := range pg.Statements[:min(len(pg.Statements), 4)] {
			fmt.Fprintf(w, "  - %.1f%% `%s`\n", st.Share*100, strings.ReplaceAll(st.Key, "`", "'"))
		}
	}
}
