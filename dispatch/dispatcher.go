package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
)

// Handler is one asynchronous side effect of events: a webhook sender, a
// Slack notifier, an SLA timer.
//
// The dispatcher calls Handle at least once for every event it consumes,
// the events of one stream in version order, and never concurrently: the
// handlers of a dispatcher run one after another, in Config.Handlers order.
// A nil error means the side effect is done. Any error means "retry": the
// dispatcher calls Handle again with the same event after a backoff, and
// handles no later event of that stream (nor, in this version, of any stream
// on the dispatcher) until it succeeds. While one handler retries, the
// handlers that already succeeded for the event are not called again.
//
// Handle must be idempotent-friendly: a crash or a lost group membership
// between its success and the progress write delivers the event again, so
// it should use the event id or (stream id, version) as its idempotency key.
// Handle must return promptly once ctx is cancelled (the dispatcher is
// stopping; its result is then ignored and the event redelivered later). A
// handler that has nothing to do for an event type returns nil.
//
// Name identifies the handler in metrics and logs. It must be non-empty,
// constant, and unique among a dispatcher's handlers.
type Handler interface {
	Name() string
	Handle(ctx context.Context, e helpdeskflow.Event) error
}

// Defaults of Config.
const (
	// DefaultGroup is the Kafka consumer group of Config.Group.
	DefaultGroup = "helpdeskflow-dispatch"
	// DefaultBatchSize is the default Config.BatchSize.
	DefaultBatchSize = 500
	// DefaultRetryBackoff is the default first wait after a failure.
	DefaultRetryBackoff = 500 * time.Millisecond
	// DefaultMaxRetryBackoff caps the doubling of the retry wait.
	DefaultMaxRetryBackoff = 30 * time.Second
	// DefaultShutdownTimeout bounds the final commit and the group leave.
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures a Dispatcher. Zero fields take the defaults named on
// each; Brokers, Pool and Handlers are required.
type Config struct {
	// Brokers are the Kafka seed brokers ("host:port"). Required.
	Brokers []string
	// Group is the Kafka consumer group. Default DefaultGroup
	// ("helpdeskflow-dispatch").
	Group string
	// Topic is the events topic, whose record values are JSON-encoded
	// helpdeskflow.Event. Default kafka.TopicEvents.
	Topic string
	// Consumer names this dispatcher's rows in dispatch_progress, the
	// namespace in which redeliveries are recognised. Two dispatchers with
	// the same Consumer share their progress even in different groups (a
	// group whose offsets were lost and reset skips what was handled).
	// Default: Group.
	Consumer string
	// Pool is the Postgres pool of the migrated event-store database that
	// holds dispatch_progress. Required; the dispatcher does not close it.
	Pool *pgxpool.Pool
	// Handlers receive every event, in this order. At least one is
	// required; their names must be non-empty and unique.
	Handlers []Handler
	// Events loads the events of claim checks (records standing in for
	// events the broker refused) from the event store
	// (*eventstore.Store). Set it in production: without it a claim check
	// is logged, counted as a decode error and skipped.
	Events kafka.Loader
	// BatchSize is the most records polled and dispatched at once; their
	// progress is read with one query and written with one statement.
	// Default DefaultBatchSize (500).
	BatchSize int
	// RetryBackoff is the first wait after a failed handler call or
	// progress query; it doubles after every further failure up to
	// MaxRetryBackoff. Defaults DefaultRetryBackoff (500 ms) and
	// DefaultMaxRetryBackoff (30 s, or RetryBackoff if that is larger).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// ShutdownTimeout bounds, once Run's context is cancelled, the final
	// progress write and offset commit, and separately the group leave.
	// Default DefaultShutdownTimeout (10 s).
	ShutdownTimeout time.Duration
	// Logger receives the dispatcher's and the Kafka client's logs.
	// Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the dispatcher's metrics; nil registers nothing.
	// Metrics already registered by an earlier dispatcher are reused.
	Registerer prometheus.Registerer
	// ExtraOpts are extra franz-go client options (TLS, SASL, client id,
	// fetch tuning in tests), applied after the dispatcher's own, so they
	// can override them (for example kgo.ConsumeResetOffset, which is the
	// start of the topic by default).
	ExtraOpts []kgo.Opt
}

func (c *Config) setDefaults() {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Topic == "" {
		c.Topic = kafka.TopicEvents
	}
	if c.Consumer == "" {
		c.Consumer = c.Group
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = max(DefaultMaxRetryBackoff, c.RetryBackoff)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of c at once, joined with errors.Join, or
// nil. Zero fields that have a default are not problems: Validate checks c
// as New would use it, after the defaults. The problems it names are a
// missing Brokers (or an empty address), Pool or Handlers, a nil handler, a
// handler with an empty or duplicate name, and a MaxRetryBackoff smaller
// than RetryBackoff.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one Kafka broker is required"))
	}
	for i, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, fmt.Errorf("brokers[%d]: empty address", i))
		}
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("pool: a Postgres pool is required"))
	}
	if len(c.Handlers) == 0 {
		errs = append(errs, errors.New("handlers: at least one handler is required"))
	}
	seen := map[string]int{}
	for i, h := range c.Handlers {
		if h == nil {
			errs = append(errs, fmt.Errorf("handlers[%d]: nil handler", i))
			continue
		}
		name := h.Name()
		if name == "" {
			errs = append(errs, fmt.Errorf("handlers[%d]: empty name", i))
			continue
		}
		if j, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("handlers[%d]: name %q is already used by handlers[%d]", i, name, j))
			continue
		}
		seen[name] = i
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("max retry backoff: must be at least the retry backoff (%s), got %s", c.RetryBackoff, c.MaxRetryBackoff))
	}
	return errors.Join(errs...)
}

