package projections_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

func clickHouseAddr() string {
	if addr := os.Getenv("HDF_CLICKHOUSE_ADDR"); addr != "" {
		return addr
	}
	return "127.0.0.1:29000"
}

// newDB creates a database t_<random> on the test ClickHouse, migrates it
// and drops it when the test ends. An unreachable server fails the test in
// CI (env CI set) and skips it elsewhere.
func newDB(t testing.TB) (driver.Conn, string) {
	t.Helper()
	conn, name := newBareDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := projections.Migrate(ctx, conn); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return conn, name
}

// newBareDB is newDB without the migrations.
func newBareDB(t testing.TB) (driver.Conn, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := projections.OpenClickHouse(ctx, clickHouseAddr(), name)
	if err != nil {
		if helpdeskflow.ErrorCode(err) == helpdeskflow.EUnavailable && os.Getenv("CI") == "" {
			t.Skipf("ClickHouse at %s unreachable (set HDF_CLICKHOUSE_ADDR): %v", clickHouseAddr(), err)
		}
		t.Fatalf("OpenClickHouse(%s): %v", clickHouseAddr(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		_ = conn.Close()
	})
	return conn, name
}

// newKafka starts a kfake broker with the events topic (4 partitions).
func newKafka(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, kafka.TopicEvents))
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// produce publishes events as the relay does (kafka.NewRecord).
func produce(t *testing.T, brokers []string, events ...helpdeskflow.Event) {
	t.Helper()
	records := make([]*kgo.Record, 0, len(events))
	for _, e := range events {
		r, err := kafka.NewRecord(kafka.TopicEvents, e)
		if err != nil {
			t.Fatalf("NewRecord: %v", err)
		}
		records = append(records, r)
	}
	produceRecords(t, brokers, records...)
}

// produceFirstFormat publishes events as relays before kafka.FormatData
// did: the JSON of the whole event as the value, four headers.
func produceFirstFormat(t *testing.T, brokers []string, events ...helpdeskflow.Event) {
	t.Helper()
	records := make([]*kgo.Record, 0, len(events))
	for _, e := range events {
		value, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal event: %v", err)
		}
		records = append(records, &kgo.Record{
			Topic: kafka.TopicEvents,
			Key:   []byte(e.StreamID.String()),
			Value: value,
			Headers: []kgo.RecordHeader{
				{Key: kafka.HeaderEventID, Value: []byte(e.ID.String())},
				{Key: kafka.HeaderEventType, Value: []byte(e.Type)},
				{Key: kafka.HeaderVersion, Value: []byte(strconv.FormatInt(e.Version, 10))},
				{Key: kafka.HeaderWorkspaceID, Value: []byte(e.WorkspaceID.String())},
			},
		})
	}
	produceRecords(t, brokers, records...)
}

func produceRecords(t testing.TB, brokers []string, records ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// runningProjector is a projector (Projector or RequestLogProjector)
// running in the background of a test.
type runningProjector struct {
	name   string // in the failure of a stop that times out
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startProjector runs a projector with test-friendly timings; the test's
// cleanup stops it if the test did not.
func startProjector(t *testing.T, conn driver.Conn, brokers []string, group string, tweak ...func(*projections.Config)) *runningProjector {
	t.Helper()
	cfg, reg := testConfig(t, conn, brokers, group, tweak)
	p, err := projections.NewProjector(cfg)
	if err != nil {
		t.Fatalf("NewProjector: %v", err)
	}
	return runInBackground(t, "projector", reg, p.Run)
}

// testConfig is a projector's configuration with test-friendly timings and
// a registry of its own, changed by tweak.
func testConfig(t testing.TB, conn driver.Conn, brokers []string, group string, tweak []func(*projections.Config)) (projections.Config, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	cfg := projections.Config{
		Brokers:         brokers,
		Group:           group,
		FlushInterval:   50 * time.Millisecond,
		RetryBackoff:    20 * time.Millisecond,
		MaxRetryBackoff: 100 * time.Millisecond,
		ShutdownTimeout: 3 * time.Second,
		ClickHouse:      conn,
		Logger:          slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel})),
		Registerer:      reg,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return cfg, reg
}

// runInBackground calls run (a projector's Run) on a goroutine; the test's
// cleanup stops it if the test did not.
func runInBackground(t *testing.T, name string, reg *prometheus.Registry, run func(context.Context) error) *runningProjector {
	ctx, cancel := context.WithCancel(context.Background())
	rp := &runningProjector{name: name, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { rp.done <- run(ctx) }()
	t.Cleanup(func() { rp.stop(t) })
	return rp
}

// stop cancels the projector and returns Run's error.
func (rp *runningProjector) stop(t *testing.T) error {
	t.Helper()
	rp.once.Do(func() {
		rp.cancel()
		select {
		case rp.err = <-rp.done:
		case <-time.After(20 * time.Second):
			rp.err = errors.New(rp.name + " did not stop within 20s")
			t.Error(rp.err)
		}
	})
	return rp.err
}

// metric reads a metric of the projector's registry (see testenv.Metric).
func (rp *runningProjector) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return testenv.Metric(t, rp.reg, name, labels...)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queryUint(t *testing.T, conn driver.Conn, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// world builds events of one workspace with increasing times.
type world struct {
	workspace uuid.UUID
	keyID     uuid.UUID
	now       time.Time
}

func newWorld() *world {
	return &world{workspace: uuid.New(), keyID: uuid.New(), now: time.Date(2024, 5, 1, 12, 0, 0, 123_000_000, time.UTC)}
}

func (w *world) event(streamType string, stream uuid.UUID, version int64, typ string, data any) helpdeskflow.Event {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	w.now = w.now.Add(1500 * time.Millisecond)
	return helpdeskflow.Event{
		ID: uuid.New(), Type: typ, SchemaVersion: helpdeskflow.CurrentEventSchemaVersion,
		StreamID: stream, StreamType: streamType, Version: version, WorkspaceID: w.workspace,
		OccurredAt: w.now, Data: raw,
		Metadata: helpdeskflow.Metadata{
			Actor:   helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: w.keyID.String()},
			Channel: helpdeskflow.ChannelAPI, RequestID: "req_" + uuid.NewString()[:8],
			CorrelationID: "corr-1",
		},
	}
}

func (w *world) ticketCreated(ticket, customer uuid.UUID, d helpdeskflow.TicketCreated) helpdeskflow.Event {
	d.CustomerID = customer
	if d.Subject == "" {
		d.Subject = "Refund please"
	}
	if d.Status == "" {
		d.Status = helpdeskflow.StatusNew
	}
	if d.Priority == "" {
		d.Priority = helpdeskflow.PriorityNormal
	}
	if d.Channel == "" {
		d.Channel = helpdeskflow.ChannelAPI
	}
	if d.Message.ID == uuid.Nil {
		d.Message = helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorCustomer, Body: "<p>Hi</p>", BodyText: "Hi"}
	}
	return w.event(helpdeskflow.StreamTicket, ticket, 1, helpdeskflow.EventTicketCreated, d)
}

func ptr[T any](v T) *T { return &v }

var testLogLevel = func() slog.Level {
	if os.Getenv("HDF_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()
