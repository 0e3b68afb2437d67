// Package recordlog publishes best-effort record logs to Kafka, off the hot
// path of whoever logs: the API request log (one helpdeskflow.APIRequest per
// request, authenticated or not, on helpdeskflow.api-requests; Log) and the
// service facts (webhook delivery attempts and mailbox sync runs on
// helpdeskflow.service-facts; RecordWebhookAttempt, RecordMailSync). The
// projections package's RequestLogProjector and FactsProjector write them to
// ClickHouse.
//
// A Logger owns its own Kafka client, so its buffer is independent of the
// event relay's: a burst of records never delays events, and a full
// buffer never blocks anything. The buffer is bounded; when it is
// full, or a record cannot be delivered at all, the record is dropped and
// counted in helpdeskflow_<Name>_dropped_total{reason}
// (helpdeskflow_request_log_dropped_total for the request log).
//
// Its Kafka client comes from package kafka (NewProducer); callers see only
// *helpdeskflow.Error values.
package recordlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// Defaults of Config.
const (
	// DefaultMaxBuffered is the most records a Logger holds that the broker
	// has not acknowledged yet. A record is about 0.7 KiB in memory (a JSON
	// value of 350-450 bytes plus the franz-go record around it; measured:
	// 100,000 buffered records took 67 MiB of heap), so the default bounds
	// the buffer near 70 MiB; at 2,000 requests/s it covers a broker outage
	// of about 50 s.
	DefaultMaxBuffered = 100_000
	// DefaultMaxBufferedBytesPerRecord times MaxBuffered is the default
	// MaxBufferedBytes. Typical records are well under it, so the record
	// count binds first; the byte bound only bites when clients send huge
	// paths or user agents.
	DefaultMaxBufferedBytesPerRecord = 1024
	// WarnInterval is the shortest time between two warnings about dropped
	// records; the warning counts the drops since the previous one.
	WarnInterval = 10 * time.Second
)

// Reasons of helpdeskflow_request_log_dropped_total.
const (
	// DropBufferFull: MaxBuffered records (or MaxBufferedBytes) were
	// waiting for the broker already.
	DropBufferFull = "buffer_full"
	// DropClosed: Log was called after Close, or Close gave up on the
	// record when its context ended.
	DropClosed = "closed"
	// DropProduceFailed: the broker or the client failed the record for
	// good (for example the topic does not exist, or the record is larger
	// than the broker accepts).
	DropProduceFailed = "produce_failed"
)

// Config configures a Logger. Zero fields take the defaults named on each;
// Brokers is required.
type Config struct {
	// Brokers are the Kafka seed brokers ("host:port"). Required.
	Brokers []string
	// Name names the log in its metrics (helpdeskflow_<Name>_queue_depth,
	// _records_total, _dropped_total) and warnings. Default NameRequestLog
	// ("request_log"); the service facts' is NameServiceFacts.
	Name string
	// Topic is where records go. Default kafka.TopicAPIRequests. The
	// Logger does not create it; the wiring does (and the client fails
	// records for a topic that still does not exist after a few metadata
	// refreshes, counting them as produce_failed).
	Topic string
	// MaxBuffered is the most records held in memory that the broker has
	// not acknowledged: while the broker is unreachable, records wait (they
	// are retried without limit and without a delivery timeout) and go out
	// when it is back; once MaxBuffered are waiting, further records are
	// dropped. Memory is about MaxBuffered × 0.7 KiB. Default
	// DefaultMaxBuffered (100,000).
	MaxBuffered int
	// MaxBufferedBytes bounds the keys and values of the records held, as a
	// second limit next to MaxBuffered. Default MaxBuffered ×
	// DefaultMaxBufferedBytesPerRecord (100 MiB with the default
	// MaxBuffered).
	MaxBufferedBytes int
	// Logger receives the warnings about dropped records (at most one per
	// WarnInterval) and the Kafka client's warnings. Default: discarded.
	Logger *slog.Logger
	// Registerer is where the Logger registers its metrics. Metrics already
	// registered by an earlier Logger are shared. Default: the metrics are
	// kept but not registered anywhere.
	Registerer prometheus.Registerer
	// KafkaOptions are extra franz-go client options (TLS, SASL, client id,
	// a logger at debug level in tests, …), applied after the Logger's own.
	KafkaOptions []kafka.Option
}

