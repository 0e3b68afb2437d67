package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
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

// BatchHandler is a Handler that works through a polled batch of events
// at once: it reads what it needs for all of them in one go (the webhooks
// of every workspace in the batch, say) and writes what they ask for
// together, so a batch costs it a fixed number of statements however many
// events it holds.
//
// For every polled batch the dispatcher calls Begin once, before it handles
// any of the batch's events, with the events it is about to handle (in
// order, redeliveries already handled left out), and then, in place of the
// handler's own Handle, the returned HandlerBatch's Handle for each of
// them, under Handle's contract. Before it records events as handled it
// calls the HandlerBatch's Commit. A failed Begin or Commit is logged,
// counted as a failure of the handler and retried with backoff like a
// failed Handle. A HandlerBatch serves one polled batch and is then
// dropped, so nothing it read outlives its batch: a webhook created or
// deactivated meanwhile is seen by the next batch.
type BatchHandler interface {
	Handler
	Begin(ctx context.Context, events []helpdeskflow.Event) (HandlerBatch, error)
}

// HandlerBatch is a BatchHandler's work on one polled batch, used by one
// goroutine.
type HandlerBatch interface {
	// Handle is Handler.Handle for an event of the batch (one of those
	// given to Begin), except that it may keep what it writes until
	// Commit.
	Handle(ctx context.Context, e helpdeskflow.Event) error
	// Commit makes durable what Handle kept since the last Commit that
	// succeeded (nothing to do is a success). After an error it is called
	// again and must write it all; a crash before the progress is recorded
	// delivers the events again, so its writes must be idempotent.
	Commit(ctx context.Context) error
}

// Defaults of Config.
const (
	// DefaultGroup is the Kafka consumer group of Config.Group.
	DefaultGroup = "helpdeskflow-dispatch"
	// DefaultBatchSize is the default Config.BatchSize.
	DefaultBatchSize = 500
	// DefaultFlushInterval is the default Config.FlushInterval.
	DefaultFlushInterval = 20 * time.Millisecond
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
	// Pool is the migrated Postgres database that holds
	// dispatch_progress (store/progress). Required; the dispatcher does
	// not close it.
	Pool *pg.DB
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
	// FlushInterval is the longest the first record of a batch waits for
	// more records before the batch is dispatched: under load a batch
	// gathers the records of this long, whose statements it shares.
	// Default DefaultFlushInterval (20 ms); negative: every poll is a
	// batch of its own.
	FlushInterval time.Duration
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
	// Membership is how the dispatcher is a member of Group: an instance
	// id makes it static, so a restarted dispatcher takes its partitions
	// back at once (kafka.Membership; its defaults apply to zero fields).
	Membership kafka.Membership
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
	ExtraOpts []kafka.Option
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
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
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
// handler with an empty or duplicate name, a MaxRetryBackoff smaller
// than RetryBackoff, and the problems of Membership (kafka.Membership.Check).
func (c Config) Validate() error {
	c.setDefaults()
	errs := kafka.CheckBrokers(c.Brokers)
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
	for _, err := range c.Membership.Check() {
		errs = append(errs, fmt.Errorf("membership: %w", err))
	}
	return errors.Join(errs...)
}

// Dispatcher consumes the events topic and calls its handlers for every
// event, at least once, in per-stream version order, skipping events that
// dispatch_progress shows handled.
//
// For each polled batch it reads the progress of the batch's streams with
// one query, begins the batch on every BatchHandler (each reads what it
// needs for all the batch's events at once), calls the handlers event by
// event (skipping any version at or below its stream's progress), commits
// the BatchHandlers' writes, writes the progress of the handled events
// with one statement, and only then commits the batch's offsets, so a
// batch costs a fixed number of statements however many events it holds.
// An event counts as handled only after every handler succeeded for it
// (and the BatchHandlers committed what they wrote for it). Group
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
	loop     *kafka.Consumer // polls, commits after each batch's Flush, rebalances, leaves
}

