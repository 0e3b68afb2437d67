package integrations

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnectionCounter counts connections by provider and status (the event
// store's ConnectionCounts).
type ConnectionCounter func(ctx context.Context) (map[[2]string]int, error)

// Metrics are the connections' Prometheus metrics:
// helpdeskflow_integration_token_refreshes_total{provider,outcome} (pass
// Metrics.Refreshed as Config.OnRefresh) and
// helpdeskflow_integration_connections{provider,status}, counted in
// Postgres at each scrape.
type Metrics struct {
	refreshes *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer, count ConnectionCounter) (*Metrics, error) {
	m := &Metrics{refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_integration_token_refreshes_total",
		Help: "OAuth token refreshes by provider and outcome: ok, invalid_grant (the connection became token_expired), invalid_client, temporary, error."},
		[]string{"provider", "outcome"})}
	desc := prometheus.NewDesc("helpdeskflow_integration_connections", "Integration connections by provider and status, in the event store.",
		[]string{"provider", "status"}, nil)
	for _, c := range []prometheus.Collector{m.refreshes, connectionCollector{count, desc}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Refreshed counts one refresh; it is a Config.OnRefresh.
func (m *Metrics) Refreshed(provider, outcome string) {
	m.refreshes.WithLabelValues(provider, outcome).Inc()
}

type connectionCollector struct {
	count ConnectionCounter
	desc  *prometheus.Desc
}

func (c connectionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect counts the connections; when Postgres does not answer within 2
// seconds the scrape goes without the gauge.
func (c connectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
