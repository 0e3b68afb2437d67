package kafka_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow/kafka"
)

func fetches(topic string, parts ...kgo.FetchPartition) kgo.Fetches {
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: parts}}}}
}

// value reads a gauge. (prometheus/testutil would need a module this
// repository does not require.)
func value(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// series counts the series of a collector.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	n := 0
	for range ch {
		n++
	}
	return n
}

func TestLagTracker(t *testing.T) {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"topic", "partition"})
	lt := kafka.NewLagTracker("t", gauge)

	lt.Note(fetches("t",
		kgo.FetchPartition{Partition: 0, HighWatermark: 10, LogStartOffset: 2},
		kgo.FetchPartition{Partition: 1, HighWatermark: 5, LogStartOffset: 5},
		kgo.FetchPartition{Partition: 2, HighWatermark: 99, Err: errors.New("fetch failed")},
	))
	lt.Note(fetches("other", kgo.FetchPartition{Partition: 3, HighWatermark: 7}))

	parts := lt.Partitions()
	slices.Sort(parts)
	if !slices.Equal(parts, []int32{0, 1}) {
		t.Fatalf("Partitions() = %v, want [0 1] (errored partitions and other topics skipped)", parts)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lt.Update(cl) // nothing committed: lag is high watermark minus log start
	if got := value(t, gauge.WithLabelValues("t", "0")); got != 8 {
		t.Errorf("lag of partition 0 = %v, want 8", got)
	}
	if got := value(t, gauge.WithLabelValues("t", "1")); got != 0 {
		t.Errorf("lag of partition 1 = %v, want 0", got)
	}
	if n := series(gauge); n != 2 {
		t.Errorf("%d lag series, want 2", n)
	}

	lt.Note(fetches("t", kgo.FetchPartition{Partition: 0, HighWatermark: 12, LogStartOffset: 2}))
	lt.Update(cl)
	if got := value(t, gauge.WithLabelValues("t", "0")); got != 10 {
		t.Errorf("lag of partition 0 after a newer fetch = %v, want 10", got)
	}

	lt.Forget([]int32{0, 7})
	if parts := lt.Partitions(); !slices.Equal(parts, []int32{1}) {
		t.Errorf("Partitions() after Forget = %v, want [1]", parts)
	}
	if n := series(gauge); n != 1 {
		t.Errorf("%d lag series after Forget, want 1", n)
	}
	lt.Update(cl)
	if n := series(gauge); n != 1 {
		t.Errorf("%d lag series after Forget and Update, want 1 (forgotten partition came back)", n)
	}
}
