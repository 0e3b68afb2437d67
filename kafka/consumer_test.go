package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

const wait = 30 * time.Second

// flush is one call of a recording batch's Flush that succeeded.
type flush struct {
	records int
	bytes   int
	final   bool
}

// recorder makes batches that keep their records and record every flush.
// While failing is set, a non-final Flush fails (and is counted).
type recorder struct {
	mu      sync.Mutex
	flushes []flush
	added   atomic.Int64
	failing atomic.Bool
	failed  atomic.Int64
	batches atomic.Int64 // batches made
	flushed []*recordingBatch
}

func (r *recorder) newBatch() kafka.Batch {
	r.batches.Add(1)
	return &recordingBatch{r: r}
}

func (r *recorder) snapshot() []flush {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]flush(nil), r.flushes...)
}

type recordingBatch struct {
	r       *recorder
	records []*kafka.Record
	calls   int
}

func (b *recordingBatch) Add(r *kafka.Record) {
	b.records = append(b.records, r)
	b.r.added.Add(1)
}

func (b *recordingBatch) Flush(_ context.Context, _ <-chan struct{}, final bool) (int, error) {
	b.calls++
	if b.r.failing.Load() && !final {
		b.r.failed.Add(1)
		return 0, errors.New("flush failed")
	}
	n := 0
	for _, r := range b.records {
		n += len(r.Value)
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	b.r.flushes = append(b.r.flushes, flush{records: len(b.records), bytes: n, final: final})
	b.r.flushed = append(b.r.flushed, b)
	return len(b.records), nil
}

// member is a running Consumer.
type member struct {
	rec  *recorder
	stop func() error
}

func start(t *testing.T, brokers []string, group string, set func(*kafka.ConsumerConfig)) *member {
	t.Helper()
	rec := &recorder{}
	cfg := kafka.ConsumerConfig{
		Name: "test consumer", Brokers: brokers, Group: group, Topic: kafka.TopicEvents,
		BatchSize: 100, FlushInterval: time.Hour, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second, NewBatch: rec.newBatch, Logger: slog.New(slog.DiscardHandler),
		Errors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "errors"}, []string{"kind"}),
		Lag:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"topic", "partition"}),
		Options: []kafka.Option{kgo.FetchMaxWait(100 * time.Millisecond), kgo.HeartbeatInterval(100 * time.Millisecond)},
	}
	if set != nil {
		set(&cfg)
	}
	c := kafka.NewConsumer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(wait):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return &member{rec: rec, stop: stop}
}

// produce publishes n records of size bytes each, spread over the
// partitions by key.
func produce(t *testing.T, brokers []string, n, size int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for i := 0; i < n; i++ {
		value := make([]byte, size)
		records = append(records, &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(strconv.Itoa(i)), Value: value})
	}
	if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed returns the sum of the group's committed offsets on the events
// topic: how many records it committed, since the topic starts at 0.
func committed(t *testing.T, brokers []string, group string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	topic := kmsg.NewOffsetFetchRequestTopic()
	topic.Topic = kafka.TopicEvents
	topic.Partitions = []int32{0, 1, 2, 3}
	req.Topics = []kmsg.OffsetFetchRequestTopic{topic}
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic = kafka.TopicEvents
	gt.Partitions = []int32{0, 1, 2, 3}
	g.Topics = []kmsg.OffsetFetchRequestGroupTopic{gt}
	req.Groups = []kmsg.OffsetFetchRequestGroup{g}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	add := func(offset int64) {
		if offset > 0 {
			sum += offset
		}
	}
	if len(resp.Groups) == 0 { // answered in the request version before groups
		for _, topic := range resp.Topics {
			for _, p := range topic.Partitions {
				add(p.Offset)
			}
		}
	}
	for _, g := range resp.Groups {
		for _, topic := range g.Topics {
			for _, p := range topic.Partitions {
				add(p.Offset)
			}
		}
	}
	return sum
}

// members returns how many members group has.
func members(t *testing.T, brokers []string, group string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("describe group %s: %v", group, err)
	}
	return len(resp.Groups[0].Members)
}

func TestConsumer_BatchesByCount(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	produce(t, brokers, 12, 10)
	m := start(t, brokers, "g-count", func(c *kafka.ConsumerConfig) { c.BatchSize = 5 })
	testenv.Eventually(t, wait, func() error {
		if n := len(m.rec.snapshot()); n < 2 {
			return fmt.Errorf("%d flushes, want 2 full batches", n)
		}
		return nil
	})
	testenv.Eventually(t, wait, func() error {
		if n := m.rec.added.Load(); n != 12 {
			return fmt.Errorf("%d records added, want 12", n)
		}
		return nil
	})
	if err := m.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	want := []flush{{5, 50, false}, {5, 50, false}, {2, 20, true}}
	if got := m.rec.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("flushes %v, want %v (two full batches, the rest when stopping)", got, want)
	}
	if got := committed(t, brokers, "g-count"); got != 12 {
		t.Errorf("committed %d records, want 12", got)
	}
}

