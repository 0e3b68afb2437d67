package kafka_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

var md = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}

// stored appends one event with data to a new stream and returns it as
// the store keeps it.
func stored(t *testing.T, s *eventstore.Store, data string) helpdeskflow.Event {
	t.Helper()
	ref := helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: uuid.New(), Type: helpdeskflow.StreamTicket}
	err := s.Transact(context.Background(), func(tx *eventstore.Tx) error {
		_, err := tx.Append(context.Background(), ref, 0, md, []helpdeskflow.NewEvent{{ID: uuid.New(), Type: helpdeskflow.EventTicketMessageAdded, SchemaVersion: 1, Data: []byte(data)}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.Load(context.Background(), ref.WorkspaceID, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	return events[0]
}

func TestDecode(t *testing.T) {
	s := testenv.Store(t)
	plain := stored(t, s, `{"body":"<b>plain</b>"}`)
	checked := stored(t, s, `{"body":"claim-checked"}`)
	unknown := checked
	unknown.ID = uuid.New()

	plainRecord, err := kafka.NewRecord(kafka.TopicEvents, plain)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(plainRecord.Key), plain.StreamID.String(); got != want {
		t.Errorf("key = %s, want the stream id %s", got, want)
	}
	records := []*kgo.Record{
		plainRecord,
		kafka.ClaimCheck(kafka.TopicEvents, checked),
		kafka.ClaimCheck(kafka.TopicEvents, unknown),
		{Value: []byte(`not json`)},
		{Value: []byte(`{"id":"` + uuid.NewString() + `"}`)},
	}
	if kafka.IsClaimCheck(records[0]) || !kafka.IsClaimCheck(records[1]) {
		t.Fatal("IsClaimCheck does not tell records from claim checks")
	}
	events, errs, err := kafka.Decode(context.Background(), records, s)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || events[0].ID != plain.ID || string(events[0].Data) != `{"body":"<b>plain</b>"}` {
		t.Errorf("record: event %+v, err %v", events[0], errs[0])
	}
	if errs[1] != nil || events[1].ID != checked.ID || string(events[1].Data) != `{"body":"claim-checked"}` || events[1].Metadata != md {
		t.Errorf("claim check: event %+v, err %v; want the stored event with its data and metadata", events[1], errs[1])
	}
	if !errors.Is(errs[2], kafka.ErrClaimCheckUnresolved) {
		t.Errorf("claim check of an unknown event: err %v, want ErrClaimCheckUnresolved", errs[2])
	}
	for i := 3; i < 5; i++ {
		if !errors.Is(errs[i], kafka.ErrNotAnEvent) {
			t.Errorf("record %d: err %v, want ErrNotAnEvent", i, errs[i])
		}
	}

	// Without a loader a claim check cannot be resolved, and says so.
	_, errs, err = kafka.Decode(context.Background(), records[1:2], nil)
	if err != nil || !errors.Is(errs[0], kafka.ErrClaimCheckUnresolved) {
		t.Errorf("without a loader: err %v, record err %v", err, errs[0])
	}
}

// TestNew_LargestEventFitsTheDefaultBroker produces an incompressible event
// of helpdeskflow.MaxEventBytes through a producer limited to
// MaxRecordBytes, to a broker with Kafka's default message.max.bytes: the
// largest event the store accepts is published as itself.
func TestNew_LargestEventFitsTheDefaultBroker(t *testing.T) {
	if helpdeskflow.MaxRecordBytes > 1_048_588 {
		t.Fatalf("MaxRecordBytes %d is over Kafka's default message.max.bytes", helpdeskflow.MaxRecordBytes)
	}
	_, brokers := testenv.Kafka(t)
	e := helpdeskflow.Event{ID: uuid.New(), Type: helpdeskflow.EventTicketMessageAdded, SchemaVersion: 1, StreamID: uuid.New(),
		StreamType: helpdeskflow.StreamTicket, Version: 1, WorkspaceID: uuid.New(), Metadata: md}
	e.Data = []byte(`{"body":""}`)
	envelope, err := kafka.NewRecord(kafka.TopicEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, helpdeskflow.MaxEventBytes)
	rand.Read(raw)
	e.Data = []byte(`{"body":"` + base64.StdEncoding.EncodeToString(raw)[:helpdeskflow.MaxEventBytes-kafka.RecordBytes(envelope)] + `"}`)
	record, err := kafka.NewRecord(kafka.TopicEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	if got := kafka.RecordBytes(record); got != helpdeskflow.MaxEventBytes {
		t.Fatalf("built an event record of %d bytes, want %d", got, helpdeskflow.MaxEventBytes)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(helpdeskflow.MaxRecordBytes))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.ProduceSync(context.Background(), record).FirstErr(); err != nil {
		t.Fatalf("producing an event of MaxEventBytes: %v", err)
	}
}
