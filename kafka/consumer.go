package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
)

// Record is a Kafka record as the consumer loop hands it to a Batch and as
// producers take it (franz-go's kgo.Record).
type Record = kgo.Record

// RecordHeader is a header of a Record (franz-go's kgo.RecordHeader).
type RecordHeader = kgo.RecordHeader

// Option is an extra franz-go client option (TLS, SASL, client id, fetch
// tuning in tests): kgo.Opt.
type Option = kgo.Opt

// Batch is what a Consumer's user does with records: the records polled
// since the last commit, and the work done on them so far. The Consumer
// makes one with ConsumerConfig.NewBatch when a poll brings the first
// record after a commit, Adds every record it polls after that, and calls
// Flush when the batch is full, old or a rebalance waits, and once more when
// it stops. It commits offsets only after Flush reports records done.
//
// A Batch is used by one goroutine (the Consumer's Run) and lives until its
// records are all done (committed) or given back (rewound for a rebalance,
// or left uncommitted when the Consumer stops).
type Batch interface {
	// Add takes the next polled record. Records of one partition come in
	// offset order; Add must not block on anything outside memory.
	Add(r *Record)
	// Flush makes the effects of the batch's records durable, in the order
	// they were added, and returns how many of them, from the first, are
	// done. It returns a nil error only when all of them are (done is then
	// ignored). A non-nil error leaves the batch as it is: the Consumer
	// calls Flush again with the same batch, which must go on where it
	// stopped (not redo what is done), after RetryBackoff, unless ctx ended
	// or a rebalance waits.
	//
	// rebalance is closed while a group rebalance waits for the batch
	// (nil when final): a Flush that can give records back returns early,
	// with what it made durable counted in done; the Consumer commits those,
	// rewinds the rest and lets the rebalance through. A Flush that cannot
	// give records back ignores it and holds the rebalance until it is
	// done.
	//
	// final is true for the one call after the Consumer's context ended,
	// with a context bounded by ShutdownTimeout: make durable what can be,
	// and report it in done; records not done are left uncommitted for the
	// next member of the group.
	Flush(ctx context.Context, rebalance <-chan struct{}, final bool) (done int, err error)
}

// ConsumerConfig configures a Consumer. Every field is required except
// MaxBatchBytes, FlushInterval, Membership, OnPartitionsGone, Watermarks and
// Options; the
// Consumer's users validate their own configuration and fill this one.
type ConsumerConfig struct {
	// Name names the consumer in logs and errors ("projector",
	// "dispatcher"). Its log component is Name with dashes for spaces,
	// and the Kafka client's that followed by "-kafka".
	Name string
	// Brokers are the seed brokers, Group the consumer group, Topic the
	// one topic consumed. A group without committed offsets starts at the
	// start of the topic unless Options say otherwise.
	Brokers []string
	Group   string
	Topic   string
	// BatchSize is the most records in a batch.
	BatchSize int
	// MaxBatchBytes flushes a batch once its record values total this many
	// bytes. Zero: no byte bound.
	MaxBatchBytes int
	// FlushInterval is the longest the first record of a batch waits for
	// more before the batch is flushed. Zero: every poll's records are
	// flushed at once.
	FlushInterval time.Duration
	// RetryBackoff and MaxRetryBackoff are the waits between calls of a
	// Flush that keeps failing (doubling from the first to the second).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// ShutdownTimeout bounds the final flush and commit once Run's context
	// ends, and separately the group leave.
	ShutdownTimeout time.Duration
	// NewBatch starts a batch (see Batch).
	NewBatch func() Batch
	// Logger receives the consumer's logs and, quietened (NewLogger), the
	// Kafka client's.
	Logger *slog.Logger
	// Errors counts the consumer's failures by kind (NewErrorCounter): the
	// Consumer counts ErrKindFetch (the client reported a fetch error) and
	// ErrKindCommit (an offset commit failed).
	Errors *prometheus.CounterVec
	// Lag is the consumer-lag gauge (NewLagGauge; labels topic, partition;
	// see LagTracker).
	Lag *prometheus.GaugeVec
	// OnPartitionsGone, if set, is called when partitions are revoked or
	// lost, on the client's goroutines, and once more when Run ends.
	OnPartitionsGone func()
	// Watermarks, if set, gives the relay's watermark records (see
	// NewWatermarks) to the Batch like any other record. Unset (the
	// default), the loop keeps them from the Batch: their offsets are
	// committed with the batch they were polled in, and a poll that brings
	// nothing else makes no Batch and calls no Flush.
	Watermarks bool
	// Membership is how the Consumer is a member of Group: static with an
	// instance id, its session timeout, heartbeat interval and rebalance
	// timeout. The zero value is dynamic membership with the defaults
	// (see Membership).
	Membership Membership
	// Options are extra franz-go client options, applied after the
	// Consumer's own, so they can override them.
	Options []Option
}