func TestConsumer_BatchesByBytes(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	m := start(t, brokers, "g-bytes", func(c *kafka.ConsumerConfig) { c.MaxBatchBytes = 300 })
	produce(t, brokers, 7, 100)
	testenv.Eventually(t, wait, func() error {
		if len(m.rec.snapshot()) == 0 {
			return errors.New("no flush before stopping; 700 bytes are over MaxBatchBytes")
		}
		return nil
	})
	if err := m.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	total := 0
	for _, f := range m.rec.snapshot() {
		if !f.final && f.bytes < 300 {
			t.Errorf("flush of %d bytes before MaxBatchBytes (300), not final", f.bytes)
		}
		total += f.records
	}
	if total != 7 {
		t.Errorf("flushed %d records, want 7", total)
	}
}

func TestConsumer_BatchesByTime(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	m := start(t, brokers, "g-time", func(c *kafka.ConsumerConfig) { c.FlushInterval = 200 * time.Millisecond })
	produce(t, brokers, 3, 10)
	testenv.Eventually(t, wait, func() error {
		n := 0
		for _, f := range m.rec.snapshot() {
			n += f.records
		}
		if n != 3 {
			return fmt.Errorf("%d records flushed while running, want 3 (BatchSize 100, FlushInterval 200ms)", n)
		}
		return nil
	})
	testenv.Eventually(t, wait, func() error {
		if got := committed(t, brokers, "g-time"); got != 3 {
			return fmt.Errorf("committed %d, want 3", got)
		}
		return nil
	})
	if err := m.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// A flush that fails is called again with the same batch, and nothing is
// committed until it succeeds.
func TestConsumer_FailedFlushIsRetriedNotCommitted(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	m := start(t, brokers, "g-fail", func(c *kafka.ConsumerConfig) { c.BatchSize = 4 })
	m.rec.failing.Store(true)
	produce(t, brokers, 4, 10)
	testenv.Eventually(t, wait, func() error {
		if n := m.rec.failed.Load(); n < 3 {
			return fmt.Errorf("%d failed flushes, want 3", n)
		}
		return nil
	})
	if got := committed(t, brokers, "g-fail"); got != 0 {
		t.Fatalf("committed %d records while the flush fails, want 0", got)
	}
	m.rec.failing.Store(false)
	testenv.Eventually(t, wait, func() error {
		if got := committed(t, brokers, "g-fail"); got != 4 {
			return fmt.Errorf("committed %d, want 4", got)
		}
		return nil
	})
	if err := m.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := m.rec.batches.Load(); n != 1 {
		t.Errorf("%d batches made, want 1: a failed flush is retried with the same batch", n)
	}
	if got := m.rec.snapshot(); len(got) != 1 || got[0].records != 4 || got[0].final {
		t.Errorf("flushes %v, want one of 4 records while running", got)
	}
}

// When a second member joins, the first flushes and commits what it holds
// before it gives partitions up, so the second never sees those records.
func TestConsumer_RevokeFlushesFirst(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	const group = "g-revoke"
	a := start(t, brokers, group, nil) // BatchSize 100, FlushInterval 1h: holds its batch
	produce(t, brokers, 20, 10)
	testenv.Eventually(t, wait, func() error {
		if n := a.rec.added.Load(); n != 20 {
			return fmt.Errorf("first member holds %d records, want 20", n)
		}
		return nil
	})
	if got := a.rec.snapshot(); len(got) != 0 {
		t.Fatalf("flushes %v before the rebalance, want none", got)
	}
	b := start(t, brokers, group, nil)
	testenv.Eventually(t, wait, func() error {
		if got := committed(t, brokers, group); got != 20 {
			return fmt.Errorf("committed %d, want 20", got)
		}
		return nil
	})
	if got := a.rec.snapshot(); len(got) != 1 || got[0].records != 20 || got[0].final {
		t.Errorf("first member's flushes %v, want one of 20 records for the rebalance", got)
	}
	testenv.Eventually(t, wait, func() error {
		if n := members(t, brokers, group); n != 2 {
			return fmt.Errorf("%d members, want 2", n)
		}
		return nil
	})
	if err := b.stop(); err != nil {
		t.Fatalf("second member Run = %v", err)
	}
	if n := b.rec.added.Load(); n != 0 {
		t.Errorf("second member got %d records the first had flushed and committed", n)
	}
}

// Run leaves the group when it stops, so its partitions go to the others
// at once rather than after the session timeout.
func TestConsumer_StopLeavesGroup(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	const group = "g-leave"
	m := start(t, brokers, group, nil)
	produce(t, brokers, 1, 10)
	testenv.Eventually(t, wait, func() error {
		if n := m.rec.added.Load(); n != 1 {
			return fmt.Errorf("%d records added, want 1", n)
		}
		return nil
	})
	if n := members(t, brokers, group); n != 1 {
		t.Fatalf("%d members while running, want 1", n)
	}
	if err := m.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := members(t, brokers, group); n != 0 {
		t.Errorf("%d members after Run returned, want 0: Run did not leave the group", n)
	}
	if got := committed(t, brokers, group); got != 1 {
		t.Errorf("committed %d after stopping, want 1 (the final flush)", got)
	}
}
