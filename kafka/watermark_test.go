package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// TestNewWatermarks_OnePerPartition: published through a client with the
// default partitioner, the watermarks of a position land one on each
// partition, and each reads back as its partition's watermark.
func TestNewWatermarks_OnePerPartition(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	p := helpdeskflow.Position{TxID: 1<<40 + 7, Seq: 99}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), kafka.NewWatermarks(kafka.TopicEvents, p, 4)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reader := testenv.TopicReader(t, brokers, kafka.TopicEvents)
	defer reader.Close()
	seen := map[int32]int{}
	for len(seen) < 4 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fetches := reader.PollFetches(ctx)
		cancel()
		if err := fetches.Err0(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			seen[r.Partition]++
			w, err := kafka.ParseWatermark(r)
			if err != nil {
				t.Fatalf("partition %d: %v", r.Partition, err)
			}
			if want := (kafka.Watermark{Partition: r.Partition, Partitions: 4, Position: p}); w != want {
				t.Errorf("watermark %+v, want %+v", w, want)
			}
			if !kafka.IsWatermark(r) {
				t.Error("IsWatermark = false for a watermark")
			}
			_, errs, err := kafka.Decode(context.Background(), []*kgo.Record{r}, nil)
			if err != nil || !errors.Is(errs[0], kafka.ErrWatermark) || errors.Is(errs[0], kafka.ErrNotAnEvent) {
				t.Errorf("Decode = %v, %v; want ErrWatermark alone", err, errs[0])
			}
		})
	}
	for partition, n := range seen {
		if n != 1 {
			t.Errorf("partition %d got %d watermarks, want 1", partition, n)
		}
	}
}

// TestNewWatermarks_KeysCoverEveryPartition: for any partition count, the
// key of the watermark for partition i is one Kafka's partitioner maps to
// i.
func TestNewWatermarks_KeysCoverEveryPartition(t *testing.T) {
	for n := 1; n <= 64; n++ {
		hash := kgo.StickyKeyPartitioner(nil).ForTopic(kafka.TopicEvents)
		for i, r := range kafka.NewWatermarks(kafka.TopicEvents, helpdeskflow.Position{TxID: 1, Seq: 1}, n) {
			if got := hash.Partition(r, n); got != i || r.Partition != int32(i) {
				t.Fatalf("%d partitions: watermark %d goes to partition %d (field %d)", n, i, got, r.Partition)
			}
		}
	}
}

// TestIsWatermark_NotForEvents: neither an event's record nor its claim
// check is taken for a watermark.
func TestIsWatermark_NotForEvents(t *testing.T) {
	e := fullEvent()
	r, err := kafka.NewRecord(kafka.TopicEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kgo.Record{r, kafka.ClaimCheck(kafka.TopicEvents, e)} {
		if kafka.IsWatermark(r) {
			t.Errorf("IsWatermark(%v) = true", r.Headers)
		}
		if _, err := kafka.ParseWatermark(r); err == nil {
			t.Error("ParseWatermark of an event's record succeeded")
		}
	}
}

// produceWithWatermarks publishes n records (as produce) followed by a
// watermark on each of the 4 partitions.
func produceWithWatermarks(t *testing.T, brokers []string, n int) {
	t.Helper()
	produce(t, brokers, n, 10)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), kafka.NewWatermarks(kafka.TopicEvents, helpdeskflow.Position{TxID: 9, Seq: 9}, 4)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumer_SkipsWatermarks: a consumer that did not ask for watermarks
// never sees one in a Batch, yet commits their offsets; a poll that brings
// only watermarks makes no batch at all.
func TestConsumer_SkipsWatermarks(t *testing.T) {
	t.Parallel()
	t.Run("with events", func(t *testing.T) {
		t.Parallel()
		_, brokers := testenv.Kafka(t)
		produceWithWatermarks(t, brokers, 3)
		m := start(t, brokers, "g-skip", nil)
		testenv.Eventually(t, wait, func() error {
			if n := m.rec.added.Load(); n != 3 {
				return fmt.Errorf("%d records added, want 3", n)
			}
			return nil
		})
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := m.rec.added.Load(); got != 3 {
			t.Errorf("%d records added, want the 3 events alone", got)
		}
		if got := committed(t, brokers, "g-skip"); got != 7 {
			t.Errorf("committed %d records, want 7 (the watermarks too)", got)
		}
	})
	t.Run("watermarks alone", func(t *testing.T) {
		t.Parallel()
		_, brokers := testenv.Kafka(t)
		produceWithWatermarks(t, brokers, 0)
		m := start(t, brokers, "g-alone", func(c *kafka.ConsumerConfig) { c.FlushInterval = 10 * time.Millisecond })
		testenv.Eventually(t, wait, func() error {
			if got := committed(t, brokers, "g-alone"); got != 4 {
				return fmt.Errorf("committed %d records, want the 4 watermarks", got)
			}
			return nil
		})
		if err := m.stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if n := m.rec.batches.Load(); n != 0 {
			t.Errorf("%d batches made for watermarks alone, want none", n)
		}
	})
	t.Run("asked for", func(t *testing.T) {
		t.Parallel()
		_, brokers := testenv.Kafka(t)
		produceWithWatermarks(t, brokers, 3)
		m := start(t, brokers, "g-asked", func(c *kafka.ConsumerConfig) { c.Watermarks = true })
		testenv.Eventually(t, wait, func() error {
			if n := m.rec.added.Load(); n != 7 {
				return fmt.Errorf("%d records added, want 7", n)
			}
			return nil
		})
	})
}
