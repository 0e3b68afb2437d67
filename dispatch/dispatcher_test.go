package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// key is one event's identity for deduplication: its stream and version.
type key struct {
	stream  uuid.UUID
	version int64
}

func (k key) String() string { return k.stream.String()[:8] + "@" + strconv.FormatInt(k.version, 10) }

// journal is the order in which handlers were called, shared by handlers
// (and dispatchers) of one test.
type journal struct {
	mu      sync.Mutex
	entries []entry
}

type entry struct {
	handler string // the recorder's label
	key     key
	err     error
}

func (j *journal) add(e entry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
}

// handled returns the keys label handled successfully, in order ("" for
// every label).
func (j *journal) handled(label string) []key {
	return j.filter(func(e entry) bool { return e.err == nil && (label == "" || e.handler == label) })
}

// attempts returns the keys of stream that label was called with, failed
// calls included, in order.
func (j *journal) attempts(label string, stream uuid.UUID) []int64 {
	var vs []int64
	for _, k := range j.filter(func(e entry) bool { return e.handler == label && e.key.stream == stream }) {
		vs = append(vs, k.version)
	}
	return vs
}

func (j *journal) filter(keep func(entry) bool) []key {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []key
	for _, e := range j.entries {
		if keep(e) {
			out = append(out, e.key)
		}
	}
	return out
}

// recorder is a Handler that writes every call to a journal. fail, if set,
// decides whether the n-th call (from 1) for an event fails.
type recorder struct {
	name  string // the handler name (metrics label)
	label string // who it is in the journal; defaults to name
	j     *journal
	fail  func(k key, n int) error

	mu     sync.Mutex
	tries  map[key]int
	events map[key]helpdeskflow.Event
}

func newRecorder(name string, j *journal) *recorder {
	return &recorder{name: name, label: name, j: j, tries: map[key]int{}, events: map[key]helpdeskflow.Event{}}
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Handle(ctx context.Context, e helpdeskflow.Event) error {
	k := key{e.StreamID, e.Version}
	r.mu.Lock()
	r.tries[k]++
	n := r.tries[k]
	r.events[k] = e
	r.mu.Unlock()
	var err error
	if r.fail != nil {
		err = r.fail(k, n)
	}
	r.j.add(entry{handler: r.label, key: k, err: err})
	return err
}

func (r *recorder) event(k key) helpdeskflow.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[k]
}

func newEvent(stream uuid.UUID, version int64) helpdeskflow.Event {
	typ := helpdeskflow.EventTicketMessageAdded
	if version == 1 {
		typ = helpdeskflow.EventTicketCreated
	}
	return helpdeskflow.Event{
		ID: uuid.New(), Type: typ, SchemaVersion: helpdeskflow.CurrentEventSchemaVersion,
		StreamID: stream, StreamType: helpdeskflow.StreamTicket, Version: version,
		WorkspaceID: uuid.New(), OccurredAt: time.Now().UTC().Truncate(time.Microsecond),
		Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, version)),
		Metadata: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem},
	}
}

// produce publishes events as the relay does: value the JSON event, key the
// stream id. One call keeps the order of its events per partition.
func produce(t *testing.T, brokers []string, events ...helpdeskflow.Event) {
	t.Helper()
	records := make([]*kgo.Record, len(events))
	for i, e := range events {
		value, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		records[i] = &kgo.Record{Key: []byte(e.StreamID.String()), Value: value}
	}
	produceRecords(t, brokers, records...)
}

func produceRecords(t *testing.T, brokers []string, records ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(kafka.TopicEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// config is a dispatcher configuration with short backoffs and fetch waits,
// so tests are fast. Set HDF_TEST_LOG=1 to see the dispatcher's logs.
func config(brokers []string, pool *pg.DB, group string, reg prometheus.Registerer, handlers ...dispatch.Handler) dispatch.Config {
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("HDF_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return dispatch.Config{
		Brokers: brokers, Group: group, Pool: pool, Handlers: handlers,
		RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 40 * time.Millisecond,
		Logger: logger, Registerer: reg,
		ExtraOpts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond), kgo.HeartbeatInterval(100 * time.Millisecond)},
	}
}