type namedHandler struct {
	name   string
	h      Handler
	handle func(ctx context.Context, e helpdeskflow.Event) error // h.Handle, or its HandlerBatch's in a batch
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
		handlers[i] = namedHandler{name: h.Name(), h: h, handle: h.Handle}
		names[i] = handlers[i].name
	}
	m, err := newMetrics(cfg.Registerer, names)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register dispatcher metrics", Err: err}
	}
	d := &Dispatcher{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "dispatcher", "group", cfg.Group, "consumer", cfg.Consumer),
		m:        m,
		handlers: handlers,
		progress: progressStore{pool: cfg.Pool, consumer: cfg.Consumer},
	}
	// No byte bound: a batch holds decoded events and what they ask for.
	d.loop = kafka.NewConsumer(kafka.ConsumerConfig{
		Name: "dispatcher", Brokers: cfg.Brokers, Group: cfg.Group, Topic: cfg.Topic, BatchSize: cfg.BatchSize,
		FlushInterval: max(cfg.FlushInterval, 0),
		RetryBackoff:  cfg.RetryBackoff, MaxRetryBackoff: cfg.MaxRetryBackoff, ShutdownTimeout: cfg.ShutdownTimeout,
		NewBatch: func() kafka.Batch { return &batch{d: d, handled: map[uuid.UUID]int64{}} },
		Logger:   cfg.Logger, Errors: m.internalErrors, Lag: m.lag, Membership: cfg.Membership, Options: cfg.ExtraOpts,
	})
	return d, nil
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
// Config.Events (retried the same way when that fails); a record that is
// not an event (kafka.ErrNotAnEvent: no stream id or no positive version
// in its headers, or an old-format value that is not one), or a claim
// check whose event cannot be found, is logged, counted and skipped.
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
	err := d.loop.Run(ctx)
	if err != nil && !errors.Is(err, kafka.ErrNotCommitted) {
		return err
	}
	if err != nil {
		// Records not handled or not recorded come again to whoever
		// owns their partition next.
		d.log.Info("dispatcher stopped", "uncommitted", err)
		return nil
	}
	d.log.Info("dispatcher stopped")
	return nil
}

// batch is the records of one poll and how far the dispatcher got with
// them (kafka.Batch). Records of one partition are in offset order, and
// the dispatcher works through them in poll order, so records[:done] is a
// prefix of every partition's records.
type batch struct {
	d       *Dispatcher
	records []*kafka.Record
	decoded bool
	events  []helpdeskflow.Event
	valid   []bool
	known   map[uuid.UUID]int64 // dispatch_progress of the batch's streams; nil until read
	// handlers are the dispatcher's, each BatchHandler's handle that of its
	// HandlerBatch (work[i], nil for the others) once begun.
	handlers []namedHandler
	work     []HandlerBatch
	begun    bool

	done    int                 // records[:done] are handled, skipped as duplicates, or invalid
	handled map[uuid.UUID]int64 // highest version handled per stream within records[:done]
	saved   bool                // handled is durable in dispatch_progress
}

// Add takes a polled record.
func (b *batch) Add(r *kafka.Record) { b.records = append(b.records, r) }

// Flush handles the batch's events and then makes their progress durable
// in dispatch_progress; the loop commits offsets only after that. A wanted
// rebalance interrupts the retries: the progress of the events handled so
// far is written (one attempt) and reported done, the rest is given back.
// When ctx ends while handling, nothing is written: the final Flush writes
// the progress of what was handled and calls no handler.
func (b *batch) Flush(ctx context.Context, rebalance <-chan struct{}, final bool) (int, error) {
	if final {
		return b.settle(ctx)
	}
	if !b.decoded {
		if err := b.decode(ctx); err != nil {
			return 0, err
		}
	}
	if err := b.process(ctx, rebalance); err != nil {
		if ctx.Err() != nil || b.save(ctx, rebalance) != nil {
			return 0, err
		}
		return b.done, err
	}
	if err := b.save(ctx, rebalance); err != nil {
		return 0, err
	}
	return len(b.records), nil
}

