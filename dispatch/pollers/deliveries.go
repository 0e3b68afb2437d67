package pollers

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// DeliveryStore is the webhook delivery queue in Postgres (store/queues)
// as the delivery worker uses it.
type DeliveryStore interface {
	ClaimDeliveries(ctx context.Context, now time.Time, limit, perWebhook int, room map[uuid.UUID]int, lease time.Duration) ([]queues.ClaimedDelivery, error)
	FinishAttempts(ctx context.Context, fs []queues.FinishedAttempt) error
	DeliveryQueue(ctx context.Context, now time.Time) (pending int64, oldest time.Duration, err error)
	DroppedDeliveries(ctx context.Context) (int64, error)
}

// Opener opens sealed secrets (secretbox.Keyring).
type Opener interface {
	Open(sealed, aad []byte) ([]byte, error)
}

// Sender makes one delivery attempt (webhook.Sender).
type Sender interface {
	Send(ctx context.Context, r webhook.Request) webhook.Result
}

// OutcomeRecorder is told how each delivery attempt ended, when the
// worker knows it (before the outcome is written to the queue), for the
// analytics (recordlog.Logger publishes it as a service fact). It must
// return at once and never fail: it is called on the attempt's goroutine.
type OutcomeRecorder interface {
	RecordWebhookAttempt(helpdeskflow.WebhookAttemptFact)
}

// DeliveryWorkerConfig configures a DeliveryWorker. Store, Sender and
// Secrets are required.
type DeliveryWorkerConfig struct {
	Store   DeliveryStore
	Sender  Sender
	Secrets Opener
	// Now defaults to time.Now.
	Now func() time.Time
	// BackoffBase and BackoffFactor schedule retries: attempt n failing
	// waits Base × Factor^(n−1) (defaults 10 s and 6: 10 s, then 60 s).
	BackoffBase   time.Duration
	BackoffFactor float64
	// Concurrency bounds attempts in flight in this worker (default 64),
	// PerWebhook those to one webhook (default 4), so that a slow or dead
	// endpoint holds at most PerWebhook of them and never delays others.
	Concurrency, PerWebhook int
	// Prefetch is how many deliveries the worker holds claimed beyond its
	// Concurrency, waiting for a free slot, so that one claim feeds many
	// attempts (default 4 × Concurrency; -1: none). Of one webhook it
	// holds at most 8 × PerWebhook beyond its slots, and only while the
	// webhook's last attempt took less than FastAttempt (default 250 ms):
	// a slow or dead endpoint's deliveries are claimed only as its slots
	// free up. A delivery that waited half the Lease for a slot, and those
	// waiting when the worker stops, are given back to the queue unsent.
	Prefetch    int
	FastAttempt time.Duration
	// Lease is how long a claimed delivery is this worker's (default 60 s);
	// after a crash another worker retries it then.
	Lease time.Duration
	// PollInterval is how often the queue is read when idle (default 200 ms).
	PollInterval time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	// Outcomes, when not nil, is told each attempt's outcome.
	Outcomes OutcomeRecorder
}

// DeliveryWorker sends due deliveries from the Postgres queue: each
// attempt is signed, recorded with its outcome in the failure log, and a
// failure is retried with exponential backoff until MaxAttempts, after
// which the delivery is permanently failed. Any number of workers, in any
// number of processes, share the queue. A worker claims many deliveries
// per query (see Prefetch), frees an attempt's slot as soon as its
// response is in, and writes the outcomes of the attempts that ended
// meanwhile in one transaction; a stream's next delivery becomes
// claimable only once its predecessor's outcome is committed.
type DeliveryWorker struct {
	cfg     DeliveryWorkerConfig
	m       deliveryMetrics
	q       *queueWorker[queues.ClaimedDelivery, queues.FinishedAttempt]
	secrets openedSecrets
}

type deliveryMetrics struct {
	attempts       *prometheus.CounterVec
	latency        prometheus.Histogram
	retries        prometheus.Counter
	failed         prometheus.Counter
	pending        prometheus.Gauge
	oldestPending  prometheus.Gauge
	dropped        prometheus.Gauge
	internalErrors prometheus.Counter
}

