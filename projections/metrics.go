package projections

import (
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds of helpdeskflow_projector_errors_total.
const (
	errKindFetch  = "fetch"       // the Kafka client reported a fetch error
	errKindDecode = "decode"      // a record value is not a JSON event (or an unresolvable claim check); skipped
	errKindClaims = "claim_check" // loading claim-checked events from Postgres failed; retried
	errKindApply  = "apply"       // an event's data does not decode for its type; entity row skipped
	errKindLoad   = "load"        // reading previous entity state from ClickHouse failed; retried
	errKindInsert = "insert"      // a ClickHouse insert failed; retried, offsets not committed
	errKindCommit = "commit"      // an offset commit failed after a successful insert
)

// Reasons of helpdeskflow_projector_events_skipped_total.
const (
	skipUnknownType  = "unknown_type"  // entity stream event type this build cannot apply
	skipStale        = "stale"         // version <= the projected version (a redelivery)
	skipMissingState = "missing_state" // a non-creation event of an entity that is not projected
)

type metrics struct {
	batchSize      prometheus.Histogram
	insertDuration *prometheus.HistogramVec
	lag            *prometheus.GaugeVec
	errors         *prometheus.CounterVec
	events         *prometheus.CounterVec
	skipped        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "helpdeskflow_projector_batch_size",
			Help:    "Events per ClickHouse flush of the projector.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
		}),
		insertDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helpdeskflow_projector_insert_duration_seconds",
			Help:    "Duration of one ClickHouse batch insert of the projector, failed ones included, by table.",
			Buckets: prometheus.DefBuckets,
		}, []string{"table"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "helpdeskflow_projector_consumer_lag",
			Help: "Records of a partition not yet projected and committed: high watermark minus committed offset.",
		}, []string{"topic", "partition"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_projector_errors_total",
			Help: "Projector errors by kind (fetch, decode, apply, load, insert, commit).",
		}, []string{"kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_projector_events_total",
			Help: "Events the projector wrote to ClickHouse, by event type.",
		}, []string{"type"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_projector_events_skipped_total",
			Help: "Events that changed no entity row (their audit row is still written), by reason (unknown_type, stale, missing_state).",
		}, []string{"reason"}),
	}
	for _, kind := range []string{errKindFetch, errKindDecode, errKindApply, errKindLoad, errKindInsert, errKindCommit} {
		m.errors.WithLabelValues(kind)
	}
	for _, reason := range []string{skipUnknownType, skipStale, skipMissingState} {
		m.skipped.WithLabelValues(reason)
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.batchSize = metricreg.Register(reg, m.batchSize, &err)
	m.insertDuration = metricreg.Register(reg, m.insertDuration, &err)
	m.lag = metricreg.Register(reg, m.lag, &err)
	m.errors = metricreg.Register(reg, m.errors, &err)
	m.events = metricreg.Register(reg, m.events, &err)
	m.skipped = metricreg.Register(reg, m.skipped, &err)
	return m, err
}
