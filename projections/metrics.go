package projections

import (
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds of helpdeskflow_projector_errors_total and
// helpdeskflow_request_log_projector_errors_total besides those every
// consumer has (kafka.ErrKindFetch, kafka.ErrKindDecode,
// kafka.ErrKindClaimCheck, kafka.ErrKindCommit).
const (
	errKindApply  = "apply"  // an event's data does not decode for its type; entity row skipped
	errKindLoad   = "load"   // reading previous entity state from ClickHouse failed; retried
	errKindInsert = "insert" // a ClickHouse insert failed; retried, offsets not committed
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
	var err error
	m := &metrics{
		batchSize: metricreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "helpdeskflow_projector_batch_size",
			Help:    "Events per ClickHouse flush of the projector.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
		}), &err),
		insertDuration: metricreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helpdeskflow_projector_insert_duration_seconds",
			Help:    "Duration of one ClickHouse batch insert of the projector, failed ones included, by table.",
			Buckets: prometheus.DefBuckets,
		}, []string{"table"}), &err),
		lag: metricreg.Register(reg, kafka.NewLagGauge("helpdeskflow_projector_consumer_lag",
			"Records of a partition not yet projected and committed: high watermark minus committed offset."), &err),
		errors: metricreg.Register(reg, kafka.NewErrorCounter("helpdeskflow_projector_errors_total",
			"Projector errors by kind (fetch, decode, apply, load, insert, commit).",
			errKindApply, errKindLoad, errKindInsert), &err),
		events: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_projector_events_total",
			Help: "Events the projector wrote to ClickHouse, by event type.",
		}, []string{"type"}), &err),
		skipped: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_projector_events_skipped_total",
			Help: "Events that changed no entity row (their audit row is still written), by reason (unknown_type, stale, missing_state).",
		}, []string{"reason"}), &err),
	}
	for _, reason := range []string{skipUnknownType, skipStale, skipMissingState} {
		m.skipped.WithLabelValues(reason)
	}
	return m, err
}