// Names of the two logs (Config.Name).
const (
	NameRequestLog   = "request_log"
	NameServiceFacts = "service_facts"
)

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = NameRequestLog
	}
	if c.Topic == "" {
		c.Topic = kafka.TopicAPIRequests
	}
	if c.MaxBuffered == 0 {
		c.MaxBuffered = DefaultMaxBuffered
	}
	if c.MaxBufferedBytes == 0 && c.MaxBuffered > 0 {
		c.MaxBufferedBytes = c.MaxBuffered * DefaultMaxBufferedBytesPerRecord
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of c at once, joined with errors.Join, or
// nil. It checks c as given: New fills the defaults before it validates.
func (c Config) Validate() error {
	errs := kafka.CheckBrokers(c.Brokers)
	if !validName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name: must be lower-case letters and underscores, got %q", c.Name))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if c.MaxBuffered <= 0 {
		errs = append(errs, fmt.Errorf("max buffered: must be positive, got %d", c.MaxBuffered))
	}
	if c.MaxBufferedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max buffered bytes: must be positive, got %d", c.MaxBufferedBytes))
	}
	return errors.Join(errs...)
}

// validName is what a Config.Name may be: it goes into metric names.
var validName = regexp.MustCompile(`^[a-z][a-z_]*$`)

// Logger publishes records to Kafka without ever blocking or failing the
// caller that logs them (an API request, a webhook attempt, a sync run).
//
// Log is safe for concurrent use by any number of goroutines, and so is
// Close (which runs once; later calls wait for it and return its result).
// Log and the Record methods may be called after Close: the record is
// dropped and counted.
//
// Trade-off: records are buffered in memory, not on disk. A broker outage
// shorter than MaxBuffered records' worth of traffic loses nothing; a longer
// one drops the newest records (counted, reason buffer_full) rather than
// slowing the API down or growing without bound. A crash of the process
// loses what was buffered.
type Logger struct {
	cfg    Config
	noun   string // Name with spaces, for messages
	log    *slog.Logger
	client *kafka.Client
	m      *metrics

	// pending and pendingBytes count the records accepted by Log whose
	// promise has not run yet. They are checked before TryProduce, so a
	// full buffer costs an atomic add instead of a JSON encoding and
	// franz-go's failure path.
	pending      atomic.Int64
	pendingBytes atomic.Int64
	// producing counts Log calls between their second closed check and the
	// end of TryProduce: Close waits for it to reach zero before it closes
	// the client, so no record is handed to a closed client.
	producing atomic.Int64
	closed    atomic.Bool

	closeOnce sync.Once
	closeErr  error
	// closeDrops counts the records failed because of Close.
	closeDrops atomic.Int64

	nextWarn         atomic.Int64 // unix nanoseconds
	droppedSinceWarn atomic.Int64
}

// New fills cfg's defaults, validates it, registers the Logger's metrics on
// cfg.Registerer and creates its Kafka client. It does not wait for the
// broker: records logged before it is reachable wait in the buffer.
//
// It returns an EValidation error listing every configuration problem (or
// when franz-go rejects KafkaOptions), and EInternal when a metric cannot be
// registered because a different collector already uses its name.
func New(cfg Config) (*Logger, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid request log configuration", Err: err}
	}
	noun := strings.ReplaceAll(cfg.Name, "_", " ")
	m, err := newMetrics(cfg.Registerer, cfg.Name, noun)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register " + noun + " metrics", Err: err}
	}
	client, err := kafka.NewProducer(kafka.ProducerConfig{
		Brokers:          cfg.Brokers,
		DefaultTopic:     cfg.Topic,
		MaxBuffered:      cfg.MaxBuffered,
		MaxBufferedBytes: cfg.MaxBufferedBytes,
		Logger:           cfg.Logger.With("component", strings.ReplaceAll(cfg.Name, "_", "-")+"-kafka"),
		Options:          cfg.KafkaOptions,
	})
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: noun + ": create Kafka client", Err: err}
	}
	return &Logger{
		cfg:    cfg,
		noun:   noun,
		log:    cfg.Logger.With("component", strings.ReplaceAll(cfg.Name, "_", "-"), "topic", cfg.Topic),
		client: client,
		m:      m,
	}, nil
}