// ErrNotCommitted is the cause of Run's error when the Consumer stopped with
// polled records whose flush or offset commit did not succeed in time.
var ErrNotCommitted = errors.New("records polled but not committed")

// Consumer is the one consume loop of a consumer group member: it polls,
// batches by count, bytes and time, flushes through a Batch, commits after
// the flush, handles rebalances and leaves the group when it stops. It is
// at least once: offsets are committed only for records a Flush reported
// done.
//
// Group rebalances are held back while records are polled but not yet
// committed (franz-go's BlockRebalanceOnPoll); a waiting rebalance makes
// the Consumer flush at once, and is let through after the commit, so a
// member flushes before it gives partitions up. The lag gauge is kept per
// owned partition (high watermark minus committed offset) and its series
// are dropped when a partition is revoked or lost.
//
// A Consumer runs once: create it with NewConsumer and call Run from one
// goroutine.
type Consumer struct {
	cfg       ConsumerConfig
	log       *slog.Logger
	lag       *LagTracker // also used by the rebalance callbacks, on the client's goroutines
	rebalance *signal     // raised while a rebalance waits for the batch in flight
	running   atomic.Bool
}

// NewConsumer returns a Consumer for cfg. It does not connect to anything.
func NewConsumer(cfg ConsumerConfig) *Consumer {
	component := strings.ReplaceAll(cfg.Name, " ", "-")
	return &Consumer{
		cfg:       cfg,
		log:       cfg.Logger.With("component", component, "group", cfg.Group, "topic", cfg.Topic),
		lag:       NewLagTracker(cfg.Topic, cfg.Lag),
		rebalance: newSignal(),
	}
}

// pending is a batch and what the loop knows of it: every record polled
// since the last commit, and which of them the Batch was given (the
// Batch is nil until it is given one).
type pending struct {
	Batch
	records []*Record
	added   []int // indexes in records of the records given to Batch
	bytes   int   // of the records' values, for MaxBatchBytes
	started time.Time
}

// add notes the polled record r and gives it to the batch, which it
// makes on the first one, unless r is a watermark the Batch is not to see.
func (b *pending) add(c *Consumer, r *Record) {
	b.records = append(b.records, r)
	if !c.cfg.Watermarks && IsWatermark(r) {
		return
	}
	if b.Batch == nil {
		b.Batch = c.cfg.NewBatch()
	}
	b.added = append(b.added, len(b.records)-1)
	b.bytes += len(r.Value)
	b.Add(r)
}

// flush is Batch.Flush in terms of the polled records: done counts the
// records, from the first, whose offsets may be committed (all of them
// once the Batch has done all it was given). A pending without a Batch
// holds only watermarks, all done at once.
func (b *pending) flush(ctx context.Context, rebalance <-chan struct{}, final bool) (int, error) {
	if b.Batch == nil {
		return len(b.records), nil
	}
	done, err := b.Flush(ctx, rebalance, final)
	if err == nil || done >= len(b.added) {
		return len(b.records), err
	}
	return b.added[max(done, 0)], err
}