// start runs a dispatcher until the returned stop is called or the test
// ends; stop fails the test unless Run returns nil within 10 s.
func start(t *testing.T, cfg dispatch.Config) (stop func()) {
	t.Helper()
	d, err := dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10 s of the cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// metric reads a metric of reg (see testenv.Metric).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	return testenv.Metric(t, reg, name, labels...)
}

func progress(t *testing.T, pool *pg.DB, consumer string, stream uuid.UUID) int64 {
	t.Helper()
	var v int64
	err := pool.Pool().QueryRow(context.Background(), `SELECT version FROM dispatch_progress WHERE consumer = $1 AND stream_id = $2`, consumer, stream).Scan(&v)
	if err != nil {
		t.Fatalf("progress of %s: %v", stream, err)
	}
	return v
}

// checkOnceInOrder fails t unless got holds every key of want exactly once
// and the versions of each stream ascend.
func checkOnceInOrder(t *testing.T, got []key, want []key) {
	t.Helper()
	count := map[key]int{}
	last := map[uuid.UUID]int64{}
	for _, k := range got {
		count[k]++
		if k.version <= last[k.stream] {
			t.Errorf("%s handled after version %d of its stream", k, last[k.stream])
		}
		last[k.stream] = k.version
	}
	for _, k := range want {
		if count[k] != 1 {
			t.Errorf("%s handled %d times, want 1", k, count[k])
		}
		delete(count, k)
	}
	for k, n := range count {
		t.Errorf("%s handled %d times, want 0", k, n)
	}
}

// settle gives a wrongly repeated delivery time to show up.
func settle() { time.Sleep(300 * time.Millisecond) }

func TestDispatcher_Run(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	rec := newRecorder("recorder", j)
	reg := prometheus.NewRegistry()
	start(t, config(brokers, pool, "g-run", reg, rec, handlers.Log{Logger: slog.New(slog.DiscardHandler)}))

	streams := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	var want []key
	var produced []helpdeskflow.Event
	for v := int64(1); v <= 5; v++ {
		var round []helpdeskflow.Event
		for _, s := range streams {
			e := newEvent(s, v)
			round = append(round, e)
			want = append(want, key{s, v})
		}
		produce(t, brokers, round...)
		produced = append(produced, round...)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.handled("recorder")); n < len(want) {
			return fmt.Errorf("%d of %d events handled", n, len(want))
		}
		return nil
	})
	settle()

	checkOnceInOrder(t, j.handled("recorder"), want)
	first := produced[0]
	got := rec.event(key{first.StreamID, first.Version})
	if got.ID != first.ID || got.Type != first.Type || string(got.Data) != string(first.Data) ||
		got.WorkspaceID != first.WorkspaceID || !got.OccurredAt.Equal(first.OccurredAt) {
		t.Errorf("handler got %+v, want %+v", got, first)
	}
	for _, s := range streams {
		if got, want := progress(t, pool, "g-run", s), int64(5); got != want {
			t.Errorf("progress of %s = %d, want %d", s, got, want)
		}
	}
	for _, h := range []string{"recorder", "log"} {
		if got, want := metric(t, reg, "helpdeskflow_dispatch_events_total", "handler", h), float64(len(want)); got != want {
			t.Errorf("events_total{handler=%q} = %v, want %v", h, got, want)
		}
		if got := metric(t, reg, "helpdeskflow_dispatch_handle_duration_seconds", "handler", h); got != float64(len(want)) {
			t.Errorf("handle_duration_seconds{handler=%q} count = %v, want %d", h, got, len(want))
		}
	}
	if got := metric(t, reg, "helpdeskflow_dispatch_duplicates_total"); got != 0 {
		t.Errorf("duplicates_total = %v, want 0", got)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		var total float64
		for p := range 4 {
			total += metric(t, reg, "helpdeskflow_dispatch_consumer_lag", "partition", strconv.Itoa(p))
		}
		if total != 0 {
			return fmt.Errorf("consumer lag = %v after every event was handled, want 0", total)
		}
		return nil
	})
}

