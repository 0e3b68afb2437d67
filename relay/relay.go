// Package relay publishes the event store's committed events to Kafka in
// commit order: the step between an event stored and an event projected or
// dispatched. See Relay.
package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// Producer publishes records and waits for the broker's acknowledgement,
// and tells how many partitions a topic has (from metadata it caches up to
// limit). *kgo.Client satisfies it.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
	RequestCachedMetadata(ctx context.Context, req *kmsg.MetadataRequest, limit time.Duration) (*kmsg.MetadataResponse, error)
}

// Config configures a Relay. Zero fields take the defaults that
// setDefaults documents.
type Config struct {
	// Name identifies the relay's checkpoint and leader lock; relays with
	// the same name share one leader. Default "events".
	Name string
	// Topic is where events go. Default kafka.TopicEvents.
	Topic string
	// BatchSize is the most events read and published at once. Default 1000.
	BatchSize int
	// MaxBatchBytes bounds the data and metadata of the events read at
	// once (a batch holds at least one event). Default ReadBudgetBytes
	// (16 MiB).
	MaxBatchBytes int
	// MaxEventBytes is the largest event record (kafka.RecordBytes: key,
	// data and headers) the relay publishes as it is; a larger one (stored
	// before the size cap, or written around it) is published as a claim
	// check. Default helpdeskflow.MaxEventBytes.
	MaxEventBytes int
	// PollInterval is how often the relay looks for events when no
	// notification arrives, and how often a standby tries to become leader.
	// Default 1 s.
	PollInterval time.Duration
	// RetryBackoff is the pause after a failed publish or read. Default 500 ms.
	RetryBackoff time.Duration
	// LagInterval is how often the lag gauges are measured, on their own
	// clock (never per read or batch). Default 1 s.
	LagInterval time.Duration
	// WatermarkInterval is how often an idle relay publishes the watermark
	// of its checkpoint to every partition (kafka.NewWatermarks) again.
	// Default 5 s.
	WatermarkInterval time.Duration
	// WatermarkSpacing is the shortest time between two publishes of
	// watermarks while events flow, which bounds their cost to the
	// partition count per WatermarkSpacing: a batch's watermarks go with
	// it when that long has passed, else once it has. Default 50 ms.
	WatermarkSpacing time.Duration
	// Logger receives leadership changes and errors. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the relay metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "events"
	}
	if c.Topic == "" {
		c.Topic = kafka.TopicEvents
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = eventstore.ReadBudgetBytes
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = helpdeskflow.MaxEventBytes
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	if c.LagInterval <= 0 {
		c.LagInterval = time.Second
	}
	if c.WatermarkInterval <= 0 {
		c.WatermarkInterval = 5 * time.Second
	}
	if c.WatermarkSpacing <= 0 {
		c.WatermarkSpacing = 50 * time.Millisecond
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
//
// No event can stop the relay: one whose record is over MaxEventBytes,
// or whose record the broker refuses for good (too large for its
// message.max.bytes, invalid), is published as a claim check
// (kafka.ClaimCheck) in its place, which consumers resolve from the
// event store; an ERROR log and helpdeskflow_relay_claim_checks_total name
// it. Only failures that may pass (the broker unreachable) are retried.
//
// After its events, in the same publish (at most once per
// WatermarkSpacing; else as soon as that has passed), and every
// WatermarkInterval while idle, the relay publishes a watermark record of
// the position it has published up to to every partition of the topic
// (kafka.NewWatermarks): a consumer that reached it on a partition has
// every event of that partition up to that position, even when the
// partition got none for a long time. The projector keeps them to tell how
// far the read model has got; the other consumers skip them.
type Relay struct {
	store    *eventstore.Store
	producer Producer
	cfg      Config

	published   prometheus.Counter
	produceErrs prometheus.Counter
	claimChecks *prometheus.CounterVec
	lagEvents   prometheus.Gauge
	lagSeconds  prometheus.Gauge
	leader      prometheus.Gauge
	oldestTx    prometheus.Gauge
}

// New returns a relay publishing store's events through producer. Its
// metrics are helpdeskflow_relay_published_total,
// helpdeskflow_relay_produce_errors_total,
// helpdeskflow_relay_claim_checks_total{reason} (too_large, refused),
// helpdeskflow_relay_lag_events,
// helpdeskflow_relay_lag_seconds, helpdeskflow_relay_leader and
// helpdeskflow_oldest_transaction_age_seconds.
func New(store *eventstore.Store, producer Producer, cfg Config) (*Relay, error) {
	cfg.setDefaults()
	r := &Relay{
		store: store, producer: producer, cfg: cfg,
		published:   prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_relay_published_total", Help: "Events the relay published and the broker acknowledged."}),
		produceErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_relay_produce_errors_total", Help: "Failed publish attempts (the batch is retried)."}),
		claimChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_relay_claim_checks_total",
			Help: "Events published as claim checks (consumers load them from Postgres): too_large (over the relay's event size limit) or refused (by the broker, for good)."}, []string{"reason"}),
		lagEvents:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_relay_lag_events", Help: "Committed events not yet published (counted up to 10000)."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_relay_lag_seconds", Help: "Age of the oldest committed event not yet published."}),
		leader:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_relay_leader", Help: "1 while this process is the publishing relay."}),
		oldestTx:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "helpdeskflow_oldest_transaction_age_seconds", Help: "Age of the oldest open write transaction, which holds back the commit horizon."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.published, r.produceErrs, r.claimChecks, r.lagEvents, r.lagSeconds, r.leader, r.oldestTx} {
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
		if !poll.Sleep(ctx, r.cfg.RetryBackoff) {
			return nil
		}
	}
}

