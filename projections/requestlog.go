package projections

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// Defaults of RequestLogConfig that differ from Config's: the consumer group,
// and larger, less frequent batches (request log rows are small and many,
// and nobody waits for one in particular).
const (
	DefaultRequestLogGroup         = "helpdeskflow-request-log"
	DefaultRequestLogBatchSize     = 5000
	DefaultRequestLogFlushInterval = time.Second
)

// RequestLogConfig configures a RequestLogProjector. It has the
// Projector's settings and rules (CacheSize and MaxBatchBytes are not used), with other
// defaults: Group DefaultRequestLogGroup, Topic kafka.TopicAPIRequests,
// BatchSize DefaultRequestLogBatchSize (5000) and FlushInterval
// DefaultRequestLogFlushInterval (1 s).
type RequestLogConfig = Config

// requestLogDefaults are the RequestLogProjector's consumerDefaults.
var requestLogDefaults = consumerDefaults{DefaultRequestLogGroup, kafka.TopicAPIRequests, DefaultRequestLogBatchSize, DefaultRequestLogFlushInterval}

// RequestLogProjector consumes helpdeskflow.api-requests and writes one row
// per record to the api_requests table. It is at least once and idempotent:
// offsets are committed only after every record up to them is in
// ClickHouse, and a redelivered record has the same sorting key as the row
// it already wrote, so the two collapse under FINAL. Several projectors in
// the same group share the partitions.
//
// A RequestLogProjector runs once: create it with NewRequestLogProjector,
// call Run from one goroutine. Its metrics may be scraped concurrently.
type RequestLogProjector struct {
	consumer
	cfg RequestLogConfig
	m   *recordProjectorMetrics
}

// NewRequestLogProjector fills cfg's defaults, validates it and registers
// the projector's metrics on cfg.Registerer. It does not connect to
// anything. It returns an EValidation error listing every configuration
// problem, and an EInternal error when a metric cannot be registered (a
// different collector already uses its name; the metrics of an earlier
// RequestLogProjector are reused).
func NewRequestLogProjector(cfg RequestLogConfig) (*RequestLogProjector, error) {
	cfg.setDefaults(requestLogDefaults)
	if err := cfg.Validate(); err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid request log projector configuration", Err: err}
	}
	m, err := newRecordProjectorMetrics(cfg.Registerer, "request_log", "Request log", "api_requests")
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register request log projector metrics", Err: err}
	}
	p := &RequestLogProjector{cfg: cfg, m: m}
	// No byte bound: request log records are small, BatchSize bounds
	// the memory of a batch.
	p.consumer = newConsumer("request log projector", cfg, 0, m.errors, m.lag,
		func() kafka.Batch { return &requestLogBatch{p: p} }, nil, false)
	return p, nil
}

// Run joins the consumer group and writes request log records to
// api_requests until ctx is cancelled.
//
// Lifecycle: Run polls records, keeps them in memory and inserts them when
// BatchSize records are waiting or the oldest has waited FlushInterval;
// after the insert succeeds it commits the offsets. Group rebalances are
// held back while records are polled but not yet committed, and a pending
// rebalance makes the projector flush early. A failed insert is logged,
// counted and retried with exponential backoff; the batch is kept and
// nothing is committed meanwhile, so consumption stalls rather than skips.
// A record whose value is not a JSON helpdeskflow.APIRequest with a
// request id is logged, counted (errors_total{kind="decode"}) and skipped.
//
// When ctx is cancelled Run inserts what it holds and commits, within
// ShutdownTimeout, then leaves the group and closes its Kafka client, within
// another ShutdownTimeout, and returns nil. If the final insert or commit
// does not succeed in time, the uncommitted records are left for the next
// member of the group and Run returns an EUnavailable error. Run returns
// EInternal if called a second time, and EValidation if the Kafka client
// options are invalid. It never closes the ClickHouse connection.
func (p *RequestLogProjector) Run(ctx context.Context) error {
	return p.run(ctx, "request log projector stopped with records not written; their offsets are not committed")
}

// requestLogBatch is the records polled since the last commit: how many,
// and the rows of those that decoded.
type requestLogBatch struct {
	p      *RequestLogProjector
	polled int
	rows   []apiRequestRow
}

