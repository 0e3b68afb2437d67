package mailsync

import (
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

// Metrics are the mail sync's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	runs     *prometheus.CounterVec
	imported *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	replies  *prometheus.CounterVec

	mu sync.Mutex
	// lastGood is when each connection synced well last, for the lag
	// gauge.
	lastGood map[uuid.UUID]lagEntry
	now      func() time.Time
}

type lagEntry struct {
	provider string
	at       time.Time // the start of the last good run
	tried    time.Time // the end of the last run, good or not
}

// lagForgetAfter is how long after its last run by this process a mailbox
// leaves the lag gauge: it was disconnected or another process syncs it
// now (failing mailboxes are retried at least every 15 minutes).
const lagForgetAfter = 30 * time.Minute

// NewMetrics registers the mail sync's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_mail_sync_runs_total",
			Help: "Mailbox sync runs by provider and outcome (ok, or the failure class)."}, []string{"provider", "outcome"}),
		imported: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_mail_items_imported_total",
			Help: "Mailbox messages handled by sync runs, by result: ticket (made a ticket), message (joined one), duplicate (known), skipped (auto-replies, own mail, unreadable), automation_conflict."},
			[]string{"provider", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_mail_sync_errors_total",
			Help: "Failed mailbox sync runs by provider and error class."}, []string{"provider", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "helpdeskflow_mail_sync_run_seconds",
			Help: "Duration of mailbox sync runs.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}, []string{"provider"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_mail_replies_total",
			Help: "Agent replies sent through mailboxes, by provider and outcome (sent, found_sent, retry, failed)."}, []string{"provider", "outcome"}),
		lastGood: map[uuid.UUID]lagEntry{},
		now:      time.Now,
	}
	lag := prometheus.NewDesc("helpdeskflow_mail_sync_lag_seconds",
		"Seconds since the mailbox of the provider this process synced longest ago last synced well: mail newer than that may not be imported yet. Each mailbox's own lag is its last_sync_at in GET /v1/integrations.",
		[]string{"provider"}, nil)
	for _, c := range []prometheus.Collector{m.runs, m.imported, m.errors, m.duration, m.replies, lagCollector{m, lag}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ran records a finished run of duration d: class is "" for a good one.
// The lag counts from the start of the last good run, by this process's
// wall clock.
func (m *Metrics) ran(c helpdeskflow.Connection, class string, imported map[string]int, d time.Duration) {
	if m == nil {
		return
	}
	outcome := "ok"
	if class != "" {
		outcome = class
		m.errors.WithLabelValues(c.Provider, class).Inc()
	}
	m.runs.WithLabelValues(c.Provider, outcome).Inc()
	m.duration.WithLabelValues(c.Provider).Observe(d.Seconds())
	for result, n := range imported {
		m.imported.WithLabelValues(c.Provider, result).Add(float64(n))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	e, known := m.lastGood[c.ID]
	switch {
	case class == "":
		e = lagEntry{provider: c.Provider, at: now.Add(-d)}
	case !known && c.LastSyncAt != nil:
		e = lagEntry{provider: c.Provider, at: *c.LastSyncAt}
	case !known:
		return
	}
	e.tried = now
	m.lastGood[c.ID] = e
}

func (m *Metrics) reply(provider, outcome string) {
	if m != nil {
		m.replies.WithLabelValues(provider, outcome).Inc()
	}
}

// lagCollector reports the lag of each mailbox at scrape time.
type lagCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (l lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

func (l lagCollector) Collect(ch chan<- prometheus.Metric) {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	now := l.m.now()
	// One series per provider (a series per mailbox would grow with the
	// tenants): the worst lag is what an alert needs.
	worst := map[string]time.Duration{}
	for id, e := range l.m.lastGood {
		if now.Sub(e.tried) > lagForgetAfter {
			delete(l.m.lastGood, id)
			continue
		}
		worst[e.provider] = max(worst[e.provider], now.Sub(e.at))
	}
	for provider, lag := range worst {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, lag.Seconds(), provider)
	}
}