// lead waits to become leader, then publishes until ctx ends or the leader
// session breaks.
func (r *Relay) lead(ctx context.Context) error {
	lease, err := r.store.AcquirePublisherLease(ctx, r.cfg.Name, r.cfg.PollInterval)
	if lease == nil || err != nil {
		return err
	}
	defer lease.Close(ctx)
	r.leader.Set(1)
	r.cfg.Logger.Info("relay is leader", "relay", r.cfg.Name)
	cp, err := lease.Checkpoint(ctx)
	if err != nil {
		return err
	}
	// The lag gauges count from the checkpoint every LagInterval on their
	// own goroutine, so a relay that cannot move (a publish that fails or
	// hangs) shows a growing lag, and the publishing loop never waits for
	// them: a batch costs one read and one checkpoint write.
	var saved atomic.Pointer[helpdeskflow.Position]
	// A copy: cp itself changes with every batch, while watchLag reads what
	// saved points to.
	start := cp
	saved.Store(&start)
	var marked watermarked
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go r.watchLag(watchCtx, &saved)
	for {
		events, cut, err := r.store.ReadBatch(ctx, cp, r.cfg.BatchSize, r.cfg.MaxBatchBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(events) > 0 {
			var marks []*kgo.Record
			if time.Since(marked.at) >= r.cfg.WatermarkSpacing {
				marks = r.watermarks(ctx, events[len(events)-1].Position)
			}
			if err := r.publish(ctx, events, marks); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.produceErrs.Inc()
				r.cfg.Logger.Error("relay publish failed; retrying the batch", "relay", r.cfg.Name, "events", len(events), "err", err)
				if !poll.Sleep(ctx, r.cfg.RetryBackoff) {
					return nil
				}
				continue
			}
			next := events[len(events)-1].Position
			if err := lease.SaveCheckpoint(ctx, next); err != nil {
				return err
			}
			cp = next
			saved.Store(&next)
			r.published.Add(float64(len(events)))
			r.logPublished(ctx, events)
			if marks != nil {
				marked = watermarked{at: time.Now(), position: next}
			}
		}
		if len(events) == r.cfg.BatchSize || cut {
			continue
		}
		wait := r.markCaughtUp(ctx, &marked, cp)
		if len(events) == 0 && r.heldBack(ctx, cp) {
			// Committed events follow the checkpoint: held back above the
			// commit horizon by an older open transaction (of any database
			// in the cluster), or readable since that transaction ended.
			// Their notification has come and gone: look again soon rather
			// than at the next poll. The poll in WaitForEvents covers
			// notifications lost while the relay was busy.
			if !poll.Sleep(ctx, min(horizonRetry, r.cfg.PollInterval)) {
				return nil
			}
			continue
		}
		if err := lease.WaitForEvents(ctx, wait); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// watchLag measures the lag from the saved checkpoint every LagInterval
// until ctx ends.
func (r *Relay) watchLag(ctx context.Context, saved *atomic.Pointer[helpdeskflow.Position]) {
	t := time.NewTicker(r.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.measureLag(ctx, *saved.Load())
		}
	}
}

// measureLag updates the lag metrics: the committed events after cp.
func (r *Relay) measureLag(ctx context.Context, cp helpdeskflow.Position) {
	if n, age, err := r.store.Backlog(ctx, cp, 10000); err == nil {
		r.lagEvents.Set(float64(n))
		r.lagSeconds.Set(age.Seconds())
	}
	if oldest, err := r.store.OldestTransactionAge(ctx); err == nil {
		r.oldestTx.Set(oldest.Seconds())
	}
}

// heldBack reports whether committed events follow cp that the last read
// did not return, held back above the commit horizon or readable since
// (false when it cannot tell: the next notification or poll reads them).
func (r *Relay) heldBack(ctx context.Context, cp helpdeskflow.Position) bool {
	held, err := r.store.HeldBack(ctx, cp)
	return err == nil && held
}

// horizonRetry is how soon the relay reads again when committed events are
// held back by the commit horizon.
const horizonRetry = 50 * time.Millisecond

// publish publishes events in order, then marks (their watermarks, may be
// nil), and returns once the broker has acknowledged them all. When the
// broker refuses records for good, it publishes the batch again one record
// at a time, each refused record as a claim check, and then the marks: the
// idempotent producer keeps a partition's records in order and rejects
// those behind a refused one, so what is published again lands in order
// (earlier copies are duplicates that consumers drop).
func (r *Relay) publish(ctx context.Context, events []helpdeskflow.Event, marks []*kgo.Record) error {
	records := make([]*kgo.Record, len(events), len(events)+len(marks))
	for i, e := range events {
		records[i] = r.record(e)
	}
	results := r.producer.ProduceSync(ctx, append(records, marks...)...)
	err := results.FirstErr()
	if err == nil {
		return nil
	}
	if !slices.ContainsFunc(results, func(pr kgo.ProduceResult) bool { return refusedForGood(pr.Err) }) {
		return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "publish events", Err: err}
	}
	r.cfg.Logger.Warn("relay: the broker refused records for good; publishing the batch again one record at a time",
		"relay", r.cfg.Name, "events", len(events), "err", err)
	for i, e := range events {
		// A fresh record of the same content: the client has filled in the
		// produced one's partition, offset and producer fields.
		rec := &kgo.Record{Topic: records[i].Topic, Key: records[i].Key, Value: records[i].Value, Headers: records[i].Headers, Timestamp: records[i].Timestamp}
		err := r.producer.ProduceSync(ctx, rec).FirstErr()
		if refusedForGood(err) {
			r.claimCheckFor(e, "refused", len(rec.Value), err)
			err = r.producer.ProduceSync(ctx, kafka.ClaimCheck(r.cfg.Topic, e)).FirstErr()
		}
		if err != nil {
			return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "publish event " + e.ID.String(), Err: err}
		}
	}
	if err := r.producer.ProduceSync(ctx, marks...).FirstErr(); err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "publish watermarks", Err: err}
	}
	return nil
}

