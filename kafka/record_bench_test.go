package kafka_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// benchEvent is a ticket.created event as the relay reads it from
// Postgres (jsonb's text form: a space after each ':' and ','), with
// API-key metadata: what most records on the events topic are.
func benchEvent(b *testing.B) helpdeskflow.Event {
	data, err := helpdeskflow.MarshalJSON(helpdeskflow.TicketCreated{
		Subject: "Order 4711 arrived damaged", Status: "open", Priority: "normal", Type: "problem", Channel: "api",
		Tags: []string{"shipping", "damaged"}, CustomerID: uuid.New(),
		Message: helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: "customer",
			Body: "<p>" + strings.Repeat("The parcel was crushed on arrival. ", 12) + "</p>", BodyText: strings.Repeat("The parcel was crushed on arrival. ", 12)},
	})
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte(`":`), []byte(`": `)), []byte(`,"`), []byte(`, "`))
	return helpdeskflow.Event{ID: uuid.New(), Type: helpdeskflow.EventTicketCreated, SchemaVersion: 1,
		StreamID: uuid.New(), StreamType: helpdeskflow.StreamTicket, Version: 1, WorkspaceID: uuid.New(),
		OccurredAt: time.Now().UTC().Truncate(time.Microsecond), Data: data,
		Metadata: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: uuid.NewString()},
			Channel: helpdeskflow.ChannelAPI, RequestID: "req_" + strings.Repeat("f", 32)},
		Position: helpdeskflow.Position{TxID: 123456789, Seq: 987654}}
}

// BenchmarkRecordRoundTrip is the per-event cost of the wire format: the
// relay's NewRecord and a consumer's Decode (in batches of 1,000, as the
// consumers poll them), per event.
func BenchmarkRecordRoundTrip(b *testing.B) {
	e := benchEvent(b)
	const batch = 1000
	records := make([]*kgo.Record, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := kafka.NewRecord(kafka.TopicEvents, e)
		if err != nil {
			b.Fatal(err)
		}
		records[i%batch] = r
		if i%batch == batch-1 || i == b.N-1 {
			n := i%batch + 1
			_, errs, err := kafka.Decode(context.Background(), records[:n], nil)
			if err != nil || errs[0] != nil {
				b.Fatal(err, errs[0])
			}
		}
	}
}