// NewDeliveryWorker returns a worker, registering
// helpdeskflow_webhook_attempts_total{outcome,error_class},
// helpdeskflow_webhook_attempt_duration_seconds,
// helpdeskflow_webhook_retries_scheduled_total,
// helpdeskflow_webhook_deliveries_failed_total (permanently),
// helpdeskflow_webhook_pending_deliveries,
// helpdeskflow_webhook_oldest_pending_seconds,
// helpdeskflow_webhook_dropped_deliveries (dropped from paused webhooks
// over their held cap, all processes together) and
// helpdeskflow_webhook_queue_errors_total.
func NewDeliveryWorker(cfg DeliveryWorkerConfig) (*DeliveryWorker, error) {
	if cfg.Store == nil || cfg.Sender == nil || cfg.Secrets == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: DeliveryWorkerConfig needs Store, Sender and Secrets")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	if cfg.BackoffFactor < 1 {
		cfg.BackoffFactor = 6
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.PerWebhook <= 0 {
		cfg.PerWebhook = 4
	}
	switch {
	case cfg.Prefetch == 0:
		cfg.Prefetch = 4 * cfg.Concurrency
	case cfg.Prefetch < 0:
		cfg.Prefetch = 0
	}
	if cfg.FastAttempt <= 0 {
		cfg.FastAttempt = 250 * time.Millisecond
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var err error
	m := deliveryMetrics{
		attempts: metricreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome (success, failure) and error class."}, []string{"outcome", "error_class"}), &err),
		latency: metricreg.Register(cfg.Registerer, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "helpdeskflow_webhook_attempt_duration_seconds",
			Help: "Duration of webhook delivery attempts.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 5}}), &err),
		retries: metricreg.Register(cfg.Registerer, prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_webhook_retries_scheduled_total",
			Help: "Failed webhook attempts that scheduled a retry."}), &err),
		failed: metricreg.Register(cfg.Registerer, prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_webhook_deliveries_failed_total",
			Help: "Webhook deliveries that failed permanently (out of attempts)."}), &err),
		pending: metricreg.Register(cfg.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_webhook_pending_deliveries",
			Help: "Webhook deliveries waiting for an attempt or a retry."}), &err),
		oldestPending: metricreg.Register(cfg.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_webhook_oldest_pending_seconds",
			Help: "Age of the oldest pending webhook delivery."}), &err),
		dropped: metricreg.Register(cfg.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_webhook_dropped_deliveries",
			Help: "Webhook deliveries dropped so far from paused webhooks over their held cap (read from Postgres: the total of all processes)."}), &err),
		internalErrors: metricreg.Register(cfg.Registerer, prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_webhook_queue_errors_total",
			Help: "Failures reading or writing the delivery queue (retried)."}), &err),
	}
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register delivery metrics", Err: err}
	}
	w := &DeliveryWorker{cfg: cfg, m: m}
	w.q = newQueueWorker(queueConfig[queues.ClaimedDelivery, queues.FinishedAttempt]{
		concurrency: cfg.Concurrency, perKey: cfg.PerWebhook, lease: cfg.Lease, pollInterval: cfg.PollInterval,
		prefetch: cfg.Prefetch, perKeyPrefetch: min(cfg.Prefetch, 8*cfg.PerWebhook), fastRun: cfg.FastAttempt, release: w.release,
		claim: w.claim,
		claimFailed: func(err error) {
			w.m.internalErrors.Inc()
			w.cfg.Logger.Warn("webhooks: claiming deliveries failed; retrying", "err", err)
		},
		key:    func(c queues.ClaimedDelivery) uuid.UUID { return c.WebhookID },
		run:    w.attempt,
		finish: w.record,
		chores: []chore{{every: 5 * time.Second, do: w.queueStats}},
	})
	return w, nil
}

// Run delivers until ctx ends, then gives the deliveries it claimed but
// has not sent back to the queue, waits for the attempts in flight (each
// bounded by the sender's timeout) and the writing of their outcomes, and
// returns nil.
func (w *DeliveryWorker) Run(ctx context.Context) error {
	w.q.serve(ctx)
	return nil
}

// claim leases up to limit due deliveries, at most room[w] of a webhook w
// this worker holds deliveries of and perWebhook of another.
func (w *DeliveryWorker) claim(ctx context.Context, limit, perWebhook int, room map[uuid.UUID]int) ([]queues.ClaimedDelivery, error) {
	return w.cfg.Store.ClaimDeliveries(ctx, w.cfg.Now(), limit, perWebhook, room, w.cfg.Lease)
}

// release gives c back to the queue unsent: due again now, its claim not
// counted as an attempt.
func (w *DeliveryWorker) release(c queues.ClaimedDelivery) queues.FinishedAttempt {
	return queues.FinishedAttempt{DeliveryID: c.ID, WebhookID: c.WebhookID, StreamID: c.StreamID, Released: true, Status: helpdeskflow.DeliveryPending,
		Attempt: helpdeskflow.DeliveryAttempt{Attempt: c.Attempts, StartedAt: w.cfg.Now()}}
}

