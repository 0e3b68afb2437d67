package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// applied reads the applied position.
func applied(t *testing.T, conn driver.Conn) helpdeskflow.Position {
	t.Helper()
	p, err := projections.NewPositionReader(conn).Applied(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProjector_SavesAppliedPositions: the projector keeps, per partition,
// how far its inserted batches reach (events and watermarks alike); the
// applied position is the smallest of them, known only once every
// partition has one, and watermarks move idle partitions.
func TestProjector_SavesAppliedPositions(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	w := newWorld()
	ticket := uuid.New()
	created := w.ticketCreated(ticket, uuid.New(), helpdeskflow.TicketCreated{})
	created.Position = helpdeskflow.Position{TxID: 10, Seq: 1}
	produce(t, brokers, created)
	rp := startProjector(t, conn, brokers, "g-positions")
	eventually(t, 20*time.Second, "the event's partition saved", func() bool {
		return queryUint(t, conn, "SELECT count() FROM projection_positions") > 0
	})
	if got := applied(t, conn); got != (helpdeskflow.Position{}) {
		t.Errorf("applied = %v before any watermark, want nothing known", got)
	}
	if n := queryUint(t, conn, "SELECT count() FROM tickets"); n != 1 {
		t.Errorf("%d tickets projected, want 1 (positions only after the rows)", n)
	}

	produceRecords(t, brokers, kafka.NewWatermarks(kafka.TopicEvents, created.Position, 4)...)
	eventually(t, 20*time.Second, "every partition at the watermark", func() bool { return applied(t, conn) == created.Position })

	// A later event on one partition moves that partition alone: the
	// others still say (10, 1).
	update := w.event(helpdeskflow.StreamTicket, ticket, 2, helpdeskflow.EventTicketUpdated,
		map[string]any{"priority": map[string]string{"old": "normal", "new": "high"}})
	update.Position = helpdeskflow.Position{TxID: 11, Seq: 5}
	produce(t, brokers, update)
	eventually(t, 20*time.Second, "the event's partition at (11, 5)", func() bool {
		return queryUint(t, conn, "SELECT count() FROM projection_positions WHERE tx_id = 11 AND seq = 5") == 1
	})
	if got := applied(t, conn); got != created.Position {
		t.Errorf("applied = %v, want %v: the idle partitions hold it back", got, created.Position)
	}
	later := helpdeskflow.Position{TxID: 11, Seq: 5}
	produceRecords(t, brokers, kafka.NewWatermarks(kafka.TopicEvents, later, 4)...)
	eventually(t, 20*time.Second, "the idle partitions moved by watermarks", func() bool { return applied(t, conn) == later })
	if got := rp.metric(t, "helpdeskflow_projector_errors_total", "kind", kafka.ErrKindDecode); got != 0 {
		t.Errorf("%v decode errors: watermarks are not errors", got)
	}
	if got := queryUint(t, conn, "SELECT count() FROM audit_log"); got != 2 {
		t.Errorf("%d audit rows, want the 2 events' (no row for a watermark)", got)
	}
}

// insertPositions writes the positions table as the projector would: p
// for the first n of partitions partitions.
func insertPositions(t *testing.T, conn driver.Conn, n, partitions int, p helpdeskflow.Position) {
	t.Helper()
	batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO projection_positions (kafka_partition, partitions, tx_id, seq)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := batch.Append(uint32(i), uint32(partitions), p.TxID, p.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestPositionWatcher_WaitFor: a wait for a position the read model has
// not reached ends after maxWait, not reached, with the current position;
// one that it reaches meanwhile ends reached.
func TestPositionWatcher_WaitFor(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	first, second := helpdeskflow.Position{TxID: 5, Seq: 9}, helpdeskflow.Position{TxID: 6, Seq: 1}
	insertPositions(t, conn, 2, 2, first)
	watcher := projections.NewPositionWatcher(projections.NewPositionReader(conn), projections.PositionWatcherConfig{PollInterval: 10 * time.Millisecond})
	ctx := context.Background()

	if got, reached, err := watcher.WaitFor(ctx, first, time.Minute); err != nil || !reached || got != first {
		t.Errorf("WaitFor(reached) = %v, %t, %v; want %v at once", got, reached, err, first)
	}
	if got, reached, err := watcher.WaitFor(ctx, second, 50*time.Millisecond); err != nil || reached || got != first {
		t.Errorf("WaitFor(ahead) = %v, %t, %v; want %v, not reached", got, reached, err, first)
	}
	type result struct {
		p       helpdeskflow.Position
		reached bool
		err     error
	}
	done := make(chan result, 3)
	for range 3 {
		go func() {
			p, reached, err := watcher.WaitFor(ctx, second, time.Minute)
			done <- result{p, reached, err}
		}()
	}
	insertPositions(t, conn, 2, 2, second)
	for range 3 {
		if r := <-done; r.err != nil || !r.reached || r.p != second {
			t.Errorf("WaitFor = %+v; want %v reached", r, second)
		}
	}
	if got, err := watcher.Current(ctx); err != nil || got.Less(second) {
		t.Errorf("Current = %v, %v; want at least %v", got, err, second)
	}
}

// TestPositionReader_PartitionWithoutPosition: while one partition of the
// topic has no position, nothing is known to be applied.
func TestPositionReader_PartitionWithoutPosition(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	insertPositions(t, conn, 1, 1, helpdeskflow.Position{TxID: 3, Seq: 3})
	if got := applied(t, conn); got != (helpdeskflow.Position{TxID: 3, Seq: 3}) {
		t.Fatalf("applied = %v, want (3, 3)", got)
	}
	// The relay now announces 3 partitions: 1 and 2 have no position yet.
	insertPositions(t, conn, 1, 3, helpdeskflow.Position{TxID: 4, Seq: 1})
	if got := applied(t, conn); got != (helpdeskflow.Position{}) {
		t.Errorf("applied = %v with partitions 1 and 2 unknown, want nothing", got)
	}
	// Rows saved from events alone (before the projector saw a watermark
	// since its start) say 0 partitions; the count announced before holds.
	insertPositions(t, conn, 3, 0, helpdeskflow.Position{TxID: 5, Seq: 1})
	if got, want := applied(t, conn), (helpdeskflow.Position{TxID: 5, Seq: 1}); got != want {
		t.Errorf("applied = %v, want %v", got, want)
	}
}
