package pollers

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// ReplayStore is the webhook replays and the delivery queue (store/queues)
// as the replay worker uses them.
type ReplayStore interface {
	ClaimReplay(ctx context.Context, now time.Time, lease time.Duration) (queues.ClaimedReplay, bool, error)
	AdvanceReplay(ctx context.Context, id uuid.UUID, cursor helpdeskflow.Position, enqueued int, done bool, now time.Time) error
	EnqueueDeliveries(ctx context.Context, ds []helpdeskflow.Delivery) error
}

// RangeReader reads a range of events (eventstore.Store.ReadRange).
type RangeReader interface {
	ReadRange(ctx context.Context, r helpdeskflow.EventRange, after helpdeskflow.Position, limit int) ([]helpdeskflow.Event, error)
}

// ReplayWorkerConfig configures a ReplayWorker. Store and Events are
// required; Now defaults to time.Now, Interval (how often an idle worker
// looks for replays) to one second, Batch (events read and deliveries
// recorded per transaction) to 1,000, Lease to a minute, MaxAttempts
// (of each delivery) to 3, Logger to slog.Default(); Registerer may be
// nil.
type ReplayWorkerConfig struct {
	Store       ReplayStore
	Events      RangeReader
	Now         func() time.Time
	Interval    time.Duration
	Batch       int
	Lease       time.Duration
	MaxAttempts int
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// ReplayWorker records the deliveries of webhook replays
// (POST /v1/webhooks/{id}/replay): it leases a replay, reads its next
// Batch events in commit order from the event store, records a delivery
// of each the webhook subscribes to (marked with the replay's id, held if
// the webhook is paused) and moves the replay's cursor, each step a short
// statement or transaction of its own, then gives the replay back, so
// replays take turns and a crash repeats at most one batch (recording a
// replay's delivery of an event twice records nothing). The delivery
// workers send them like any other, each stream's in order. It runs
// beside the dispatcher's consume loop, never in it. Any number of
// workers may run.
type ReplayWorker struct {
	cfg      ReplayWorkerConfig
	recorded prometheus.Counter
}

// NewReplayWorker returns a worker, registering
// helpdeskflow_webhook_replay_deliveries_total (deliveries recorded by
// replays).
func NewReplayWorker(cfg ReplayWorkerConfig) (*ReplayWorker, error) {
	if cfg.Store == nil || cfg.Events == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: ReplayWorkerConfig needs Store and Events")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var err error
	recorded := metricreg.Register(cfg.Registerer, prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_webhook_replay_deliveries_total",
		Help: "Webhook deliveries recorded by replays."}), &err)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register replay metrics", Err: err}
	}
	return &ReplayWorker{cfg: cfg, recorded: recorded}, nil
}

// Run records replays' deliveries until ctx ends, then returns nil.
func (w *ReplayWorker) Run(ctx context.Context) error {
	return poll.Every(ctx, w.cfg.Interval, w.cfg.Logger, "webhook replays", w.pass)
}

// pass works through every replay batch that is due, and reports how
// many batches it recorded.
func (w *ReplayWorker) pass(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		r, ok, err := w.cfg.Store.ClaimReplay(ctx, w.cfg.Now(), w.cfg.Lease)
		if err != nil || !ok {
			return n, err
		}
		if err := w.batch(ctx, r); err != nil {
			return n, err // the lease runs out and the batch is read again
		}
		n++
	}
	return n, nil
}

// batch records the deliveries of r's next events.
func (w *ReplayWorker) batch(ctx context.Context, r queues.ClaimedReplay) error {
	events, err := w.cfg.Events.ReadRange(ctx, r.Range, r.Cursor, w.cfg.Batch)
	if err != nil {
		return err
	}
	hook := helpdeskflow.Webhook{EventTypes: r.WebhookEventTypes}
	at := w.cfg.Now()
	var ds []helpdeskflow.Delivery
	cursor := r.Cursor
	for _, e := range events {
		cursor = e.Position
		if !hook.Subscribes(e.Type) || helpdeskflow.IsInternalNote(e) {
			continue
		}
		body, err := helpdeskflow.WebhookBody(e)
		if err != nil {
			return err
		}
		ds = append(ds, helpdeskflow.Delivery{ID: uuid.New(), WebhookID: r.WebhookID, WorkspaceID: r.WorkspaceID, EventID: e.ID,
			EventType: e.Type, StreamID: e.StreamID, StreamVersion: e.Version, Payload: body, MaxAttempts: w.cfg.MaxAttempts,
			NextAttemptAt: &at, Held: !r.WebhookActive, ReplayID: r.ID})
	}
	if err := w.cfg.Store.EnqueueDeliveries(ctx, ds); err != nil {
		return err
	}
	w.recorded.Add(float64(len(ds)))
	return w.cfg.Store.AdvanceReplay(ctx, r.ID, cursor, len(ds), len(events) < w.cfg.Batch, w.cfg.Now())
}
