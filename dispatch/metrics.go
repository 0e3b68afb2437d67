package dispatch

import (
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of helpdeskflow_dispatch_internal_errors_total: failures outside the
// handlers.
const (
	errKindFetch         = "fetch"          // the Kafka client reported a fetch error
	errKindDecode        = "decode"         // a record value is not a JSON event (or an unresolvable claim check); skipped
	errKindClaims        = "claim_check"    // loading claim-checked events from Postgres failed; retried
	errKindProgressRead  = "progress_read"  // reading dispatch_progress failed; retried
	errKindProgressWrite = "progress_write" // writing dispatch_progress failed; retried
	errKindCommit        = "commit"         // an offset commit failed after the progress was written
)

type metrics struct {
	events         *prometheus.CounterVec
	duplicates     prometheus.Counter
	errors         *prometheus.CounterVec
	internalErrors *prometheus.CounterVec
	lag            *prometheus.GaugeVec
	duration       *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, handlerNames []string) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_events_total",
			Help: "Events a dispatch handler handled successfully, by handler.",
		}, []string{"handler"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_duplicates_total",
			Help: "Redelivered events the dispatcher skipped because dispatch_progress shows them handled.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_errors_total",
			Help: "Failed dispatch handler calls (each is retried), by handler.",
		}, []string{"handler"}),
		internalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_internal_errors_total",
			Help: "Dispatcher failures outside the handlers, by kind (fetch, decode, progress_read, progress_write, commit).",
		}, []string{"kind"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "helpdeskflow_dispatch_consumer_lag",
			Help: "Records of a partition not yet dispatched and committed: high watermark minus committed offset.",
		}, []string{"topic", "partition"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helpdeskflow_dispatch_handle_duration_seconds",
			Help:    "Duration of one dispatch handler call, failed ones included, by handler.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler"}),
	}
	if reg != nil {
		var err error
		m.events = metricreg.Register(reg, m.events, &err)
		m.duplicates = metricreg.Register(reg, m.duplicates, &err)
		m.errors = metricreg.Register(reg, m.errors, &err)
		m.internalErrors = metricreg.Register(reg, m.internalErrors, &err)
		m.lag = metricreg.Register(reg, m.lag, &err)
		m.duration = metricreg.Register(reg, m.duration, &err)
		if err != nil {
			return nil, err
		}
	}
	// Create the series up front so that dashboards and rate() see zeros.
	for _, name := range handlerNames {
		m.events.WithLabelValues(name)
		m.errors.WithLabelValues(name)
		m.duration.WithLabelValues(name)
	}
	for _, kind := range []string{errKindFetch, errKindDecode, errKindProgressRead, errKindProgressWrite, errKindCommit} {
		m.internalErrors.WithLabelValues(kind)
	}
	return m, nil
}