// Log hands r to the Kafka client and returns at once: it never waits for
// the broker or for buffer space, and it has no error to return. The record
// is keyed by r.RequestID, its value is the JSON encoding of r (the path,
// user agent and method a client sent cut to 2 KiB, 512 and 32 bytes, so a
// record is never too large for the broker) and its timestamp r.Time. When the buffer is full or the Logger is closed, r is
// dropped and counted instead.
func (l *Logger) Log(r helpdeskflow.APIRequest) {
	r = bounded(r)
	l.publish([]byte(r.RequestID), r.Time, nil, func() ([]byte, error) { return json.Marshal(r) })
}

// publish hands a record to the Kafka client unless the Logger is closed
// or its buffer full (then it counts the drop). encode makes the value; it
// runs only when the record has room, so a full buffer costs no encoding.
func (l *Logger) publish(key []byte, ts time.Time, headers []kafka.RecordHeader, encode func() ([]byte, error)) {
	if l.closed.Load() {
		l.dropped(DropClosed, nil)
		return
	}
	// Checked again after announcing the call, so that either Close sees
	// it in producing or it sees closed; the first check keeps calls made
	// after Close out of producing, so Close's wait cannot be starved.
	l.producing.Add(1)
	defer l.producing.Add(-1)
	if l.closed.Load() {
		l.dropped(DropClosed, nil)
		return
	}
	if l.pending.Add(1) > int64(l.cfg.MaxBuffered) {
		l.pending.Add(-1)
		l.dropped(DropBufferFull, nil)
		return
	}
	value, err := encode()
	if err != nil {
		// Only a time outside years 0-9999 fails to encode.
		l.pending.Add(-1)
		l.dropped(DropProduceFailed, err)
		return
	}
	rec := &kafka.Record{Key: key, Value: value, Timestamp: ts, Headers: headers}
	size := int64(len(rec.Key) + len(rec.Value))
	if l.pendingBytes.Add(size) > int64(l.cfg.MaxBufferedBytes) {
		l.pendingBytes.Add(-size)
		l.pending.Add(-1)
		l.dropped(DropBufferFull, nil)
		return
	}
	l.m.depth.Inc()
	l.client.TryProduce(context.Background(), rec, l.delivered)
}

// Longest values of a record's client-controlled fields, in bytes: longer
// ones are cut (at a character boundary), so every record is small and the
// broker never refuses one whatever a client sends.
const (
	maxPathBytes      = 2048
	maxUserAgentBytes = 512
	maxMethodBytes    = 32
)

// bounded is r with its client-controlled fields cut to their limits.
func bounded(r helpdeskflow.APIRequest) helpdeskflow.APIRequest {
	r.Path = helpdeskflow.CutUTF8(r.Path, maxPathBytes)
	r.UserAgent = helpdeskflow.CutUTF8(r.UserAgent, maxUserAgentBytes)
	r.Method = helpdeskflow.CutUTF8(r.Method, maxMethodBytes)
	return r
}

// delivered is the promise of every record: franz-go calls it once per
// record, serially, on its own goroutine, when the broker acknowledged the
// record or the record failed for good.
func (l *Logger) delivered(rec *kafka.Record, err error) {
	l.pending.Add(-1)
	l.pendingBytes.Add(-int64(len(rec.Key) + len(rec.Value)))
	l.m.depth.Dec()
	if err == nil {
		l.m.records.Inc()
		return
	}
	switch {
	case errors.Is(err, kafka.ErrMaxBuffered):
		// franz-go's own count lags ours by the promises in progress.
		l.dropped(DropBufferFull, err)
	case errors.Is(err, kafka.ErrClientClosed), errors.Is(err, kafka.ErrAborting):
		l.closeDrops.Add(1)
		l.dropped(DropClosed, err)
	default:
		l.dropped(DropProduceFailed, err)
	}
}