// Run joins the group and consumes until ctx ends, then flushes and commits
// what it holds (within ShutdownTimeout), leaves the group (within another
// ShutdownTimeout, after which it closes without a clean leave) and closes
// its client. A static member (Membership.InstanceID) does not leave: its
// partitions wait for its restart, or its session timeout.
//
// A Flush that fails is retried with backoff (RetryBackoff doubling up to
// MaxRetryBackoff); nothing is committed meanwhile, so consumption stalls
// rather than skips. An offset commit that fails is logged and counted; the
// next commit covers its offsets.
//
// Run returns nil when everything polled was flushed and committed, an
// error wrapping ErrNotCommitted when not (those records go to the next
// member), EInternal if called a second time, and EValidation if the Kafka
// client rejects the options.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: c.cfg.Name + ": Run may be called only once"}
	}
	// The client's own context is cancelled only when a graceful group
	// leave does not finish in time (see shutdown): it interrupts a join
	// that another member is holding up, so Close cannot hang.
	clientCtx, abortClient := context.WithCancel(context.WithoutCancel(ctx))
	defer abortClient()
	gone := func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { c.forget(lost[c.cfg.Topic]) }
	opts := append(append([]kgo.Opt{
		kgo.WithContext(clientCtx),
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(c.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { c.rebalance.raise() }),
		kgo.OnPartitionsRevoked(gone),
		kgo.OnPartitionsLost(gone),
		kgo.WithLogger(NewLogger(c.cfg.Logger.With("component", strings.ReplaceAll(c.cfg.Name, " ", "-")+"-kafka"))),
	}, c.cfg.Membership.options()...), c.cfg.Options...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: c.cfg.Name + ": create Kafka client", Err: err}
	}
	c.log.Info(c.cfg.Name+" started", "brokers", c.cfg.Brokers, "batch_size", c.cfg.BatchSize, "flush_interval", c.cfg.FlushInterval,
		"instance_id", c.cfg.Membership.InstanceID)

	var b *pending
	for ctx.Err() == nil {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		limit := c.cfg.BatchSize
		if b != nil {
			pollCtx, cancel = context.WithDeadline(ctx, b.started.Add(c.cfg.FlushInterval))
			limit -= len(b.records)
			// A rebalance that waits for the batch ends the poll: the
			// batch is flushed at once, not when it is due.
			go func(pollCtx context.Context, cancel context.CancelFunc, rebalance <-chan struct{}) {
				select {
				case <-rebalance:
					cancel()
				case <-pollCtx.Done():
				}
			}(pollCtx, cancel, c.rebalance.wait())
		}
		fetches := cl.PollRecords(pollCtx, limit)
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		c.noteFetches(fetches)
		fetches.EachRecord(func(r *kgo.Record) {
			if b == nil {
				b = &pending{started: time.Now()}
			}
			b.add(c, r)
		})
		c.lag.Update(cl)
		if b == nil {
			c.allowRebalance(cl)
			continue
		}
		if !c.due(b) {
			continue
		}
		if !c.flush(ctx, cl, b) {
			break // ctx ended; the shutdown flushes the same batch
		}
		b = nil
		c.allowRebalance(cl)
	}
	return c.shutdown(ctx, cl, abortClient, b)
}

// due reports whether b is to be flushed now: it is full (records or
// bytes), its first record waited FlushInterval, or a rebalance waits.
func (c *Consumer) due(b *pending) bool {
	return len(b.records) >= c.cfg.BatchSize ||
		(c.cfg.MaxBatchBytes > 0 && b.bytes >= c.cfg.MaxBatchBytes) ||
		time.Since(b.started) >= c.cfg.FlushInterval ||
		c.rebalance.raised()
}

// flush flushes b until all its records are done and commits them, or
// until a waiting rebalance takes the records not done back (those done are
// committed, the rest rewound). It reports false when ctx ended first,
// leaving b to the shutdown.
func (c *Consumer) flush(ctx context.Context, cl *kgo.Client, b *pending) bool {
	backoff := c.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		done, err := b.flush(ctx, c.rebalance.wait(), false)
		if err == nil {
			// The commit is short and should not be lost to a shutdown
			// that starts meanwhile, so it does not take ctx's
			// cancellation.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
			defer cancel()
			if err := c.commit(cctx, cl, b.records, len(b.records)); err != nil {
				// The effects are durable; the next commit covers these
				// offsets too, and a redelivery in between is a duplicate.
				c.log.Warn(c.cfg.Name+": offset commit failed; will commit with the next batch", "err", err)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if c.rebalance.raised() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
			defer cancel()
			if err := c.commit(cctx, cl, b.records, done); err != nil {
				c.log.Warn(c.cfg.Name+": offset commit failed", "err", err)
			}
			c.rewind(cl, b.records[done:])
			return true
		}
		c.log.Error(c.cfg.Name+": flush failed; batch kept, retrying", "attempt", attempt, "backoff", backoff, "err", err)
		if Sleep(ctx, c.rebalance.wait(), backoff) != nil && ctx.Err() != nil {
			return false
		}
		backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
	}
}