// Dispatcher consumes the events topic and calls its handlers for every
// event, at least once, in per-stream version order, skipping events that
// dispatch_progress shows handled.
//
// For each polled batch it reads the progress of the batch's streams with
// one query, calls the handlers event by event (skipping any version at or
// below its stream's progress), writes the progress of the handled events
// with one statement, and only then commits the batch's offsets. An event
// counts as handled only after every handler succeeded for it. Group
// rebalances are held back while a batch is in flight (franz-go's
// BlockRebalanceOnPoll); a rebalance that is wanted while a handler keeps
// failing interrupts the retries: the dispatcher records and commits what is
// done, rewinds its position to the first event not done, and lets the
// rebalance proceed, so the event is retried by whoever owns its partition
// next. (If the progress write is what keeps failing, the whole batch is
// rewound and its handled events are delivered again.)
//
// Progress is the highest handled version per stream, so the dispatcher
// relies on the relay's keying (record key = stream id): a stream's events
// reach one partition in version order. An older version arriving after a
// newer one was handled would be skipped as a duplicate.
//
// Metrics: helpdeskflow_dispatch_events_total{handler},
// helpdeskflow_dispatch_errors_total{handler},
// helpdeskflow_dispatch_handle_duration_seconds{handler},
// helpdeskflow_dispatch_duplicates_total,
// helpdeskflow_dispatch_consumer_lag{topic,partition} and
// helpdeskflow_dispatch_internal_errors_total{kind}.
//
// A Dispatcher runs once: create it with New and call Run from one
// goroutine. Its metrics may be scraped concurrently. Several dispatchers
// in one group share the partitions.
type Dispatcher struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	handlers []namedHandler
	progress progressStore

	running   atomic.Bool
	rebalance *signal           // raised while a rebalance waits for the batch in flight
	lag       *kafka.LagTracker // also used by the rebalance callbacks, on the client's goroutines
}

type namedHandler struct {
	name string
	h    Handler
}

// New fills cfg's defaults, validates it and registers the dispatcher's
// metrics on cfg.Registerer. It does not connect to anything. It returns an
// EValidation error listing every configuration problem (see
// Config.Validate), and an EInternal error when a metric cannot be
// registered because a different collector uses its name.
func New(cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid dispatcher configuration", Err: err}
	}
	handlers := make([]namedHandler, len(cfg.Handlers))
	names := make([]string, len(cfg.Handlers))
	for i, h := range cfg.Handlers {
		handlers[i] = namedHandler{name: h.Name(), h: h}
		names[i] = handlers[i].name
	}
	m, err := newMetrics(cfg.Registerer, names)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register dispatcher metrics", Err: err}
	}
	return &Dispatcher{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "dispatcher", "group", cfg.Group, "consumer", cfg.Consumer),
		m:         m,
		handlers:  handlers,
		progress:  progressStore{pool: cfg.Pool, consumer: cfg.Consumer},
		rebalance: newSignal(),
		lag:       kafka.NewLagTracker(cfg.Topic, m.lag),
	}, nil
}