// queueStats updates the pending and dropped gauges.
func (w *DeliveryWorker) queueStats(ctx context.Context) {
	if pending, oldest, err := w.cfg.Store.DeliveryQueue(ctx, w.cfg.Now()); err == nil {
		w.m.pending.Set(float64(pending))
		w.m.oldestPending.Set(oldest.Seconds())
	}
	if dropped, err := w.cfg.Store.DroppedDeliveries(ctx); err == nil {
		w.m.dropped.Set(float64(dropped))
	}
}

// attempt makes one attempt of c and returns how it ended.
func (w *DeliveryWorker) attempt(ctx context.Context, c queues.ClaimedDelivery) queues.FinishedAttempt {
	started := w.cfg.Now()
	result := w.send(ctx, c, started)
	a := helpdeskflow.DeliveryAttempt{Attempt: c.Attempts, URL: c.URL, StatusCode: result.StatusCode, ResponseBody: string(result.Body),
		ErrorClass: result.ErrorClass, StartedAt: started, Duration: result.Duration}
	if result.Err != nil {
		a.Error = result.Err.Error()
	}
	w.m.latency.Observe(result.Duration.Seconds())
	status, next := helpdeskflow.DeliverySucceeded, (*time.Time)(nil)
	if result.ErrorClass == "" {
		w.m.attempts.WithLabelValues("success", "").Inc()
	} else {
		w.m.attempts.WithLabelValues("failure", result.ErrorClass).Inc()
		if c.Attempts >= c.MaxAttempts {
			status = helpdeskflow.DeliveryFailed
			w.m.failed.Inc()
		} else {
			status = helpdeskflow.DeliveryPending
			at := started.Add(result.Duration).Add(w.backoff(c.Attempts))
			next = &at
			w.m.retries.Inc()
		}
	}
	w.logAttempt(ctx, c, result, status)
	w.recordOutcome(c, a, status)
	return queues.FinishedAttempt{DeliveryID: c.ID, WebhookID: c.WebhookID, StreamID: c.StreamID, Attempt: a, Status: status, NextAttemptAt: next}
}

// logAttempt logs an attempt of c at debug level (the dispatcher's part of
// following a request through the logs: its event's event_id), and a
// delivery out of attempts at warn. Neither names the URL (its query may
// hold a token) nor a body.
func (w *DeliveryWorker) logAttempt(ctx context.Context, c queues.ClaimedDelivery, result webhook.Result, status string) {
	level := slog.LevelDebug
	msg := "webhook attempt"
	if status == helpdeskflow.DeliveryFailed {
		level, msg = slog.LevelWarn, "webhook delivery failed for good: out of attempts"
	}
	if !w.cfg.Logger.Enabled(ctx, level) {
		return
	}
	w.cfg.Logger.Log(ctx, level, msg,
		slog.String(helpdeskflow.LogDeliveryID, c.ID.String()), slog.String(helpdeskflow.LogWebhookID, c.WebhookID.String()),
		slog.String(helpdeskflow.LogEventID, c.EventID.String()), slog.String(helpdeskflow.LogEventType, c.EventType),
		slog.String(helpdeskflow.LogWorkspaceID, c.WorkspaceID.String()), slog.Int("attempt", c.Attempts),
		slog.String("outcome", status), slog.Int("status_code", result.StatusCode), slog.String("error_class", result.ErrorClass),
		slog.Float64("duration_ms", float64(result.Duration.Microseconds())/1000))
}

// recordOutcome tells Outcomes how attempt a of c ended (status is the
// delivery's after it).
func (w *DeliveryWorker) recordOutcome(c queues.ClaimedDelivery, a helpdeskflow.DeliveryAttempt, status string) {
	if w.cfg.Outcomes == nil {
		return
	}
	outcome := helpdeskflow.AttemptSucceeded
	switch {
	case a.ErrorClass == "":
	case status == helpdeskflow.DeliveryFailed:
		outcome = helpdeskflow.AttemptFailed
	default:
		outcome = helpdeskflow.AttemptRetrying
	}
	w.cfg.Outcomes.RecordWebhookAttempt(helpdeskflow.WebhookAttemptFact{Time: a.StartedAt.UTC(), WorkspaceID: c.WorkspaceID,
		WebhookID: c.WebhookID, DeliveryID: c.ID, EventID: c.EventID, EventType: c.EventType, Endpoint: helpdeskflow.WebhookEndpoint(c.URL),
		Attempt: a.Attempt, Outcome: outcome, ErrorClass: a.ErrorClass, StatusCode: a.StatusCode, Duration: a.Duration})
}