// watermarks returns the watermark records of position p for every
// partition of the topic, or nil (logged) when the partitions cannot be
// counted: the next batch or idle round publishes them.
func (r *Relay) watermarks(ctx context.Context, p helpdeskflow.Position) []*kgo.Record {
	req := kmsg.NewPtrMetadataRequest()
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr(r.cfg.Topic)
	req.Topics = []kmsg.MetadataRequestTopic{topic}
	resp, err := r.producer.RequestCachedMetadata(ctx, req, partitionsMaxAge)
	if err == nil && (len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) == 0) {
		err = errors.New("the broker does not describe the topic")
	}
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.Warn("relay: cannot count the topic's partitions; watermarks wait for the next round", "relay", r.cfg.Name, "topic", r.cfg.Topic, "err", err)
		}
		return nil
	}
	return kafka.NewWatermarks(r.cfg.Topic, p, len(resp.Topics[0].Partitions))
}

// partitionsMaxAge is how old the topic metadata that counts its
// partitions for watermarks may be.
const partitionsMaxAge = 30 * time.Second

// watermarked is when the relay last published watermarks, and of which
// position.
type watermarked struct {
	at       time.Time
	position helpdeskflow.Position
}

// markCaughtUp runs when the relay has published everything committed up
// to cp: it publishes cp's watermarks when they are owed (not published
// yet and WatermarkSpacing has passed, or WatermarkInterval has) and
// returns how long the relay may wait for events: PollInterval, or less
// when cp's watermarks are still owed.
func (r *Relay) markCaughtUp(ctx context.Context, marked *watermarked, cp helpdeskflow.Position) time.Duration {
	if cp == (helpdeskflow.Position{}) {
		return r.cfg.PollInterval
	}
	since := time.Since(marked.at)
	owed := marked.position != cp
	if (owed && since >= r.cfg.WatermarkSpacing) || since >= r.cfg.WatermarkInterval {
		if r.publishWatermarks(ctx, cp) {
			*marked = watermarked{at: time.Now(), position: cp}
			return r.cfg.PollInterval
		}
		return min(r.cfg.PollInterval, r.cfg.RetryBackoff)
	}
	if owed {
		return min(r.cfg.PollInterval, r.cfg.WatermarkSpacing-since)
	}
	return r.cfg.PollInterval
}