// dropped counts a dropped record and warns about it, at most once per
// WarnInterval.
func (l *Logger) dropped(reason string, err error) {
	l.m.drops[reason].Inc()
	n := l.droppedSinceWarn.Add(1)
	now := time.Now().UnixNano()
	next := l.nextWarn.Load()
	if now < next || !l.nextWarn.CompareAndSwap(next, now+int64(WarnInterval)) {
		return
	}
	l.droppedSinceWarn.Add(-n)
	attrs := []any{"reason", reason, "dropped_since_last_warning", n, "queue_depth", l.pending.Load()}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	l.log.Warn(l.noun+": records dropped (counted in helpdeskflow_"+l.cfg.Name+"_dropped_total); more drops are summarised every "+WarnInterval.String(), attrs...)
}

// QueueDepth returns the number of records accepted by Log that the broker
// has not acknowledged yet (and that have not failed): the value of
// helpdeskflow_<Name>_queue_depth for this Logger.
func (l *Logger) QueueDepth() int {
	return int(l.pending.Load())
}

// Close stops accepting records, waits until every buffered record is
// acknowledged or ctx ends, and closes the Kafka client. Records still
// buffered when ctx ends are dropped and counted (reason closed); with the
// broker down, a ctx without deadline makes Close wait until the broker is
// back, so give it one. Close returns nil when everything was delivered, and
// an EUnavailable error saying how many records were dropped otherwise.
// Calling it again returns the first call's result.
func (l *Logger) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { l.closeErr = l.close(ctx) })
	return l.closeErr
}

func (l *Logger) close(ctx context.Context) error {
	l.closed.Store(true)
	// A Log call that passed its closed check before the Store is about to
	// hand its record over; TryProduce does not wait for the broker, so
	// this is a matter of microseconds.
	for l.producing.Load() > 0 {
		time.Sleep(50 * time.Microsecond)
	}
	flushErr := l.client.Flush(ctx)
	// Close fails whatever is still buffered with ErrClientClosed.
	l.client.Close()
	// Those failures reach the promise on franz-go's goroutine; wait for
	// them so that the counters are final when Close returns.
	settle := time.Now().Add(5 * time.Second)
	for l.pending.Load() > 0 && time.Now().Before(settle) {
		time.Sleep(time.Millisecond)
	}
	lost := l.closeDrops.Load() + l.pending.Load()
	if lost == 0 {
		return nil
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable,
		Message: fmt.Sprintf("%s closed with %d records not delivered", l.noun, lost), Err: flushErr}
}

type metrics struct {
	depth   prometheus.Gauge
	records prometheus.Counter
	drops   map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, name, noun string) (*metrics, error) {
	noun = strings.ToUpper(noun[:1]) + noun[1:]
	depth := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "helpdeskflow_" + name + "_queue_depth",
		Help: noun + " records accepted but not yet acknowledged by Kafka (nor dropped).",
	})
	records := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "helpdeskflow_" + name + "_records_total",
		Help: noun + " records acknowledged by Kafka.",
	})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helpdeskflow_" + name + "_dropped_total",
		Help: noun + " records dropped, by reason (buffer_full, closed, produce_failed).",
	}, []string{"reason"})
	var err error
	if reg != nil {
		depth = metricreg.Register(reg, depth, &err)
		records = metricreg.Register(reg, records, &err)
		drops = metricreg.Register(reg, drops, &err)
	}
	m := &metrics{depth: depth, records: records, drops: map[string]prometheus.Counter{}}
	for _, reason := range []string{DropBufferFull, DropClosed, DropProduceFailed} {
		m.drops[reason] = drops.WithLabelValues(reason)
	}
	return m, err
}