// commit commits the offsets of records[:done]: every record polled when
// done is all of them (which also retries an earlier commit that failed),
// else those records only. It updates the lag and returns EUnavailable
// when the commit fails.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, records []*Record, done int) error {
	var err error
	switch {
	case done == len(records):
		err = cl.CommitUncommittedOffsets(ctx)
	case done > 0:
		err = cl.CommitRecords(ctx, records[:done]...)
	}
	if err != nil {
		c.cfg.Errors.WithLabelValues(ErrKindCommit).Inc()
		err = &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "commit " + c.cfg.Name + " offsets", Err: err}
	}
	c.lag.Update(cl)
	return err
}

// rewind sets the fetch position of each partition in records to its first
// record there, so they are polled again. It must run before
// AllowRebalance, while the partitions are surely still ours.
func (c *Consumer) rewind(cl *kgo.Client, records []*Record) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range records {
		if offsets[r.Topic] == nil {
			offsets[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		if _, ok := offsets[r.Topic][r.Partition]; !ok {
			offsets[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
			c.log.Info(c.cfg.Name+": batch interrupted; partition rewound", "partition", r.Partition, "offset", r.Offset)
		}
	}
	cl.SetOffsets(offsets)
}

// allowRebalance ends a batch: a rebalance wanted until now is let through.
func (c *Consumer) allowRebalance(cl *kgo.Client) {
	c.rebalance.reset()
	cl.AllowRebalance()
}

func (c *Consumer) shutdown(ctx context.Context, cl *kgo.Client, abortClient context.CancelFunc, b *pending) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Without a batch this retries a commit that failed after an earlier
	// flush; after a failed flush only what it reported done is committed.
	var records []*Record
	done := 0
	if b != nil {
		records = b.records
		var err error
		if done, err = b.flush(sctx, nil, true); err != nil {
			errs = append(errs, err)
		} else {
			done = len(records)
		}
	}
	if err := c.commit(sctx, cl, records, done); err != nil {
		errs = append(errs, err)
	}
	cl.AllowRebalance()
	// Leaving gets its own time budget: a final flush that used up
	// ShutdownTimeout must not keep the member in the group until its
	// session times out, stalling the partitions for everyone else. For a
	// static member franz-go sends no LeaveGroup (see Membership): this
	// only stops its group management.
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer lcancel()
	if err := cl.LeaveGroupContext(lctx); err != nil {
		c.log.Warn(c.cfg.Name+": leaving the group did not finish in time; closing anyway", "err", err)
		abortClient()
	}
	cl.Close()
	c.forget(c.lag.Partitions())
	if len(errs) > 0 {
		return errors.Join(append([]error{ErrNotCommitted}, errs...)...)
	}
	return nil
}

// noteFetches counts and logs the fetch errors of a poll (not those of a
// cancellation or a closed client) and notes its partitions' watermarks for
// the lag gauge.
func (c *Consumer) noteFetches(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		c.cfg.Errors.WithLabelValues(ErrKindFetch).Inc()
		c.log.Warn(c.cfg.Name+": fetch error", "fetch_topic", topic, "partition", partition, "err", err)
	})
	c.lag.Note(fetches)
}

// forget drops the lag series of partitions this member no longer
// consumes, so another member's gauge is the only one left, and tells the
// user (OnPartitionsGone).
func (c *Consumer) forget(partitions []int32) {
	c.lag.Forget(partitions)
	if len(partitions) > 0 && c.cfg.OnPartitionsGone != nil {
		c.cfg.OnPartitionsGone()
	}
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

func (s *signal) raised() bool {
	select {
	case <-s.wait():
		return true
	default:
		return false
	}
}