func TestDispatcher_Run_Redelivery(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	rec := newRecorder("recorder", j)
	const consumer = "dispatch-test"

	a, b := uuid.New(), uuid.New()
	a1, a2, a3, b1, b2 := newEvent(a, 1), newEvent(a, 2), newEvent(a, 3), newEvent(b, 1), newEvent(b, 2)
	a2again := newEvent(a, 2) // the same (stream, version) with another event id: still a duplicate
	// a2 is sent twice, as a relay that crashed before its checkpoint would.
	produce(t, brokers, a1, a2, a2, b1, a3, a2again, b2, b1)
	const records = 8

	reg1 := prometheus.NewRegistry()
	cfg := config(brokers, pool, "g-first", reg1, rec)
	cfg.Consumer = consumer
	stop := start(t, cfg)
	testenv.Eventually(t, 15*time.Second, func() error {
		if n, d := len(j.handled("")), metric(t, reg1, "helpdeskflow_dispatch_duplicates_total"); n < 5 || d < 3 {
			return fmt.Errorf("%d events handled, %v duplicates skipped; want 5 and 3", n, d)
		}
		return nil
	})
	settle()
	stop()
	want := []key{{a, 1}, {a, 2}, {a, 3}, {b, 1}, {b, 2}}
	checkOnceInOrder(t, j.handled(""), want)

	// A new group has no offsets and starts at the beginning of the topic,
	// as if the first group's offsets were lost: it must skip everything.
	a4 := newEvent(a, 4)
	produce(t, brokers, a4)
	reg2 := prometheus.NewRegistry()
	cfg = config(brokers, pool, "g-second", reg2, rec)
	cfg.Consumer = consumer
	start(t, cfg)
	testenv.Eventually(t, 15*time.Second, func() error {
		if d := metric(t, reg2, "helpdeskflow_dispatch_duplicates_total"); d < records || !slices.Contains(j.handled(""), key{a, 4}) {
			return fmt.Errorf("%v duplicates skipped, a@4 handled: %v; want %d and true", d, slices.Contains(j.handled(""), key{a, 4}), records)
		}
		return nil
	})
	settle()
	checkOnceInOrder(t, j.handled(""), append(want, key{a, 4}))
	if got := metric(t, reg2, "helpdeskflow_dispatch_duplicates_total"); got != records {
		t.Errorf("second group's duplicates_total = %v, want %d", got, records)
	}
	if got, want := progress(t, pool, consumer, a), int64(4); got != want {
		t.Errorf("progress of a = %d, want %d", got, want)
	}
}

func TestDispatcher_Run_HandlerRetry(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	s, other := uuid.New(), uuid.New()
	flaky := newRecorder("flaky", j)
	flaky.fail = func(k key, n int) error {
		if k == (key{s, 2}) && n <= 3 {
			return errors.New("webhook endpoint returned 503")
		}
		return nil
	}
	steady := newRecorder("steady", j)
	reg := prometheus.NewRegistry()
	start(t, config(brokers, pool, "g-retry", reg, flaky, steady))

	produce(t, brokers, newEvent(s, 1), newEvent(s, 2), newEvent(other, 1), newEvent(s, 3))
	want := []key{{s, 1}, {s, 2}, {other, 1}, {s, 3}}
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.handled("steady")); n < len(want) {
			return fmt.Errorf("%d of %d events handled", n, len(want))
		}
		return nil
	})
	settle()

	checkOnceInOrder(t, j.handled("flaky"), want)
	checkOnceInOrder(t, j.handled("steady"), want)
	if got, want := j.attempts("flaky", s), []int64{1, 2, 2, 2, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("flaky handler's calls for the stream = %v, want %v", got, want)
	}
	// The steady handler succeeded for s@2 on the first try: it is not
	// called again while the flaky one retries, and sees s@3 only after.
	if got, want := j.attempts("steady", s), []int64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("steady handler's calls for the stream = %v, want %v", got, want)
	}
	all := j.filter(func(e entry) bool { return e.key.stream == s && e.err == nil && e.handler == "flaky" })
	if i, k := slices.Index(all, key{s, 2}), slices.Index(all, key{s, 3}); i < 0 || k < i {
		t.Errorf("s@3 handled before s@2 succeeded: %v", all)
	}
	if got := metric(t, reg, "helpdeskflow_dispatch_errors_total", "handler", "flaky"); got != 3 {
		t.Errorf("errors_total{handler=flaky} = %v, want 3", got)
	}
	if got := metric(t, reg, "helpdeskflow_dispatch_errors_total", "handler", "steady"); got != 0 {
		t.Errorf("errors_total{handler=steady} = %v, want 0", got)
	}
	if got, want := progress(t, pool, "g-retry", s), int64(3); got != want {
		t.Errorf("progress = %d, want %d", got, want)
	}
}

