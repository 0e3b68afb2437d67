package projections

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// Defaults of FactsConfig that differ from Config's: the consumer group,
// and larger, less frequent batches (facts are small, and nobody waits for
// one in particular).
const (
	DefaultFactsGroup         = "helpdeskflow-service-facts"
	DefaultFactsBatchSize     = 5000
	DefaultFactsFlushInterval = time.Second
)

// FactsConfig configures a FactsProjector. It has the Projector's settings
// and rules (CacheSize and MaxBatchBytes are not used), with other
// defaults: Group DefaultFactsGroup, Topic kafka.TopicServiceFacts,
// BatchSize DefaultFactsBatchSize (5000) and FlushInterval
// DefaultFactsFlushInterval (1 s).
type FactsConfig = Config

var factsDefaults = consumerDefaults{DefaultFactsGroup, kafka.TopicServiceFacts, DefaultFactsBatchSize, DefaultFactsFlushInterval}

// FactsProjector consumes helpdeskflow.service-facts and writes one row per
// record: webhook attempts (hdf-fact webhook_attempt) to webhook_attempts,
// mailbox sync runs (hdf-fact mail_sync) to mail_syncs. It is at least once
// and idempotent like the RequestLogProjector: offsets are committed only
// after every record up to them is in ClickHouse, and a redelivered record
// has the sorting key of the row it already wrote, so the two collapse
// under FINAL.
//
// A FactsProjector runs once: create it with NewFactsProjector, call Run
// from one goroutine. Its metrics may be scraped concurrently.
type FactsProjector struct {
	consumer
	cfg FactsConfig
	m   *recordProjectorMetrics
}

// NewFactsProjector fills cfg's defaults, validates it and registers the
// projector's metrics (helpdeskflow_service_facts_projector_*) on
// cfg.Registerer. It does not connect to anything. It returns an
// EValidation error listing every configuration problem, and an EInternal
// error when a metric cannot be registered.
func NewFactsProjector(cfg FactsConfig) (*FactsProjector, error) {
	cfg.setDefaults(factsDefaults)
	if err := cfg.Validate(); err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid service facts projector configuration", Err: err}
	}
	m, err := newRecordProjectorMetrics(cfg.Registerer, "service_facts", "Service facts", "webhook_attempts or mail_syncs")
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register service facts projector metrics", Err: err}
	}
	p := &FactsProjector{cfg: cfg, m: m}
	p.consumer = newConsumer("service facts projector", cfg, 0, m.errors, m.lag,
		func() kafka.Batch { return &factsBatch{p: p} }, nil, false)
	return p, nil
}

// Run joins the consumer group and writes service facts until ctx is
// cancelled, with the RequestLogProjector's lifecycle (batches, retries,
// shutdown and errors): see RequestLogProjector.Run. A record whose hdf-fact
// header names no known kind, or whose value does not decode, is logged,
// counted (errors_total{kind="decode"}) and skipped.
func (p *FactsProjector) Run(ctx context.Context) error {
	return p.run(ctx, "service facts projector stopped with records not written; their offsets are not committed")
}

// factsBatch is the records polled since the last commit: how many, and
// the rows of those that decoded, by table.
type factsBatch struct {
	p        *FactsProjector
	polled   int
	attempts []webhookAttemptRow
	syncs    []mailSyncRow
}

// Add counts a polled record and decodes it into a row (kafka.Batch).
func (b *factsBatch) Add(r *kafka.Record) {
	b.polled++
	var kind string
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderFact {
			kind = string(h.Value)
		}
	}
	var err error
	switch kind {
	case helpdeskflow.FactWebhookAttempt:
		var f helpdeskflow.WebhookAttemptFact
		if err = json.Unmarshal(r.Value, &f); err == nil && f.DeliveryID == uuid.Nil {
			err = errors.New("no delivery_id")
		}
		if err == nil {
			b.attempts = append(b.attempts, webhookAttemptRowOf(&f))
		}
	case helpdeskflow.FactMailSync:
		var f helpdeskflow.MailSyncFact
		if err = json.Unmarshal(r.Value, &f); err == nil && f.ConnectionID == uuid.Nil {
			err = errors.New("no connection_id")
		}
		if err == nil {
			b.syncs = append(b.syncs, mailSyncRowOf(&f))
		}
	default:
		err = errors.New("unknown fact kind " + kind)
	}
	if err != nil {
		b.p.m.errors.WithLabelValues(kafka.ErrKindDecode).Inc()
		b.p.log.Error("service facts projector: record is not a service fact; skipped",
			"partition", r.Partition, "offset", r.Offset, "fact", kind, "err", err)
	}
}

// Flush inserts the batch's rows, retrying until they are written or ctx
// ends; it never gives records back for a rebalance (kafka.Batch).
func (b *factsBatch) Flush(ctx context.Context, _ <-chan struct{}, _ bool) (int, error) {
	p := b.p
	inserts := []struct {
		table, columns string
		n              int
		values         func() []any
	}{
		{"webhook_attempts", webhookAttemptColumns, len(b.attempts), func() []any { return webhookAttemptColumnValues(b.attempts) }},
		{"mail_syncs", mailSyncColumns, len(b.syncs), func() []any { return mailSyncColumnValues(b.syncs) }},
	}
	for _, in := range inserts {
		if in.n == 0 {
			continue
		}
		err := p.retry(ctx, errKindInsert, func() error {
			start := time.Now()
			err := insertColumns(ctx, p.cfg.ClickHouse, in.table, in.columns, in.values())
			p.m.insertDuration.Observe(time.Since(start).Seconds())
			return err
		})
		if err != nil {
			return 0, err
		}
		p.m.rows.Add(float64(in.n))
	}
	p.m.batchSize.Observe(float64(b.polled))
	p.log.Debug("service facts projector flushed", "records", b.polled, "attempts", len(b.attempts), "syncs", len(b.syncs))
	return b.polled, nil
}

