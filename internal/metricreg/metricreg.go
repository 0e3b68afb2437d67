// Package metricreg registers Prometheus collectors so that a second
// instance of a component in one process (a restart in `helpdeskflow dev`,
// a projection rebuild, a test) shares the first one's series instead of
// failing: the Kafka consumers and producer users, the dispatcher and its
// pollers.
package metricreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg, or returns the collector already registered
// under the same name, so that a second consumer in one process (a restart
// in `helpdeskflow dev`, a projection rebuild, a test) shares the series
// instead of failing. Any other registration error is joined into *errp and
// c is returned. A nil reg registers nothing and returns c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		*errp = errors.Join(*errp, err)
	}
	return c
}