// record writes a batch of finished attempts.
func (w *DeliveryWorker) record(rows []queues.FinishedAttempt) {
	if err := w.cfg.Store.FinishAttempts(context.Background(), rows); err != nil {
		// The leases run out and the deliveries are tried again: at least
		// once.
		w.m.internalErrors.Inc()
		w.cfg.Logger.Error("webhooks: recording attempts failed; the deliveries will be retried", "deliveries", len(rows), "err", err)
	}
}

// backoff is the wait after failed attempt n (1-based).
func (w *DeliveryWorker) backoff(n int) time.Duration {
	return exponentialBackoff(w.cfg.BackoffBase, w.cfg.BackoffFactor, n, 24*time.Hour)
}

// send signs and posts c.
func (w *DeliveryWorker) send(ctx context.Context, c queues.ClaimedDelivery, now time.Time) webhook.Result {
	secrets, err := w.secrets.open(w.cfg.Secrets, c, now)
	if err != nil {
		return webhook.Result{ErrorClass: "secret_unavailable", Err: err}
	}
	// The keys are in canonical form (textproto.CanonicalMIMEHeaderKey).
	// webhook-id is the event id, the same on every retry and replay, as
	// Standard Webhooks receivers drop duplicates by it.
	eventID := c.EventID.String()
	header := http.Header{
		"X-Hdf-Signature":   {webhook.Sign(secrets, now, c.Payload)},
		"X-Hdf-Event-Id":    {eventID},
		"X-Hdf-Event-Type":  {c.EventType},
		"X-Hdf-Delivery-Id": {c.ID.String()},
		"X-Hdf-Attempt":     {strconv.Itoa(c.Attempts)},
		"Webhook-Id":        {eventID},
		"Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)},
		"Webhook-Signature": {webhook.SignStandard(secrets, eventID, now, c.Payload)},
		"User-Agent":        {"HelpDeskFlow-Webhooks/1"},
	}
	if c.ReplayID != uuid.Nil {
		header["X-Hdf-Replay"] = []string{"true"}
	}
	return w.cfg.Sender.Send(ctx, webhook.Request{URL: c.URL, Body: c.Payload, Header: header})
}

// openedSecrets keeps each webhook's secrets opened, with the sealed
// values they were opened from, so that a webhook's secrets are opened
// once (and again after a rotation), not at every attempt.
type openedSecrets struct {
	mu sync.Mutex
	m  map[uuid.UUID]opened
}

// opened is one webhook's sealed secrets and their plain text ("" for a
// previous secret that does not open).
type opened struct {
	sealed, sealedPrevious []byte
	current, previous      string
}

// maxOpenedSecrets bounds the webhooks whose secrets are kept opened; past
// it the cache starts over.
const maxOpenedSecrets = 10_000

// open returns the secrets c is signed with at now: the current one, and
// the previous one while it is still valid.
func (o *openedSecrets) open(keys Opener, c queues.ClaimedDelivery, now time.Time) ([]string, error) {
	o.mu.Lock()
	s, ok := o.m[c.WebhookID]
	o.mu.Unlock()
	if !ok || !bytes.Equal(s.sealed, c.Secrets.Current) || !bytes.Equal(s.sealedPrevious, c.Secrets.Previous) {
		aad := helpdeskflow.WebhookSecretAAD(c.WorkspaceID, c.WebhookID)
		current, err := keys.Open(c.Secrets.Current, aad)
		if err != nil {
			return nil, err
		}
		s = opened{sealed: c.Secrets.Current, sealedPrevious: c.Secrets.Previous, current: string(current)}
		if c.Secrets.Previous != nil {
			if previous, err := keys.Open(c.Secrets.Previous, aad); err == nil {
				s.previous = string(previous)
			}
		}
		o.mu.Lock()
		if o.m == nil || len(o.m) >= maxOpenedSecrets {
			o.m = map[uuid.UUID]opened{}
		}
		o.m[c.WebhookID] = s
		o.mu.Unlock()
	}
	if s.previous != "" && c.Secrets.PreviousSecretUntil != nil && now.Before(*c.Secrets.PreviousSecretUntil) {
		return []string{s.current, s.previous}, nil
	}
	return []string{s.current}, nil
}
