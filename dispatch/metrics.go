package dispatch

import (
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of helpdeskflow_dispatch_internal_errors_total (failures outside
// the handlers) besides those every consumer has (kafka.ErrKindFetch,
// kafka.ErrKindDecode, kafka.ErrKindClaimCheck, kafka.ErrKindCommit).
const (
	errKindProgressRead  = "progress_read"  // reading dispatch_progress failed; retried
	errKindProgressWrite = "progress_write" // writing dispatch_progress failed; retried
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
	var err error
	m := &metrics{
		events: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_events_total",
			Help: "Events a dispatch handler handled successfully, by handler.",
		}, []string{"handler"}), &err),
		duplicates: metricreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_duplicates_total",
			Help: "Redelivered events the dispatcher skipped because dispatch_progress shows them handled.",
		}), &err),
		errors: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_dispatch_errors_total",
			Help: "Failed dispatch handler calls, and batch begins and commits of batch handlers (each is retried), by handler.",
		}, []string{"handler"}), &err),
		internalErrors: metricreg.Register(reg, kafka.NewErrorCounter("helpdeskflow_dispatch_internal_errors_total",
			"Dispatcher failures outside the handlers, by kind (fetch, decode, progress_read, progress_write, commit).",
			errKindProgressRead, errKindProgressWrite), &err),
		lag: metricreg.Register(reg, kafka.NewLagGauge("helpdeskflow_dispatch_consumer_lag",
			"Records of a partition not yet dispatched and committed: high watermark minus committed offset."), &err),
		duration: metricreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helpdeskflow_dispatch_handle_duration_seconds",
			Help:    "Duration of one dispatch handler call, failed ones included, by handler.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler"}), &err),
	}
	if err != nil {
		return nil, err
	}
	// Create the series up front so that dashboards and rate() see zeros.
	for _, name := range handlerNames {
		m.events.WithLabelValues(name)
		m.errors.WithLabelValues(name)
		m.duration.WithLabelValues(name)
	}
	return m, nil
}