// Add counts a polled record and decodes it into a row (kafka.Batch).
func (b *requestLogBatch) Add(r *kafka.Record) {
	b.polled++
	if row, ok := b.p.decode(r); ok {
		b.rows = append(b.rows, row)
	}
}

// Flush inserts the batch's rows, retrying until they are written or ctx
// ends; it never gives records back for a rebalance (kafka.Batch).
func (b *requestLogBatch) Flush(ctx context.Context, _ <-chan struct{}, _ bool) (int, error) {
	if err := b.p.flush(ctx, b); err != nil {
		return 0, err
	}
	return b.polled, nil
}

// decode turns a record into a row, or counts and logs it as undecodable.
func (p *RequestLogProjector) decode(r *kafka.Record) (apiRequestRow, bool) {
	var req helpdeskflow.APIRequest
	err := json.Unmarshal(r.Value, &req)
	if err == nil && req.RequestID == "" {
		err = errors.New("no request_id")
	}
	if err != nil {
		p.m.errors.WithLabelValues(kafka.ErrKindDecode).Inc()
		p.log.Error("request log projector: record is not a JSON API request; skipped",
			"partition", r.Partition, "offset", r.Offset, "key", string(r.Key), "err", err)
		return apiRequestRow{}, false
	}
	if req.Time.IsZero() {
		req.Time = r.Timestamp
	}
	return apiRequestRowOf(&req), true
}

func (p *RequestLogProjector) flush(ctx context.Context, b *requestLogBatch) error {
	if len(b.rows) > 0 {
		err := p.retry(ctx, errKindInsert, func() error {
			start := time.Now()
			err := insertColumns(ctx, p.cfg.ClickHouse, "api_requests", apiRequestColumns, apiRequestColumnValues(b.rows))
			p.m.insertDuration.Observe(time.Since(start).Seconds())
			return err
		})
		if err != nil {
			return err
		}
	}
	p.m.batchSize.Observe(float64(b.polled))
	p.m.rows.Add(float64(len(b.rows)))
	p.log.Debug("request log projector flushed", "records", b.polled, "rows", len(b.rows))
	return nil
}

// apiRequestRow is one row of the api_requests table.
type apiRequestRow struct {
	Time              time.Time // whole seconds
	TimeMs            uint16    // the millisecond part of the request time
	RequestID         string
	WorkspaceID       uuid.UUID
	KeyID             uuid.UUID
	KeyPrefix         string
	Method            string
	Route             string
	Path              string
	Status            uint16
	LatencyUs         uint64
	ClientIP          string
	UserAgent         string
	ErrorCode         string
	RateLimitCategory string
}

const apiRequestColumns = "time, time_ms, request_id, workspace_id, key_id, key_prefix, method, route, path, " +
	"status, latency_us, client_ip, user_agent, error_code, rate_limit_category"

// apiRequestColumnValues is rows column by column, in apiRequestColumns'
// order.
func apiRequestColumnValues(rows []apiRequestRow) []any {
	return []any{
		column(rows, func(r *apiRequestRow) time.Time { return r.Time }),
		column(rows, func(r *apiRequestRow) uint16 { return r.TimeMs }),
		column(rows, func(r *apiRequestRow) string { return r.RequestID }),
		column(rows, func(r *apiRequestRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *apiRequestRow) uuid.UUID { return r.KeyID }),
		column(rows, func(r *apiRequestRow) string { return r.KeyPrefix }),
		column(rows, func(r *apiRequestRow) string { return r.Method }),
		column(rows, func(r *apiRequestRow) string { return r.Route }),
		column(rows, func(r *apiRequestRow) string { return r.Path }),
		column(rows, func(r *apiRequestRow) uint16 { return r.Status }),
		column(rows, func(r *apiRequestRow) uint64 { return r.LatencyUs }),
		column(rows, func(r *apiRequestRow) string { return r.ClientIP }),
		column(rows, func(r *apiRequestRow) string { return r.UserAgent }),
		column(rows, func(r *apiRequestRow) string { return r.ErrorCode }),
		column(rows, func(r *apiRequestRow) string { return r.RateLimitCategory }),
	}
}

