package projections_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// BenchmarkProjectorLag publishes ticket creations on a schedule (open
// loop: 2,000 creates/s, 30% of them with a new customer, for 10 s) to a
// kfake broker and projects them into the test ClickHouse with several
// batch sizes and flush intervals. It reports the lag from publishing an
// event to its flush (when the projector's event counter passes it):
// p50-ms, p99-ms, max-ms. Everything shares one machine, so compare the
// configurations of one run, not runs.
func BenchmarkProjectorLag(b *testing.B) {
	const rate, seconds, tick = 2000, 10, 10 * time.Millisecond
	for _, c := range []struct {
		batch int
		flush time.Duration
	}{{1000, 500 * time.Millisecond}, {5000, 250 * time.Millisecond}, {5000, 100 * time.Millisecond}} {
		b.Run(fmt.Sprintf("batch=%d/flush=%s", c.batch, c.flush), func(b *testing.B) {
			for b.Loop() {
				projectorLag(b, c.batch, c.flush, rate, seconds, tick)
			}
		})
	}
}

// BenchmarkProjectorCatchUp projects a backlog of 20,000 creates (30% with
// a new customer) with several batch sizes and reports events/s from the
// first flush to the last: how fast the projector catches up after a burst
// or an outage.
func BenchmarkProjectorCatchUp(b *testing.B) {
	for _, batch := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				conn, _ := newDB(b)
				brokers := newKafka(b)
				records := createRecords(b, 20000)
				produceRecords(b, brokers, records...)
				cfg, reg := testConfig(b, conn, brokers, "g-catch-up", []func(*projections.Config){func(c *projections.Config) {
					c.BatchSize, c.FlushInterval = batch, 250*time.Millisecond
				}})
				p, err := projections.NewProjector(cfg)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- p.Run(ctx) }()
				var first time.Time
				var n float64
				for n < float64(len(records)) {
					time.Sleep(5 * time.Millisecond)
					if n = testenv.Metric(b, reg, "helpdeskflow_projector_events_total"); n > 0 && first.IsZero() {
						first = time.Now()
					}
				}
				b.ReportMetric(float64(len(records))/time.Since(first).Seconds(), "events/s")
				cancel()
				<-done
			}
		})
	}
}

// createRecords is the records of creates ticket creations, 30% of them
// after a new customer's creation.
func createRecords(b *testing.B, creates int) []*kgo.Record {
	w := newWorld()
	var events []helpdeskflow.Event
	for i := range creates {
		customer := uuid.New()
		if i%10 < 3 {
			events = append(events, w.event(helpdeskflow.StreamCustomer, customer, 1, helpdeskflow.EventCustomerCreated,
				helpdeskflow.CustomerCreated{Email: fmt.Sprintf("c%d@example.com", i), Name: "Customer"}))
		}
		events = append(events, w.ticketCreated(uuid.New(), customer, helpdeskflow.TicketCreated{}))
	}
	records := make([]*kgo.Record, len(events))
	for i, e := range events {
		r, err := kafka.NewRecord(kafka.TopicEvents, e)
		if err != nil {
			b.Fatal(err)
		}
		records[i] = r
	}
	return records
}

func projectorLag(b *testing.B, batch int, flush time.Duration, rate, seconds int, tick time.Duration) {
	conn, _ := newDB(b)
	brokers := newKafka(b)
	records := createRecords(b, rate*seconds)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	cfg, reg := testConfig(b, conn, brokers, "g-lag", []func(*projections.Config){func(c *projections.Config) {
		c.BatchSize, c.FlushInterval = batch, flush
	}})
	p, err := projections.NewProjector(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	produced := make([]time.Time, len(records))
	go func() {
		start, perTick := time.Now(), len(records)*int(tick)/(seconds*int(time.Second))
		for i := 0; i < len(records); i += perTick {
			time.Sleep(time.Until(start.Add(time.Duration(i/perTick) * tick)))
			now := time.Now()
			for j := i; j < min(i+perTick, len(records)); j++ {
				produced[j] = now
				cl.Produce(ctx, records[j], nil)
			}
		}
	}()
	var lags []time.Duration
	deadline := time.Now().Add(time.Duration(seconds)*time.Second + 30*time.Second)
	for len(lags) < len(records) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		n := int(testenv.Metric(b, reg, "helpdeskflow_projector_events_total"))
		now := time.Now()
		for len(lags) < n {
			lags = append(lags, now.Sub(produced[len(lags)]))
		}
	}
	if len(lags) < len(records) {
		b.Fatalf("projected %d of %d events", len(lags), len(records))
	}
	slices.Sort(lags)
	at := func(q float64) float64 { return float64(lags[int(q*float64(len(lags)-1))].Milliseconds()) }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(at(1), "max-ms")
	b.ReportMetric(float64(len(records))/testenv.Metric(b, reg, "helpdeskflow_projector_batch_size"), "events/flush")
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "helpdeskflow_projector_insert_duration_seconds" {
			for _, m := range f.GetMetric() {
				h := m.GetHistogram()
				b.Logf("insert %s: %d inserts, mean %.1f ms", m.GetLabel()[0].GetValue(), h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
			}
		}
	}
}
