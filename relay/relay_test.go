package relay_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/relay"
)

// startRelay runs a relay on s publishing to brokers until the test ends.
func startRelay(t *testing.T, s *eventstore.Store, brokers []string) {
	t.Helper()
	startRelayPolling(t, s, brokers, 100*time.Millisecond)
}

func startRelayPolling(t *testing.T, s *eventstore.Store, brokers []string, poll time.Duration) {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(s, client, relay.Config{PollInterval: poll, RetryBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close) // after the relay stops (cleanups run last first)
	testenv.Run(t, r.Run)
}

// consumeAll reads the events topic from the start until want records of
// events have arrived (or 20 s pass) and returns them, without the
// watermarks between them.
func consumeAll(t *testing.T, brokers []string, want int) []*kgo.Record {
	t.Helper()
	client := testenv.TopicReader(t, brokers, kafka.TopicEvents)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var records []*kgo.Record
	keep := func(r *kgo.Record) {
		if !kafka.IsWatermark(r) {
			records = append(records, r)
		}
	}
	for len(records) < want && ctx.Err() == nil {
		client.PollFetches(ctx).EachRecord(keep)
	}
	// Anything beyond want would be a duplicate: give it a moment to show.
	extra, cancelExtra := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelExtra()
	client.PollFetches(extra).EachRecord(keep)
	return records
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestReadAfter_LateCommit(t *testing.T) {
	s := testenv.Store(t)
	_, brokers := testenv.Kafka(t)
	ctx := context.Background()

	first, late, later := testenv.NewTicketRef(), testenv.NewTicketRef(), testenv.NewTicketRef()
	if _, err := testenv.AppendEvents(t, s, first, 0, 1); err != nil {
		t.Fatal(err)
	}
	events := testenv.ReadAtLeast(t, s, helpdeskflow.Position{}, uuid.Nil, 1)
	if len(events) != 1 {
		t.Fatalf("ReadAfter = %d events; want the first one", len(events))
	}
	cursor := events[0].Position

	// The late transaction appends and stays open while a later one commits.
	appended, release, committed := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		committed <- s.Transact(ctx, func(tx *eventstore.Tx) error {
			if _, err := tx.Append(ctx, late, 0, testenv.SystemMetadata, testenv.NewEvents(t, 1)); err != nil {
				return err
			}
			// Appends go out with the next statement: make this one write now.
			if own, err := tx.Load(ctx, late.ID); err != nil || len(own) != 1 {
				close(appended)
				return fmt.Errorf("the late transaction sees %d of its own events (%v)", len(own), err)
			}
			close(appended)
			<-release
			return nil
		})
	}()
	<-appended
	// However this test ends, the late transaction must end too.
	var releaseOnce sync.Once
	releaseLate := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseLate)
	if _, err := testenv.AppendEvents(t, s, later, 0, 1); err != nil {
		t.Fatal(err)
	}
	startRelay(t, s, brokers)

	events, err := s.ReadAfter(ctx, cursor, 100, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Fatalf("while an earlier transaction is open the reader returned %d events after the cursor; it must wait for the horizon", len(events))
	}

	releaseLate()
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	events = testenv.ReadAtLeast(t, s, cursor, uuid.Nil, 2)
	if len(events) != 2 || events[0].StreamID != late.ID || events[1].StreamID != later.ID {
		t.Fatalf("after the late commit ReadAfter returned %v, want the late then the later event", streamIDs(events))
	}

	records := consumeAll(t, brokers, 3)
	seen := map[string]int{}
	for _, r := range records {
		seen[string(r.Key)]++
	}
	for _, ref := range []helpdeskflow.StreamRef{first, late, later} {
		if got := seen[ref.ID.String()]; got != 1 {
			t.Errorf("stream %s published %d times, want once", ref.ID, got)
		}
	}
	if len(records) != 3 {
		t.Errorf("relay published %d records, want 3", len(records))
	}
}

func streamIDs(events []helpdeskflow.Event) []uuid.UUID {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.StreamID
	}
	return ids
}

func TestRelay_PublishesWithHeadersOnce(t *testing.T) {
	s := testenv.Store(t)
	_, brokers := testenv.Kafka(t)
	// Two relays of the same name: one leads, the other stands by, so
	// nothing is published twice.
	startRelay(t, s, brokers)
	startRelay(t, s, brokers)

	const streams, perStream = 20, 5
	refs := make([]helpdeskflow.StreamRef, streams)
	for i := range refs {
		refs[i] = testenv.NewTicketRef()
		if _, err := testenv.AppendEvents(t, s, refs[i], 0, perStream); err != nil {
			t.Fatal(err)
		}
	}
	records := consumeAll(t, brokers, streams*perStream)
	if got, want := len(records), streams*perStream; got != want {
		t.Fatalf("consumed %d records, want %d", got, want)
	}
	lastVersion := map[string]int64{}
	for _, r := range records {
		v, err := strconv.ParseInt(header(r, kafka.HeaderVersion), 10, 64)
		if err != nil {
			t.Fatalf("version header: %v", err)
		}
		if v != lastVersion[string(r.Key)]+1 {
			t.Errorf("stream %s: version %d after %d, want per-stream order", r.Key, v, lastVersion[string(r.Key)])
		}
		lastVersion[string(r.Key)] = v
		if header(r, kafka.HeaderEventID) == "" || header(r, kafka.HeaderEventType) != helpdeskflow.EventTicketMessageAdded {
			t.Errorf("record headers = %v", r.Headers)
		}
	}
	for _, ref := range refs {
		if got := header(records[0], kafka.HeaderWorkspaceID); got == "" {
			t.Fatalf("no workspace header")
		}
		if lastVersion[ref.ID.String()] != perStream {
			t.Errorf("stream %s reached version %d, want %d", ref.ID, lastVersion[ref.ID.String()], perStream)
		}
	}
}

func TestRelay_BrokerRestartWithDataDir(t *testing.T) {
	s := testenv.Store(t)
	dir := t.TempDir()
	port := freePort(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir),
		kfake.SeedTopics(4, kafka.TopicEvents))
	if err != nil {
		t.Fatal(err)
	}
	brokers := cluster.ListenAddrs()
	startRelay(t, s, brokers)

	appendTickets(t, s, 10)
	if got := len(consumeAll(t, brokers, 10)); got != 10 {
		t.Fatalf("before restart: %d records, want 10", got)
	}

	cluster.Close()
	// Events committed while the broker is down wait in Postgres.
	appendTickets(t, s, 10)
	cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("restart broker: %v", err)
	}
	defer cluster.Close()

	records := consumeAll(t, brokers, 20)
	if got := len(records); got != 20 {
		t.Fatalf("after restart: %d records, want 20 (10 kept on disk, 10 published after)", got)
	}
}

// appendTickets appends one event each to n new tickets.
func appendTickets(t *testing.T, s *eventstore.Store, n int) {
	t.Helper()
	for range n {
		if _, err := testenv.AppendEvents(t, s, testenv.NewTicketRef(), 0, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRelay_WokenByNotification(t *testing.T) {
	s := testenv.Store(t)
	_, brokers := testenv.Kafka(t)
	// With a poll interval far beyond the test's patience, only the
	// notification sent after each commit can wake the relay in time.
	startRelayPolling(t, s, brokers, time.Hour)
	time.Sleep(500 * time.Millisecond) // let it become leader and LISTEN
	for i := range 3 {
		appendTickets(t, s, 1)
		if got := len(consumeAll(t, brokers, i+1)); got != i+1 {
			t.Fatalf("after commit %d the relay published %d events, want %d", i+1, got, i+1)
		}
	}
}