func (r *apiRequestRow) scanDest() []any {
	return []any{&r.Time, &r.TimeMs, &r.RequestID, &r.WorkspaceID, &r.KeyID, &r.KeyPrefix, &r.Method, &r.Route, &r.Path,
		&r.Status, &r.LatencyUs, &r.ClientIP, &r.UserAgent, &r.ErrorCode, &r.RateLimitCategory}
}

// apiRequestRowOf converts a request log record to a row. Values a column
// cannot hold are clamped rather than failing the whole batch: a time
// outside DateTime's range (1970 to 2106), a status outside UInt16, a
// negative latency.
func apiRequestRowOf(req *helpdeskflow.APIRequest) apiRequestRow {
	ms := clampUnixMilli(req.Time)
	return apiRequestRow{
		Time:        time.Unix(ms/1000, 0).UTC(),
		TimeMs:      uint16(ms % 1000),
		RequestID:   req.RequestID,
		WorkspaceID: req.WorkspaceID, KeyID: req.KeyID, KeyPrefix: req.KeyPrefix,
		Method: req.Method, Route: req.Route, Path: req.Path,
		Status:    uint16(min(max(req.Status, 0), math.MaxUint16)),
		LatencyUs: uint64(max(req.Latency.Microseconds(), 0)),
		ClientIP:  req.ClientIP, UserAgent: req.UserAgent, ErrorCode: req.ErrorCode, RateLimitCategory: req.RateLimitCategory,
	}
}

// apiRequest returns the row as a request log record. Its time has
// millisecond precision and its latency microsecond precision.
func (r *apiRequestRow) apiRequest() helpdeskflow.APIRequest {
	return helpdeskflow.APIRequest{
		Time:      time.Unix(r.Time.Unix(), int64(r.TimeMs)*int64(time.Millisecond)).UTC(),
		RequestID: r.RequestID, WorkspaceID: r.WorkspaceID, KeyID: r.KeyID, KeyPrefix: r.KeyPrefix,
		Method: r.Method, Route: r.Route, Path: r.Path, Status: int(r.Status),
		Latency:  time.Duration(r.LatencyUs) * time.Microsecond,
		ClientIP: r.ClientIP, UserAgent: r.UserAgent, ErrorCode: r.ErrorCode, RateLimitCategory: r.RateLimitCategory,
	}
}

// recordProjectorMetrics are the metrics of a projector of records that are
// not events (the request log's, the service facts'):
// helpdeskflow_<name>_projector_batch_size, _insert_duration_seconds,
// _consumer_lag, _errors_total and _rows_total.
type recordProjectorMetrics struct {
	batchSize      prometheus.Histogram
	insertDuration prometheus.Histogram
	lag            *prometheus.GaugeVec
	errors         *prometheus.CounterVec
	rows           prometheus.Counter
}

// newRecordProjectorMetrics registers the metrics of the projector of the
// records name ("request_log"), called noun in help texts ("Request log"),
// that writes tables ("api_requests").
func newRecordProjectorMetrics(reg prometheus.Registerer, name, noun, tables string) (*recordProjectorMetrics, error) {
	var err error
	prefix := "helpdeskflow_" + name + "_projector_"
	lower := strings.ToLower(noun)
	m := &recordProjectorMetrics{
		batchSize: metricreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    prefix + "batch_size",
			Help:    "Records per ClickHouse flush of the " + lower + " projector.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		}), &err),
		insertDuration: metricreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    prefix + "insert_duration_seconds",
			Help:    "Duration of one ClickHouse insert into " + tables + ", failed ones included.",
			Buckets: prometheus.DefBuckets,
		}), &err),
		lag: metricreg.Register(reg, kafka.NewLagGauge(prefix+"consumer_lag",
			noun+" records of a partition not yet written and committed: high watermark minus committed offset."), &err),
		errors: metricreg.Register(reg, kafka.NewErrorCounter(prefix+"errors_total",
			noun+" projector errors by kind (fetch, decode, insert, commit).", errKindInsert), &err),
		rows: metricreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "rows_total",
			Help: "Rows the " + lower + " projector wrote to " + tables + " (redeliveries included).",
		}), &err),
	}
	return m, err
}