// settle makes the progress of the events handled durable, calling no
// handler: the last step when the dispatcher stops.
func (b *batch) settle(ctx context.Context) (int, error) {
	if err := b.save(ctx, nil); err != nil {
		if len(b.handled) > 0 {
			b.d.log.Warn("dispatcher: progress of handled events not recorded; they will be delivered again",
				"streams", len(b.handled))
		}
		return 0, err
	}
	if b.done < len(b.records) {
		return b.done, fmt.Errorf("%d of %d polled records not handled", len(b.records)-b.done, len(b.records))
	}
	return len(b.records), nil
}

// save commits the handler batches and then writes b's handled events to
// dispatch_progress, retrying each until it works, ctx ends or interrupt
// closes.
func (b *batch) save(ctx context.Context, interrupt <-chan struct{}) error {
	if b.saved {
		return nil
	}
	for i, w := range b.work {
		if w == nil {
			continue
		}
		if err := b.d.retryHandler(ctx, interrupt, b.handlers[i].name, "commit", func() error { return w.Commit(ctx) }); err != nil {
			return err
		}
	}
	err := b.d.retry(ctx, interrupt, errKindProgressWrite, func() error { return b.d.progress.save(ctx, b.handled) })
	b.saved = err == nil
	return err
}

// decode decodes the polled records, loading the events of claim checks
// from the event store (retried until it works or ctx ends).
func (b *batch) decode(ctx context.Context) error {
	d := b.d
	var errs []error
	err := d.retry(ctx, nil, kafka.ErrKindClaimCheck, func() error {
		var err error
		b.events, errs, err = kafka.Decode(ctx, b.records, d.cfg.Events)
		return err
	})
	if err != nil {
		return err
	}
	b.valid = make([]bool, len(b.records))
	for i, r := range b.records {
		if b.valid[i] = errs[i] == nil; !b.valid[i] {
			d.m.internalErrors.WithLabelValues(kafka.ErrKindDecode).Inc()
			d.log.Error("dispatcher: record is not an event; skipped",
				"partition", r.Partition, "offset", r.Offset, "key", string(r.Key), "err", errs[i])
		}
	}
	b.decoded = true
	return nil
}