// publishWatermarks publishes the watermarks of p alone and reports
// whether they were acknowledged (a failure is logged; the next round
// tries again).
func (r *Relay) publishWatermarks(ctx context.Context, p helpdeskflow.Position) bool {
	marks := r.watermarks(ctx, p)
	if marks == nil {
		return false
	}
	if err := r.producer.ProduceSync(ctx, marks...).FirstErr(); err != nil {
		if ctx.Err() == nil {
			r.produceErrs.Inc()
			r.cfg.Logger.Warn("relay: publishing watermarks failed; retrying in the next round", "relay", r.cfg.Name, "err", err)
		}
		return false
	}
	return true
}

// record is e's record, or its claim check when e cannot be encoded or its
// record is over MaxEventBytes even with its data compacted.
func (r *Relay) record(e helpdeskflow.Event) *kgo.Record {
	rec, err := kafka.NewRecord(r.cfg.Topic, e)
	if err != nil {
		r.claimCheckFor(e, "too_large", 0, err)
		return kafka.ClaimCheck(r.cfg.Topic, e)
	}
	size := kafka.RecordBytes(rec)
	if size <= r.cfg.MaxEventBytes {
		return rec
	}
	// Events stored while events.data was jsonb (before migration 0023)
	// come back with a space after each ':' and ','; the size the store
	// checked is of the compact form.
	var compact bytes.Buffer
	if json.Compact(&compact, e.Data) == nil && compact.Len() < len(e.Data) {
		e.Data = compact.Bytes()
		if rec, err = kafka.NewRecord(r.cfg.Topic, e); err == nil {
			if size = kafka.RecordBytes(rec); size <= r.cfg.MaxEventBytes {
				return rec
			}
		}
	}
	r.claimCheckFor(e, "too_large", size, nil)
	return kafka.ClaimCheck(r.cfg.Topic, e)
}

// claimCheckFor counts and logs an event published as a claim check.
func (r *Relay) claimCheckFor(e helpdeskflow.Event, reason string, size int, err error) {
	r.claimChecks.WithLabelValues(reason).Inc()
	r.cfg.Logger.Error("relay: event published as a claim check; consumers load it from Postgres",
		append(helpdeskflow.EventLogAttrs(e), "relay", r.cfg.Name, "reason", reason, "bytes", size, "max_bytes", r.cfg.MaxEventBytes,
			helpdeskflow.LogError, err)...)
}

// logPublished logs each event of a batch the broker acknowledged, at
// debug level: the relay's part of following a request through the logs.
func (r *Relay) logPublished(ctx context.Context, events []helpdeskflow.Event) {
	if !r.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	for _, e := range events {
		r.cfg.Logger.DebugContext(ctx, "relay published event", append(helpdeskflow.EventLogAttrs(e), "relay", r.cfg.Name)...)
	}
}

// refusedForGood reports whether a produce error means the broker will
// never take the record as it is.
func refusedForGood(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}
