package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/relay"
)

// TestRelay_WatermarksReachEveryPartition: events of one stream go to one
// partition, yet every partition gets a watermark at least as far as the
// last event, and on the events' partition it comes after them. While the
// relay is idle it publishes its checkpoint's watermarks again.
func TestRelay_WatermarksReachEveryPartition(t *testing.T) {
	s := testenv.Store(t)
	_, brokers := testenv.Kafka(t)
	ref := testenv.NewTicketRef()
	if _, err := testenv.AppendEvents(t, s, ref, 0, 3); err != nil {
		t.Fatal(err)
	}
	stored := testenv.ReadAtLeast(t, s, helpdeskflow.Position{}, uuid.Nil, 3)
	last := stored[len(stored)-1].Position

	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(s, client, relay.Config{PollInterval: 50 * time.Millisecond, WatermarkInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	testenv.Run(t, r.Run)

	streamPartition := int32(kgo.StickyKeyPartitioner(nil).ForTopic(kafka.TopicEvents).Partition(&kgo.Record{Key: []byte(ref.ID.String())}, 4))
	reader := testenv.TopicReader(t, brokers, kafka.TopicEvents)
	defer reader.Close()
	marks := map[int32]int{}         // watermarks at last or later, per partition
	eventOffset := map[int32]int64{} // of the last event, per partition
	testenv.Eventually(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		reader.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			if !kafka.IsWatermark(rec) {
				eventOffset[rec.Partition] = rec.Offset
				return
			}
			w, err := kafka.ParseWatermark(rec)
			if err != nil {
				t.Fatal(err)
			}
			if w.Partitions != 4 || w.Partition != rec.Partition {
				t.Fatalf("watermark %+v read from partition %d of 4", w, rec.Partition)
			}
			if w.Position.Less(last) {
				return
			}
			if _, ok := eventOffset[rec.Partition]; !ok && rec.Partition == streamPartition {
				t.Fatalf("partition %d: a watermark at %v before the events it covers", rec.Partition, w.Position)
			}
			marks[rec.Partition]++
		})
		for p := int32(0); p < 4; p++ {
			if marks[p] < 2 {
				return fmt.Errorf("watermarks at or after the last event per partition: %v; want two on each (one with the batch, one while idle)", marks)
			}
		}
		return nil
	})
	if _, ok := eventOffset[streamPartition]; len(eventOffset) != 1 || !ok {
		t.Errorf("events on partitions %v, want partition %d alone", eventOffset, streamPartition)
	}
}