// Run joins the consumer group and dispatches events until ctx is
// cancelled. A group without committed offsets starts at the beginning of
// the topic; dispatch_progress keeps that from handling an event twice, but
// a new Consumer name on a topic with history dispatches that history
// (handlers that must not act on old events check OccurredAt, or ExtraOpts
// sets another kgo.ConsumeResetOffset).
//
// Failures never end Run: a failed handler call is logged, counted and
// retried with capped exponential backoff (RetryBackoff doubling up to
// MaxRetryBackoff) without skipping the event; a failed progress query is
// retried the same way; the events of claim checks are loaded from
// Config.Events (retried the same way when that fails); a record whose
// value is not a JSON event with a stream id and a positive version, or a
// claim check whose event cannot be found, is logged, counted and skipped.
//
// When ctx is cancelled, Run stops calling handlers (an interrupted call's
// result is ignored), writes the progress of the events already handled,
// commits their offsets, leaves the group, closes its Kafka client and
// returns nil. If the final progress write does not succeed within
// ShutdownTimeout, it is logged and the unrecorded events are delivered
// again later. Run returns an EInternal error if called a second time, and
// an EValidation error if the Kafka client rejects its options. It never
// closes the Postgres pool.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "dispatcher: Run may be called only once"}
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(d.cfg.Brokers...),
		kgo.ConsumerGroup(d.cfg.Group),
		kgo.ConsumeTopics(d.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { d.rebalance.raise() }),
		kgo.OnPartitionsRevoked(d.forgetPartitions),
		kgo.OnPartitionsLost(d.forgetPartitions),
		kgo.WithLogger(kafka.NewLogger(d.cfg.Logger.With("component", "dispatcher-kafka"))),
	}, d.cfg.ExtraOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "dispatcher: create Kafka client", Err: err}
	}
	d.log.Info("dispatcher started", "brokers", d.cfg.Brokers, "topic", d.cfg.Topic, "handlers", len(d.handlers))

	var pending *batch // a batch interrupted by the shutdown, settled below
	for ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, d.cfg.BatchSize)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			// Records polled just now are not handled; they are not
			// committed either, so they come again.
			break
		}
		d.noteFetches(fetches)
		d.lag.Update(cl)
		b, ok := d.newBatch(ctx, fetches)
		if !ok {
			break // stopping while claim checks were loaded: nothing handled
		}
		if len(b.records) == 0 {
			d.allowRebalance(cl)
			continue
		}
		d.process(ctx, b)
		if ctx.Err() == nil {
			d.settle(ctx, cl, b, false)
		}
		if ctx.Err() != nil {
			pending = b
			break
		}
		d.allowRebalance(cl)
	}
	return d.shutdown(ctx, cl, pending)
}

func (d *Dispatcher) shutdown(ctx context.Context, cl *kgo.Client, pending *batch) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownTimeout)
	if pending != nil {
		d.settle(sctx, cl, pending, true)
	}
	cancel()
	cl.AllowRebalance()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownTimeout)
	defer cancel()
	if err := cl.LeaveGroupContext(lctx); err != nil {
		d.log.Warn("dispatcher: leave group", "err", err)
	}
	cl.Close()
	d.forgetPartitions(lctx, cl, map[string][]int32{d.cfg.Topic: d.lag.Partitions()})
	d.log.Info("dispatcher stopped")
	return nil
}

// batch is the records of one poll and how far the dispatcher got with
// them. Records of one partition are in offset order, and the dispatcher
// works through them in poll order, so records[:done] is a prefix of every
// partition's records.
type batch struct {
	records []*kgo.Record
	events  []helpdeskflow.Event
	valid   []bool

	done      int                 // records[:done] are handled, skipped as duplicates, or invalid
	handled   map[uuid.UUID]int64 // highest version handled per stream within records[:done]
	saved     bool                // handled is durable in dispatch_progress
	committed bool                // the offsets of records[:done] are committed
}

