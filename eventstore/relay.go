package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
)

// Producer publishes records and waits for the broker's acknowledgement.
// *kgo.Client satisfies it.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// RelayConfig configures a Relay. Zero fields take the defaults that
// setDefaults documents.
type RelayConfig struct {
	// Name identifies the relay's checkpoint and leader lock; relays with
	// the same name share one leader. Default "events".
	Name string
	// Topic is where events go. Default helpdeskflow.TopicEvents.
	Topic string
	// BatchSize is the most events read and published at once. Default 1000.
	BatchSize int
	// PollInterval is how often the relay looks for events when no
	// notification arrives, and how often a standby tries to become leader.
	// Default 1 s.
	PollInterval time.Duration
	// RetryBackoff is the pause after a failed publish or read. Default 500 ms.
	RetryBackoff time.Duration
	// Logger receives leadership changes and errors. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the relay metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *RelayConfig) setDefaults() {
	if c.Name == "" {
		c.Name = "events"
	}
	if c.Topic == "" {
		c.Topic = helpdeskflow.TopicEvents
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Relay publishes committed events to Kafka in commit order. Only one relay
// of a name publishes at a time: the leader holds a Postgres advisory lock
// on a dedicated connection, and standbys take over when that session ends.
// The checkpoint moves only after the broker acknowledged every event up to
// it, so a crash between commit and acknowledgement republishes (consumers
// drop duplicates by stream id and version) and never loses an event.
type Relay struct {
	store    *Store
	producer Producer
	cfg      RelayConfig

	published   prometheus.Counter
	produceErrs prometheus.Counter
	lagEvents   prometheus.Gauge
	lagSeconds  prometheus.Gauge
	leader      prometheus.Gauge
	oldestTx    prometheus.Gauge
}

// NewRelay returns a relay publishing store's events through producer. Its
// metrics are helpdeskflow_relay_published_total,
// helpdeskflow_relay_produce_errors_total, helpdeskflow_relay_lag_events,
// helpdeskflow_relay_lag_seconds, helpdeskflow_relay_leader and
// helpdeskflow_oldest_transaction_age_seconds.
func NewRelay(store *Store, producer Producer, cfg RelayConfig) (*Relay, error) {
	cfg.setDefaults()
	r := &Relay{
		store: store, producer: producer, cfg: cfg,
		published:   prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_relay_published_total", Help: "Events the relay published and the broker acknowledged."}),
		produceErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_relay_produce_errors_total", Help: "Failed publish attempts (the batch is retried)."}),
		lagEvents:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_relay_lag_events", Help: "Committed events not yet published (counted up to 10000)."}),
		lagSeconds:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_relay_lag_seconds", Help: "Age of the oldest committed event not yet published."}),
		leader:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_relay_leader", Help: "1 while this process is the publishing relay."}),
		oldestTx:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_oldest_transaction_age_seconds", Help: "Age of the oldest open write transaction, which holds back the commit horizon."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.published, r.produceErrs, r.lagEvents, r.lagSeconds, r.leader, r.oldestTx} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register relay metrics", Err: err}
			}
		}
	}
	return r, nil
}

// Run publishes until ctx is cancelled, then returns nil. Losing the leader
// session (Postgres restart, network) sends it back to standby; it never
// returns early on such errors, it logs them and retries.
func (r *Relay) Run(ctx context.Context) error {
	for {
		err := r.lead(ctx)
		r.leader.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.cfg.Logger.Warn("relay lost leadership", "relay", r.cfg.Name, "err", err)
		}
		if !sleep(ctx, r.cfg.RetryBackoff) {
			return nil
		}
	}
}

func (r *Relay) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("helpdeskflow-relay:" + r.cfg.Name))
	return int64(h.Sum64())
}