func TestDispatcher_Run_ShutdownWhileRetrying(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	s := uuid.New()
	broken := newRecorder("handler", j)
	broken.label = "broken"
	broken.fail = func(k key, n int) error {
		if k.version == 2 {
			return errors.New("always down")
		}
		return nil
	}
	cfg := config(brokers, pool, "g-shutdown", prometheus.NewRegistry(), broken)
	cfg.MaxRetryBackoff = time.Minute // the shutdown must not wait out a backoff
	stop := start(t, cfg)
	produce(t, brokers, newEvent(s, 1), newEvent(s, 2))
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.attempts("broken", s)); n < 4 {
			return fmt.Errorf("%d calls so far", n)
		}
		return nil
	})
	began := time.Now()
	stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %s to return after the cancellation", took)
	}
	if got, want := progress(t, pool, "g-shutdown", s), int64(1); got != want {
		t.Errorf("progress after shutdown = %d, want %d (s@1 was handled)", got, want)
	}

	// The same group resumes at s@2: s@1's offset was committed at shutdown,
	// so it is not even redelivered.
	healed := newRecorder("handler", j)
	healed.label = "healed"
	reg := prometheus.NewRegistry()
	start(t, config(brokers, pool, "g-shutdown", reg, healed))
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.handled("healed")); n < 1 {
			return errors.New("s@2 not handled yet")
		}
		return nil
	})
	settle()
	if got, want := j.handled("healed"), []key{{s, 2}}; !slices.Equal(got, want) {
		t.Errorf("after the restart handled %v, want %v", got, want)
	}
	if got := metric(t, reg, "helpdeskflow_dispatch_duplicates_total"); got != 0 {
		t.Errorf("duplicates_total after the restart = %v, want 0 (s@1's offset should be committed)", got)
	}
}

func TestDispatcher_Run_InvalidRecord(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	reg := prometheus.NewRegistry()
	start(t, config(brokers, pool, "g-invalid", reg, newRecorder("recorder", j)))
	s := uuid.New()
	e1, _ := json.Marshal(newEvent(s, 1))
	produceRecords(t, brokers,
		&kgo.Record{Key: []byte(s.String()), Value: []byte("not json")},
		&kgo.Record{Key: []byte(s.String()), Value: []byte(`{"type":"ticket.created"}`)},
		&kgo.Record{Key: []byte(s.String()), Value: e1})
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.handled("")); n < 1 {
			return errors.New("the valid event is not handled")
		}
		return nil
	})
	if got := metric(t, reg, "helpdeskflow_dispatch_internal_errors_total", "kind", "decode"); got != 2 {
		t.Errorf("internal_errors_total{kind=decode} = %v, want 2", got)
	}
}

