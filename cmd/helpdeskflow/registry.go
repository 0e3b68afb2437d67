package main

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// registry is a process's metrics registry: a prometheus.Registry that also
// keeps every collector registered with it, so that the metrics a process
// exports can be listed from the collectors' descriptors, vectors that have
// no series yet included (which a scrape does not show): the test of the
// dashboard's and alerts' queries does. Safe for concurrent use.
type registry struct {
	*prometheus.Registry

	mu         sync.Mutex
	collectors []prometheus.Collector
}

func newRegistry() *registry {
	return &registry{Registry: prometheus.NewRegistry()}
}

// Register registers c (see prometheus.Registry.Register) and keeps it when
// that succeeds.
func (r *registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

// MustRegister registers cs like Register and panics on the first error,
// as prometheus.Registry.MustRegister does.
func (r *registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister unregisters c (see prometheus.Registry.Unregister) and forgets it.
func (r *registry) Unregister(c prometheus.Collector) bool {
	if !r.Registry.Unregister(c) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, kept := range r.collectors {
		if kept == c {
			r.collectors = append(r.collectors[:i], r.collectors[i+1:]...)
			break
		}
	}
	return true
}

// registered returns every collector registered, in the order they were.
func (r *registry) registered() []prometheus.Collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]prometheus.Collector(nil), r.collectors...)
}
