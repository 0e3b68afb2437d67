package kafka

import "github.com/prometheus/client_golang/prometheus"

// Error kinds every consumer's error counter (ConsumerConfig.Errors) has:
// the Consumer counts ErrKindFetch and ErrKindCommit, a Batch counts
// ErrKindDecode and, when it resolves claim checks (Decode),
// ErrKindClaimCheck.
const (
	ErrKindFetch      = "fetch"       // the Kafka client reported a fetch error
	ErrKindDecode     = "decode"      // a record value is not what the topic holds (or an unresolvable claim check); skipped
	ErrKindClaimCheck = "claim_check" // loading claim-checked events from Postgres failed; retried
	ErrKindCommit     = "commit"      // an offset commit failed after a successful flush
)

// NewErrorCounter returns a consumer's error counter (ConsumerConfig.Errors)
// named name, with the one label "kind". The series of ErrKindFetch,
// ErrKindDecode, ErrKindCommit and of kinds (the consumer's own) exist from
// the start, at zero; ErrKindClaimCheck's appears with its first failure.
func NewErrorCounter(name, help string, kinds ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"kind"})
	for _, kind := range append([]string{ErrKindFetch, ErrKindDecode, ErrKindCommit}, kinds...) {
		c.WithLabelValues(kind)
	}
	return c
}

// NewLagGauge returns a consumer-lag gauge (ConsumerConfig.Lag, see
// LagTracker) named name, with the labels topic and partition.
func NewLagGauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"topic", "partition"})
}