// newBatch decodes the polled records, loading the events of claim checks
// from the event store (retried until it works); ok is false when ctx
// ended first.
func (d *Dispatcher) newBatch(ctx context.Context, fetches kgo.Fetches) (b *batch, ok bool) {
	b = &batch{handled: map[uuid.UUID]int64{}, records: fetches.Records()}
	var errs []error
	ok = d.retry(ctx, nil, errKindClaims, func() error {
		var err error
		b.events, errs, err = kafka.Decode(ctx, b.records, d.cfg.Events)
		return err
	})
	if !ok {
		return nil, false
	}
	b.valid = make([]bool, len(b.records))
	for i, r := range b.records {
		if b.valid[i] = errs[i] == nil; !b.valid[i] {
			d.m.internalErrors.WithLabelValues(errKindDecode).Inc()
			d.log.Error("dispatcher: record is not an event; skipped",
				"partition", r.Partition, "offset", r.Offset, "key", string(r.Key), "err", errs[i])
		}
	}
	return b, true
}

// process calls the handlers for b's events in order, skipping those
// already handled, until every record is done, ctx is cancelled, or a
// wanted rebalance interrupts a retry.
func (d *Dispatcher) process(ctx context.Context, b *batch) {
	var streams []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for i, e := range b.events {
		if b.valid[i] && !seen[e.StreamID] {
			seen[e.StreamID] = true
			streams = append(streams, e.StreamID)
		}
	}
	var known map[uuid.UUID]int64
	ok := d.retry(ctx, d.rebalance.wait(), errKindProgressRead, func() error {
		var err error
		known, err = d.progress.load(ctx, streams)
		return err
	})
	if !ok {
		return
	}
	for ; b.done < len(b.records); b.done++ {
		if !b.valid[b.done] {
			continue
		}
		e := b.events[b.done]
		if e.Version <= known[e.StreamID] {
			d.m.duplicates.Inc()
			d.log.Debug("dispatcher: duplicate event skipped", "event_id", e.ID, "stream_id", e.StreamID,
				"version", e.Version, "handled_version", known[e.StreamID])
			continue
		}
		if !d.handle(ctx, e) {
			return
		}
		known[e.StreamID] = e.Version
		b.handled[e.StreamID] = e.Version
	}
}

// handle calls every handler for e, retrying the failed ones with backoff
// until all succeeded (true) or ctx is cancelled or a rebalance is wanted
// (false).
func (d *Dispatcher) handle(ctx context.Context, e helpdeskflow.Event) bool {
	pending := d.handlers
	backoff := d.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		var failed []namedHandler
		for _, h := range pending {
			if ctx.Err() != nil {
				return false
			}
			err := d.call(ctx, h, e)
			if err == nil {
				d.m.events.WithLabelValues(h.name).Inc()
				continue
			}
			if ctx.Err() != nil {
				return false // stopping: the failure is most likely the cancellation
			}
			d.m.errors.WithLabelValues(h.name).Inc()
			d.log.Warn("dispatcher: handler failed; retrying the event", "handler", h.name,
				"event_id", e.ID, "type", e.Type, "stream_id", e.StreamID, "version", e.Version,
				"attempt", attempt, "backoff", backoff, "err", err)
			failed = append(failed, h)
		}
		if len(failed) == 0 {
			return true
		}
		pending = failed
		if !sleep(ctx, d.rebalance.wait(), backoff) {
			return false
		}
		backoff = min(2*backoff, d.cfg.MaxRetryBackoff)
	}
}

// call runs one handler, timing it and turning a panic into an error so
// that one faulty handler cannot take down a process that runs every role.
func (d *Dispatcher) call(ctx context.Context, h namedHandler, e helpdeskflow.Event) (err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler %s panicked: %v\n%s", h.name, p, debug.Stack())
		}
		d.m.duration.WithLabelValues(h.name).Observe(time.Since(start).Seconds())
	}()
	return h.h.Handle(ctx, e)
}