// lead waits to become leader, then publishes until ctx ends or the leader
// session breaks.
func (r *Relay) lead(ctx context.Context) error {
	pooled, err := r.store.pool.Acquire(ctx)
	if err != nil {
		return unavailable("acquire relay connection", err)
	}
	// The session holds the leader lock, so it must never go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))

	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, r.lockKey()).Scan(&got); err != nil {
			return internal("try relay leader lock", err)
		}
		if got {
			break
		}
		if !sleep(ctx, r.cfg.PollInterval) {
			return nil
		}
	}
	r.leader.Set(1)
	r.cfg.Logger.Info("relay is leader", "relay", r.cfg.Name)
	if _, err := conn.Exec(ctx, `LISTEN `+eventsChannel); err != nil {
		return internal("listen for events", err)
	}
	cp, err := r.checkpoint(ctx)
	if err != nil {
		return err
	}
	var lastLagCheck time.Time
	for {
		events, err := r.store.ReadAfter(ctx, cp, r.cfg.BatchSize, uuid.Nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(events) > 0 {
			if err := r.publish(ctx, events); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.produceErrs.Inc()
				r.cfg.Logger.Error("relay publish failed; retrying the batch", "relay", r.cfg.Name, "events", len(events), "err", err)
				if !sleep(ctx, r.cfg.RetryBackoff) {
					return nil
				}
				continue
			}
			next := events[len(events)-1].Position
			if err := r.saveCheckpoint(ctx, conn, next); err != nil {
				return err
			}
			cp = next
			r.published.Add(float64(len(events)))
		}
		backlog := 0
		if time.Since(lastLagCheck) >= time.Second || len(events) == 0 {
			backlog = r.measureLag(ctx, cp)
			lastLagCheck = time.Now()
		}
		if len(events) == r.cfg.BatchSize {
			continue
		}
		if len(events) == 0 && backlog > 0 {
			// Committed events wait above the commit horizon, held back by
			// an older open transaction (of any database in the cluster).
			// Their notification has come and gone: look again soon rather
			// than at the next poll.
			if !sleep(ctx, min(horizonRetry, r.cfg.PollInterval)) {
				return nil
			}
			continue
		}
		if err := r.waitForEvents(ctx, conn); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitForEvents returns when a notification arrives or PollInterval passes.
// The poll covers notifications lost while the relay was busy and events
// whose transaction was below the horizon's reach at the last read.
func (r *Relay) waitForEvents(ctx context.Context, conn *pgx.Conn) error {
	waitCtx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
	defer cancel()
	_, err := conn.WaitForNotification(waitCtx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || waitCtx.Err() != nil {
		return nil
	}
	return internal("wait for notification", err)
}

// measureLag updates the lag metrics and returns how many committed events
// wait after cp (0 when it cannot tell).
func (r *Relay) measureLag(ctx context.Context, cp helpdeskflow.Position) int {
	n, age, err := r.store.Backlog(ctx, cp, 10000)
	if err == nil {
		r.lagEvents.Set(float64(n))
		r.lagSeconds.Set(age.Seconds())
	}
	if oldest, err := r.store.OldestTransactionAge(ctx); err == nil {
		r.oldestTx.Set(oldest.Seconds())
	}
	return n
}

// horizonRetry is how soon the relay reads again when committed events are
// held back by the commit horizon.
const horizonRetry = 50 * time.Millisecond

func (r *Relay) publish(ctx context.Context, events []helpdeskflow.Event) error {
	records := make([]*kgo.Record, len(events))
	for i, e := range events {
		value, err := json.Marshal(e)
		if err != nil {
			return internal("encode event", err)
		}
		records[i] = &kgo.Record{
			Topic: r.cfg.Topic,
			Key:   []byte(e.StreamID.String()),
			Value: value,
			Headers: []kgo.RecordHeader{
				{Key: helpdeskflow.HeaderEventID, Value: []byte(e.ID.String())},
				{Key: helpdeskflow.HeaderEventType, Value: []byte(e.Type)},
				{Key: helpdeskflow.HeaderVersion, Value: []byte(strconv.FormatInt(e.Version, 10))},
				{Key: helpdeskflow.HeaderWorkspaceID, Value: []byte(e.WorkspaceID.String())},
			},
			Timestamp: e.OccurredAt,
		}
	}
	if err := r.producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "publish events", Err: err}
	}
	return nil
}

func (r *Relay) checkpoint(ctx context.Context) (helpdeskflow.Position, error) {
	var txID string
	var seq int64
	err := r.store.pool.QueryRow(ctx, `SELECT tx_id::text, seq FROM relay_checkpoints WHERE name = $1`, r.cfg.Name).Scan(&txID, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.Position{}, nil
	}
	if err != nil {
		return helpdeskflow.Position{}, internal("read relay checkpoint", err)
	}
	n, err := strconv.ParseUint(txID, 10, 64)
	if err != nil {
		return helpdeskflow.Position{}, internal("parse relay checkpoint", err)
	}
	return helpdeskflow.Position{TxID: n, Seq: seq}, nil
}

// saveCheckpoint writes the checkpoint on the leader's own session, so a
// relay that lost its session cannot move it, and never moves it backwards.
func (r *Relay) saveCheckpoint(ctx context.Context, conn *pgx.Conn, p helpdeskflow.Position) error {
	_, err := conn.Exec(ctx, `INSERT INTO relay_checkpoints (name, tx_id, seq) VALUES ($1, $2::text::xid8, $3)
		ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, seq = excluded.seq, updated_at = now()
		WHERE (relay_checkpoints.tx_id, relay_checkpoints.seq) < (excluded.tx_id, excluded.seq)`,
		r.cfg.Name, strconv.FormatUint(p.TxID, 10), p.Seq)
	if err != nil {
		return internal("save relay checkpoint", err)
	}
	return nil
}

// sleep waits for d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