// process calls the handlers for b's events in order, skipping those
// already handled, until every record is done (nil), or ctx is cancelled
// or interrupt closes while a retry waits (an error).
func (b *batch) process(ctx context.Context, interrupt <-chan struct{}) error {
	d := b.d
	if b.known == nil {
		var streams []uuid.UUID
		seen := map[uuid.UUID]bool{}
		for i, e := range b.events {
			if b.valid[i] && !seen[e.StreamID] {
				seen[e.StreamID] = true
				streams = append(streams, e.StreamID)
			}
		}
		err := d.retry(ctx, interrupt, errKindProgressRead, func() error {
			var err error
			b.known, err = d.progress.load(ctx, streams)
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := b.begin(ctx, interrupt); err != nil {
		return err
	}
	for ; b.done < len(b.records); b.done++ {
		if !b.valid[b.done] {
			continue
		}
		e := b.events[b.done]
		if e.Version <= b.known[e.StreamID] {
			d.m.duplicates.Inc()
			d.log.Debug("dispatcher: duplicate event skipped", append(helpdeskflow.EventLogAttrs(e), "handled_version", b.known[e.StreamID])...)
			continue
		}
		if err := d.handle(ctx, interrupt, b.handlers, e); err != nil {
			return err
		}
		b.known[e.StreamID] = e.Version
		b.handled[e.StreamID] = e.Version
	}
	return nil
}

// begin calls Begin of every BatchHandler that has not begun the batch
// yet, with the events process is about to handle (none at or below their
// stream's progress), retrying each until it works, ctx ends or interrupt
// closes.
func (b *batch) begin(ctx context.Context, interrupt <-chan struct{}) error {
	if b.begun {
		return nil
	}
	d := b.d
	if b.handlers == nil {
		b.handlers, b.work = slices.Clone(d.handlers), make([]HandlerBatch, len(d.handlers))
	}
	var fresh []helpdeskflow.Event
	upTo := map[uuid.UUID]int64{}
	for i, e := range b.events {
		if b.valid[i] && e.Version > max(b.known[e.StreamID], upTo[e.StreamID]) {
			fresh = append(fresh, e)
			upTo[e.StreamID] = e.Version
		}
	}
	for i, h := range b.handlers {
		bh, ok := h.h.(BatchHandler)
		if !ok || b.work[i] != nil {
			continue
		}
		var w HandlerBatch
		err := d.retryHandler(ctx, interrupt, h.name, "begin", func() error {
			var err error
			w, err = bh.Begin(ctx, fresh)
			return err
		})
		if err != nil {
			return err
		}
		b.work[i], b.handlers[i].handle = w, w.Handle
	}
	b.begun = true
	return nil
}

// handle calls every one of handlers for e, retrying the failed ones with
// backoff until all succeeded (nil) or ctx is cancelled or interrupt closes
// (an error).
func (d *Dispatcher) handle(ctx context.Context, interrupt <-chan struct{}, handlers []namedHandler, e helpdeskflow.Event) error {
	pending := handlers
	backoff := d.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		var failed []namedHandler
		for _, h := range pending {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := d.call(ctx, h, e)
			if err == nil {
				d.m.events.WithLabelValues(h.name).Inc()
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err() // stopping: the failure is most likely the cancellation
			}
			d.m.errors.WithLabelValues(h.name).Inc()
			d.log.Warn("dispatcher: handler failed; retrying the event", append(helpdeskflow.EventLogAttrs(e), "handler", h.name,
				"attempt", attempt, "backoff", backoff, helpdeskflow.LogError, err)...)
			failed = append(failed, h)
		}
		if len(failed) == 0 {
			return nil
		}
		pending = failed
		if err := kafka.Sleep(ctx, interrupt, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, d.cfg.MaxRetryBackoff)
	}
}

// call runs one handler, timing it and turning a panic into an error so
// that one faulty handler cannot take down a process that runs every role.
func (d *Dispatcher) call(ctx context.Context, h namedHandler, e helpdeskflow.Event) error {
	start := time.Now()
	defer func() { d.m.duration.WithLabelValues(h.name).Observe(time.Since(start).Seconds()) }()
	return safely(h.name, func() error { return h.handle(ctx, e) })
}

// safely runs fn, a call of handler name, turning a panic into an error.
func safely(name string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler %s panicked: %v\n%s", name, p, debug.Stack())
		}
	}()
	return fn()
}

// retryHandler calls fn, the step what ("begin", "commit") of handler
// name's batch, until it succeeds (nil), or ctx is cancelled or interrupt is
// closed (an error), counting and logging each failure as the handler's.
func (d *Dispatcher) retryHandler(ctx context.Context, interrupt <-chan struct{}, name, what string, fn func() error) error {
	return kafka.Retry(ctx, interrupt, kafka.Backoff{First: d.cfg.RetryBackoff, Max: d.cfg.MaxRetryBackoff},
		func() error { return safely(name, fn) },
		func(attempt int, wait time.Duration, err error) {
			d.m.errors.WithLabelValues(name).Inc()
			d.log.Warn("dispatcher: handler "+what+" failed; retrying", "handler", name, "attempt", attempt, "backoff", wait, "err", err)
		})
}

// retry calls fn until it succeeds (nil), or ctx is cancelled or interrupt
// is closed (an error), counting and logging each failure as kind.
func (d *Dispatcher) retry(ctx context.Context, interrupt <-chan struct{}, kind string, fn func() error) error {
	return kafka.Retry(ctx, interrupt, kafka.Backoff{First: d.cfg.RetryBackoff, Max: d.cfg.MaxRetryBackoff}, fn,
		func(attempt int, wait time.Duration, err error) {
			d.m.internalErrors.WithLabelValues(kind).Inc()
			d.log.Error("dispatcher: "+kind+" failed; retrying", "attempt", attempt, "backoff", wait, "err", err)
		})
}
