package metricreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	var err error
	first := metricreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "c"}), &err)
	second := metricreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "c"}), &err)
	if err != nil {
		t.Fatalf("registering the same metric twice: %v", err)
	}
	if first != second {
		t.Error("the second Register did not return the collector already registered")
	}

	// A different collector under the same name is an error.
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "c"})
	if got := metricreg.Register(reg, g, &err); got != g || err == nil {
		t.Errorf("Register of a conflicting collector: got %v, err %v; want the collector itself and an error", got, err)
	}
}

func TestRegister_nilRegisterer(t *testing.T) {
	var err error
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c"})
	if got := metricreg.Register(nil, c, &err); got != c || err != nil {
		t.Errorf("Register(nil, c) = %v, err %v; want c and no error", got, err)
	}
}