// settle makes b's handled events durable in dispatch_progress, then
// commits the offsets of its done records; offsets are never committed
// before the progress is written. Unless leaving, it then moves the fetch
// position of every partition back to its first record that is not
// committed, so that an interrupted batch is consumed again; a leaving
// dispatcher relies on the committed offsets instead.
func (d *Dispatcher) settle(ctx context.Context, cl *kgo.Client, b *batch, leaving bool) {
	interrupt := d.rebalance.wait()
	if leaving {
		interrupt = nil
	}
	if !b.saved {
		b.saved = d.retry(ctx, interrupt, errKindProgressWrite, func() error { return d.progress.save(ctx, b.handled) })
		if !b.saved && (leaving || ctx.Err() != nil) {
			if len(b.handled) > 0 {
				d.log.Warn("dispatcher: progress of handled events not recorded; they will be delivered again",
					"streams", len(b.handled))
			}
			return
		}
	}
	committed := 0
	if b.saved && b.done > 0 {
		if !b.committed {
			if err := cl.CommitRecords(ctx, b.records[:b.done]...); err != nil {
				// The progress is durable, so a redelivery of these records
				// is skipped; the next batch's commit usually covers them.
				d.m.internalErrors.WithLabelValues(errKindCommit).Inc()
				d.log.Warn("dispatcher: offset commit failed", "err", err)
			} else {
				b.committed = true
			}
		}
		committed = b.done
	}
	d.lag.Update(cl)
	if !leaving && committed < len(b.records) {
		d.rewind(cl, b.records[committed:])
	}
}

// rewind sets the fetch position of each partition in records to its first
// record there. It must run before AllowRebalance, while the partitions are
// surely still ours.
func (d *Dispatcher) rewind(cl *kgo.Client, records []*kgo.Record) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range records {
		if offsets[r.Topic] == nil {
			offsets[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		if _, ok := offsets[r.Topic][r.Partition]; !ok {
			offsets[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
			d.log.Info("dispatcher: batch interrupted; partition rewound", "partition", r.Partition, "offset", r.Offset)
		}
	}
	cl.SetOffsets(offsets)
}

// allowRebalance ends a batch: a rebalance wanted until now is let through.
func (d *Dispatcher) allowRebalance(cl *kgo.Client) {
	d.rebalance.reset()
	cl.AllowRebalance()
}

// retry calls fn until it succeeds (true), or ctx is cancelled or interrupt
// is closed (false), counting and logging each failure as kind.
func (d *Dispatcher) retry(ctx context.Context, interrupt <-chan struct{}, kind string, fn func() error) bool {
	backoff := d.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return false
		}
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d.m.internalErrors.WithLabelValues(kind).Inc()
		d.log.Error("dispatcher: "+kind+" failed; retrying", "attempt", attempt, "backoff", backoff, "err", err)
		if !sleep(ctx, interrupt, backoff) {
			return false
		}
		backoff = min(2*backoff, d.cfg.MaxRetryBackoff)
	}
}

// noteFetches logs and counts the fetch errors of a poll (not those of a
// cancellation or a closed client) and notes its partitions' watermarks for
// the lag gauge.
func (d *Dispatcher) noteFetches(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		d.m.internalErrors.WithLabelValues(errKindFetch).Inc()
		d.log.Warn("dispatcher: fetch error", "fetch_topic", topic, "partition", partition, "err", err)
	})
	d.lag.Note(fetches)
}

// forgetPartitions drops the lag series of partitions this member no longer
// consumes, so another member's gauge is the only one left.
func (d *Dispatcher) forgetPartitions(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	d.lag.Forget(lost[d.cfg.Topic])
}

// signal is a sticky flag that can be waited on: raise closes the channel
// wait returns, reset replaces a closed one.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) raise() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ch:
	default:
		close(s.ch)
	}
}

func (s *signal) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ch:
		s.ch = make(chan struct{})
	default:
	}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// sleep waits for d; it reports false if ctx ended or interrupt was closed
// first. A nil interrupt never fires.
func sleep(ctx context.Context, interrupt <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-interrupt:
		return false
	case <-t.C:
		return true
	}
}