// webhookAttemptRow is one row of webhook_attempts.
type webhookAttemptRow struct {
	Time        time.Time
	TimeMs      uint16
	WorkspaceID uuid.UUID
	WebhookID   uuid.UUID
	Endpoint    string
	DeliveryID  uuid.UUID
	Attempt     uint32
	EventID     uuid.UUID
	EventType   string
	Outcome     string
	ErrorClass  string
	StatusCode  uint16
	DurationUs  uint64
}

const webhookAttemptColumns = "time, time_ms, workspace_id, webhook_id, endpoint, delivery_id, attempt, event_id, event_type, " +
	"outcome, error_class, status_code, duration_us"

func webhookAttemptColumnValues(rows []webhookAttemptRow) []any {
	return []any{
		column(rows, func(r *webhookAttemptRow) time.Time { return r.Time }),
		column(rows, func(r *webhookAttemptRow) uint16 { return r.TimeMs }),
		column(rows, func(r *webhookAttemptRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *webhookAttemptRow) uuid.UUID { return r.WebhookID }),
		column(rows, func(r *webhookAttemptRow) string { return r.Endpoint }),
		column(rows, func(r *webhookAttemptRow) uuid.UUID { return r.DeliveryID }),
		column(rows, func(r *webhookAttemptRow) uint32 { return r.Attempt }),
		column(rows, func(r *webhookAttemptRow) uuid.UUID { return r.EventID }),
		column(rows, func(r *webhookAttemptRow) string { return r.EventType }),
		column(rows, func(r *webhookAttemptRow) string { return r.Outcome }),
		column(rows, func(r *webhookAttemptRow) string { return r.ErrorClass }),
		column(rows, func(r *webhookAttemptRow) uint16 { return r.StatusCode }),
		column(rows, func(r *webhookAttemptRow) uint64 { return r.DurationUs }),
	}
}

// webhookAttemptRowOf converts a fact to a row, clamping what a column
// cannot hold (as apiRequestRowOf does).
func webhookAttemptRowOf(f *helpdeskflow.WebhookAttemptFact) webhookAttemptRow {
	ms := clampUnixMilli(f.Time)
	return webhookAttemptRow{
		Time: time.Unix(ms/1000, 0).UTC(), TimeMs: uint16(ms % 1000),
		WorkspaceID: f.WorkspaceID, WebhookID: f.WebhookID, Endpoint: f.Endpoint, DeliveryID: f.DeliveryID,
		Attempt: clampUint32(f.Attempt), EventID: f.EventID, EventType: f.EventType,
		Outcome: f.Outcome, ErrorClass: f.ErrorClass,
		StatusCode: uint16(min(max(f.StatusCode, 0), math.MaxUint16)),
		DurationUs: uint64(max(f.Duration.Microseconds(), 0)),
	}
}

// mailSyncRow is one row of mail_syncs.
type mailSyncRow struct {
	Time         time.Time
	TimeMs       uint16
	WorkspaceID  uuid.UUID
	ConnectionID uuid.UUID
	RunID        uuid.UUID
	Provider     string
	Imported     uint32
	Skipped      uint32
	Duplicates   uint32
	Failed       uint32
	Outcome      string
	ErrorClass   string
	DurationUs   uint64
}

const mailSyncColumns = "time, time_ms, workspace_id, connection_id, run_id, provider, imported, skipped, duplicates, failed, " +
	"outcome, error_class, duration_us"

func mailSyncColumnValues(rows []mailSyncRow) []any {
	return []any{
		column(rows, func(r *mailSyncRow) time.Time { return r.Time }),
		column(rows, func(r *mailSyncRow) uint16 { return r.TimeMs }),
		column(rows, func(r *mailSyncRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *mailSyncRow) uuid.UUID { return r.ConnectionID }),
		column(rows, func(r *mailSyncRow) uuid.UUID { return r.RunID }),
		column(rows, func(r *mailSyncRow) string { return r.Provider }),
		column(rows, func(r *mailSyncRow) uint32 { return r.Imported }),
		column(rows, func(r *mailSyncRow) uint32 { return r.Skipped }),
		column(rows, func(r *mailSyncRow) uint32 { return r.Duplicates }),
		column(rows, func(r *mailSyncRow) uint32 { return r.Failed }),
		column(rows, func(r *mailSyncRow) string { return r.Outcome }),
		column(rows, func(r *mailSyncRow) string { return r.ErrorClass }),
		column(rows, func(r *mailSyncRow) uint64 { return r.DurationUs }),
	}
}

// mailSyncRowOf converts a fact to a row, clamping what a column cannot
// hold.
func mailSyncRowOf(f *helpdeskflow.MailSyncFact) mailSyncRow {
	ms := clampUnixMilli(f.Time)
	return mailSyncRow{
		Time: time.Unix(ms/1000, 0).UTC(), TimeMs: uint16(ms % 1000),
		WorkspaceID: f.WorkspaceID, ConnectionID: f.ConnectionID, RunID: f.RunID, Provider: f.Provider,
		Imported: clampUint32(f.Imported), Skipped: clampUint32(f.Skipped), Duplicates: clampUint32(f.Duplicates),
		Failed: clampUint32(f.Failed), Outcome: f.Outcome, ErrorClass: f.ErrorClass,
		DurationUs: uint64(max(f.Duration.Microseconds(), 0)),
	}
}

func clampUint32(n int) uint32 { return uint32(min(max(n, 0), math.MaxUint32)) }
