package relay_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/relay"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// startRelayWith runs a relay with cfg (and a fast poll) on s until the
// test ends, producing through client.
func startRelayWith(t *testing.T, s *eventstore.Store, client *kgo.Client, cfg relay.Config) {
	t.Helper()
	cfg.PollInterval, cfg.RetryBackoff = 100*time.Millisecond, 50*time.Millisecond
	r, err := relay.New(s, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, r.Run)
}

func producer(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(helpdeskflow.MaxRecordBytes))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// insertRawEvent writes a stream of one event straight into the tables,
// around Append and its size check, as an older version or a bug could
// have: the relay must still publish past it.
func insertRawEvent(t *testing.T, db *pg.DB, ref helpdeskflow.StreamRef, data string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := db.Pool().Exec(context.Background(), `WITH st AS (INSERT INTO streams (id, workspace_id, type, version) VALUES ($1, $2, $3, 1))
		INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata)
		VALUES ($4, $1, $3, 1, $2, 'ticket.message_added', 1, $5::jsonb, '{"actor":{"type":"system"},"channel":"system"}')`,
		ref.ID, ref.WorkspaceID, ref.Type, id, data)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRelay_OversizedEventIsClaimCheck is the poison event: an event over
// the size cap, already in the table, used to be retried forever with
// every later event behind it. Now it travels as a claim check that
// resolves to the stored event, and the later events of other workspaces
// follow it.
func TestRelay_OversizedEventIsClaimCheck(t *testing.T) {
	db := testenv.Postgres(t)
	s := testenv.StoreOn(t, db)
	_, brokers := testenv.Kafka(t)
	poison := testenv.NewTicketRef()
	big := `{"body":"` + strings.Repeat("<", 1_200_000) + `"}`
	poisonID := insertRawEvent(t, db, poison, big)
	var later []helpdeskflow.StreamRef
	for range 5 {
		ref := testenv.NewTicketRef()
		later = append(later, ref)
		if _, err := testenv.AppendEvents(t, s, ref, 0, 2); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	startRelayWith(t, s, producer(t, brokers), relay.Config{Registerer: reg})

	records := consumeAll(t, brokers, 11)
	if len(records) != 11 {
		t.Fatalf("consumed %d records, want the claim check and 10 later events", len(records))
	}
	seen := map[string]int{}
	for _, r := range records {
		seen[string(r.Key)]++
		if string(r.Key) != poison.ID.String() {
			if kafka.IsClaimCheck(r) {
				t.Errorf("a small event of stream %s was published as a claim check", r.Key)
			}
			continue
		}
		if !kafka.IsClaimCheck(r) || header(r, kafka.HeaderEventID) != poisonID.String() {
			t.Errorf("the oversized event was published as %d bytes with headers %v, want a claim check", len(r.Value), r.Headers)
		}
		if len(r.Value) > 1000 {
			t.Errorf("the claim check is %d bytes", len(r.Value))
		}
		events, errs, err := kafka.Decode(context.Background(), []*kgo.Record{r}, s)
		if err != nil || errs[0] != nil {
			t.Fatalf("Decode: %v %v", err, errs[0])
		}
		if events[0].ID != poisonID || len(events[0].Data) < 1_200_000 || events[0].WorkspaceID != poison.WorkspaceID {
			t.Errorf("the claim check resolved to event %s with %d bytes of data", events[0].ID, len(events[0].Data))
		}
	}
	for _, ref := range later {
		if seen[ref.ID.String()] != 2 {
			t.Errorf("stream %s: %d records, want 2", ref.ID, seen[ref.ID.String()])
		}
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_relay_claim_checks_total", "reason", "too_large"); got != 1 {
		t.Errorf("helpdeskflow_relay_claim_checks_total{reason=too_large} = %v, want 1", got)
	}
}

// TestRelay_BrokerRefusalIsClaimCheck runs a broker whose message.max.bytes
// is below an event the event store accepts: the relay publishes that
// event as a claim check, and every stream's events keep their order (the
// first time each version is seen, all lower versions have been seen).
func TestRelay_BrokerRefusalIsClaimCheck(t *testing.T) {
	s := testenv.Store(t)
	_, brokers := testenv.Kafka(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "8000"}))
	ctx := context.Background()
	refused, other := testenv.NewTicketRef(), testenv.NewTicketRef()
	for v := range 6 {
		data := fmt.Sprintf(`{"n":%d}`, v)
		if v == 2 {
			data = `{"body":"` + incompressible(20_000) + `"}` // the producer compresses batches
		}
		if err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			_, err := tx.Append(ctx, refused, int64(v), testenv.SystemMetadata, []helpdeskflow.NewEvent{{ID: uuid.New(), Type: helpdeskflow.EventTicketMessageAdded, SchemaVersion: 1, Data: []byte(data)}})
			if err == nil {
				_, err = tx.Append(ctx, other, int64(v), testenv.SystemMetadata, testenv.NewEvents(t, 1))
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	startRelayWith(t, s, producer(t, brokers), relay.Config{Registerer: reg})

	var records []*kgo.Record
	testenv.Eventually(t, 20*time.Second, func() error {
		records = consumeAll(t, brokers, 12)
		if got := firstSeenVersions(t, records); len(got[refused.ID.String()]) < 6 || len(got[other.ID.String()]) < 6 {
			return fmt.Errorf("versions seen so far: %v", got)
		}
		return nil
	})
	for stream, versions := range firstSeenVersions(t, records) {
		for i, v := range versions {
			if v != int64(i+1) {
				t.Errorf("stream %s: versions first seen in the order %v, want 1…6", stream, versions)
				break
			}
		}
	}
	for _, r := range records {
		isRefused := string(r.Key) == refused.ID.String() && header(r, kafka.HeaderVersion) == "3"
		if kafka.IsClaimCheck(r) != isRefused && (!isRefused || len(r.Value) > 8000) {
			t.Errorf("record %s v%s: claim check %v, %d bytes", r.Key, header(r, kafka.HeaderVersion), kafka.IsClaimCheck(r), len(r.Value))
		}
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_relay_claim_checks_total", "reason", "refused"); got != 1 {
		t.Errorf("helpdeskflow_relay_claim_checks_total{reason=refused} = %v, want 1", got)
	}
}

// incompressible returns n random base64 characters.
func incompressible(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:n]
}

// firstSeenVersions lists, per stream, the versions in the order each was
// first seen: what a consumer that drops versions it has passed handles.
func firstSeenVersions(t *testing.T, records []*kgo.Record) map[string][]int64 {
	t.Helper()
	out, seen := map[string][]int64{}, map[string]bool{}
	for _, r := range records {
		v, err := strconv.ParseInt(header(r, kafka.HeaderVersion), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		key := string(r.Key) + "/" + strconv.FormatInt(v, 10)
		if !seen[key] {
			seen[key] = true
			out[string(r.Key)] = append(out[string(r.Key)], v)
		}
	}
	return out
}

// TestRelay_LagWhileStuck: with the broker gone, the relay cannot move its
// checkpoint, and its lag gauges say so (they used to read 0).
func TestRelay_LagWhileStuck(t *testing.T) {
	s := testenv.Store(t)
	cluster, brokers := testenv.Kafka(t)
	reg := prometheus.NewRegistry()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordDeliveryTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	startRelayWith(t, s, client, relay.Config{Registerer: reg})
	t.Cleanup(client.Close) // after the relay stopped: cleanups run last-in first-out
	appendTickets(t, s, 1)
	if got := len(consumeAll(t, brokers, 1)); got != 1 {
		t.Fatalf("published %d events before the broker stopped, want 1", got)
	}
	cluster.Close()
	appendTickets(t, s, 5)
	testenv.Eventually(t, 10*time.Second, func() error {
		n := testenv.Metric(t, reg, "helpdeskflow_relay_lag_events")
		age := testenv.Metric(t, reg, "helpdeskflow_relay_lag_seconds")
		if n < 5 || age <= 0 {
			return fmt.Errorf("lag gauges read %v events, %v s; want ≥ 5 events and a positive age", n, age)
		}
		return nil
	})
}

// TestRelay_CompactsDataOverTheLimit: events stored while events.data was
// jsonb come back with a space after each ':' and ','. An event whose
// record is over MaxEventBytes only in that form is published as itself
// with its data compacted, not as a claim check.
func TestRelay_CompactsDataOverTheLimit(t *testing.T) {
	s := testenv.Store(t)
	_, brokers := testenv.Kafka(t)
	var data, spaced strings.Builder
	data.WriteString("{")
	spaced.WriteString("{")
	for i := range 300 {
		if i > 0 {
			data.WriteString(",")
			spaced.WriteString(", ")
		}
		fmt.Fprintf(&data, `"k%03d":1`, i)
		fmt.Fprintf(&spaced, `"k%03d": 1`, i)
	}
	data.WriteString("}")
	spaced.WriteString("}")
	ref := testenv.NewTicketRef()
	ctx := context.Background()
	if err := s.Transact(ctx, func(tx *eventstore.Tx) error {
		_, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, []helpdeskflow.NewEvent{{ID: uuid.New(), Type: helpdeskflow.EventTicketMessageAdded, SchemaVersion: 1, Data: []byte(spaced.String())}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// Headers take about 450 bytes, the spaces 599.
	startRelayWith(t, s, producer(t, brokers), relay.Config{Registerer: reg, MaxEventBytes: data.Len() + 700})

	records := consumeAll(t, brokers, 1)
	if len(records) != 1 {
		t.Fatalf("consumed %d records, want 1", len(records))
	}
	if r := records[0]; kafka.IsClaimCheck(r) || string(r.Value) != data.String() {
		t.Errorf("published a claim check %v, value %.80s…; want the event with its data compacted", kafka.IsClaimCheck(r), r.Value)
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_relay_claim_checks_total", "reason", "too_large"); got != 0 {
		t.Errorf("helpdeskflow_relay_claim_checks_total{reason=too_large} = %v, want 0", got)
	}
}