// TestDispatcher_Run_RebalanceWhileRetrying starts a second member while
// the first retries a failing event. The first must let the rebalance
// through (rather than be kicked out after the rebalance timeout), and no
// event may be lost or handled twice across the handover.
func TestDispatcher_Run_RebalanceWhileRetrying(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	var healed atomic.Bool
	s := uuid.New()
	failUntilHealed := func(k key, n int) error {
		if k == (key{s, 2}) && !healed.Load() {
			return errors.New("down")
		}
		return nil
	}
	first, second := newRecorder("handler", j), newRecorder("handler", j)
	first.label, second.label = "first", "second"
	first.fail, second.fail = failUntilHealed, failUntilHealed
	start(t, config(brokers, pool, "g-rebalance", prometheus.NewRegistry(), first))

	var want []key
	var streams []uuid.UUID
	for range 16 {
		streams = append(streams, uuid.New())
	}
	produce(t, brokers, newEvent(s, 1), newEvent(s, 2), newEvent(s, 3))
	want = append(want, key{s, 1}, key{s, 2}, key{s, 3})
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.attempts("first", s)); n < 3 {
			return fmt.Errorf("%d calls so far", n)
		}
		return nil
	})

	start(t, config(brokers, pool, "g-rebalance", prometheus.NewRegistry(), second))
	// Keep producing events of many streams (spread over every partition)
	// until the second member is called for some while s@2 still fails: it
	// got partitions without waiting for the first member's retries (which
	// would hold the rebalance for the 60 s rebalance timeout). It may have
	// got s's partition and be stuck on s@2 in turn, so failed calls count.
	v := int64(0)
	testenv.Eventually(t, 20*time.Second, func() error {
		v++
		var round []helpdeskflow.Event
		for _, st := range streams {
			round = append(round, newEvent(st, v))
			want = append(want, key{st, v})
		}
		produce(t, brokers, round...)
		if n := len(j.filter(func(e entry) bool { return e.handler == "second" })); n == 0 {
			return errors.New("the second member has not been called yet")
		}
		return nil
	})
	healed.Store(true)
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := len(j.handled("")); n < len(want) {
			return fmt.Errorf("%d of %d events handled", n, len(want))
		}
		return nil
	})
	settle()
	checkOnceInOrder(t, j.handled(""), want)
}

type named string

func (n named) Name() string                                   { return string(n) }
func (named) Handle(context.Context, helpdeskflow.Event) error { return nil }

func TestConfig_Validate(t *testing.T) {
	pool := &pg.DB{} // never used: Validate only checks that one is given
	valid := func() dispatch.Config {
		return dispatch.Config{Brokers: []string{"127.0.0.1:9092"}, Pool: pool, Handlers: []dispatch.Handler{named("a")}}
	}
	tests := []struct {
		name   string
		modify func(*dispatch.Config)
		want   []string // substrings of the error, one per problem; none for valid
	}{
		{"valid", func(*dispatch.Config) {}, nil},
		{"valid with every default", func(c *dispatch.Config) { c.Group, c.Topic, c.Consumer, c.RetryBackoff = "", "", "", 0 }, nil},
		{"empty", func(c *dispatch.Config) { *c = dispatch.Config{} }, []string{"brokers:", "pool:", "handlers:"}},
		{"empty broker address", func(c *dispatch.Config) { c.Brokers = []string{"a:1", " "} }, []string{"brokers[1]: empty address"}},
		{"nil handler", func(c *dispatch.Config) { c.Handlers = append(c.Handlers, nil) }, []string{"handlers[1]: nil handler"}},
		{"unnamed handler", func(c *dispatch.Config) { c.Handlers = append(c.Handlers, named("")) }, []string{"handlers[1]: empty name"}},
		{"duplicate names", func(c *dispatch.Config) { c.Handlers = append(c.Handlers, named("b"), named("a")) }, []string{`handlers[2]: name "a" is already used by handlers[0]`}},
		{"max backoff below backoff", func(c *dispatch.Config) { c.RetryBackoff, c.MaxRetryBackoff = time.Second, time.Millisecond }, []string{"max retry backoff:"}},
		{"several at once", func(c *dispatch.Config) { c.Pool, c.Handlers = nil, []dispatch.Handler{nil} }, []string{"pool:", "handlers[0]: nil handler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if got, want := len(strings.Split(err.Error(), "\n")), len(tt.want); got != want {
				t.Errorf("Validate() reports %d problems, want %d: %v", got, want, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to name %q", err, w)
				}
			}
			_, err = dispatch.New(cfg)
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
				t.Errorf("New() error code = %q, want %q (err %v)", got, want, err)
			}
		})
	}
}

func TestNew_SharedRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := dispatch.Config{Brokers: []string{"127.0.0.1:9092"}, Pool: &pg.DB{}, Handlers: []dispatch.Handler{named("a")}, Registerer: reg}
	for i := range 2 {
		if _, err := dispatch.New(cfg); err != nil {
			t.Fatalf("New #%d on one registerer: %v", i+1, err)
		}
	}
	if got := metric(t, reg, "helpdeskflow_dispatch_events_total", "handler", "a"); got != 0 {
		t.Errorf("events_total = %v, want a zero series", got)
	}
}
