package recordlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/kafka/recordlog"
)

const wait = 20 * time.Second

// testLogger is a Logger of a test with its own metrics registry.
type testLogger struct {
	*recordlog.Logger
	reg *prometheus.Registry
}

func newLogger(t *testing.T, brokers []string, tweak ...func(*recordlog.Config)) *testLogger {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := recordlog.Config{
		Brokers:    brokers,
		Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel})),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	l, err := recordlog.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return &testLogger{Logger: l, reg: reg}
}

func (l *testLogger) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return testenv.Metric(t, l.reg, name, labels...)
}

// sample returns a request of key i%3 with every field set.
func sample(i int) helpdeskflow.APIRequest {
	return helpdeskflow.APIRequest{
		Time:              time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1234567 * time.Microsecond),
		RequestID:         fmt.Sprintf("req_%032d", i),
		WorkspaceID:       uuid.MustParse("6f1c1b8e-0000-4000-8000-000000000001"),
		KeyID:             uuid.MustParse(fmt.Sprintf("6f1c1b8e-0000-4000-8000-%012d", i%3)),
		KeyPrefix:         "hdf_live_abcd",
		Method:            "POST",
		Route:             "/v1/tickets/:id",
		Path:              fmt.Sprintf("/v1/tickets/%d", i),
		Status:            201,
		Latency:           time.Duration(1000+i) * time.Microsecond,
		ClientIP:          "203.0.113.7",
		UserAgent:         "acme-sync/1.2 (+https://acme.example)",
		ErrorCode:         "",
		RateLimitCategory: "write",
	}
}

// consume reads the request log topic from the start until want records
// arrived (and a little longer, to catch extra ones) or wait passes.
func consume(t *testing.T, brokers []string, want int) []*kgo.Record {
	t.Helper()
	cl := testenv.TopicReader(t, brokers, kafka.TopicAPIRequests)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var records []*kgo.Record
	for len(records) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { records = append(records, r) })
	}
	extra, cancelExtra := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelExtra()
	cl.PollFetches(extra).EachRecord(func(r *kgo.Record) { records = append(records, r) })
	return records
}

// byRequestID decodes records and indexes them by request id, failing on
// duplicates and on keys that are not the request id.
func byRequestID(t *testing.T, records []*kgo.Record) map[string]helpdeskflow.APIRequest {
	t.Helper()
	got := map[string]helpdeskflow.APIRequest{}
	for _, r := range records {
		var req helpdeskflow.APIRequest
		if err := json.Unmarshal(r.Value, &req); err != nil {
			t.Fatalf("record value %q: %v", r.Value, err)
		}
		if string(r.Key) != req.RequestID {
			t.Errorf("record key %q, want the request id %q", r.Key, req.RequestID)
		}
		if _, dup := got[req.RequestID]; dup {
			t.Errorf("request %s published twice", req.RequestID)
		}
		got[req.RequestID] = req
	}
	return got
}

func TestLogger_Log(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	l := newLogger(t, brokers)
	const n = 50
	want := map[string]helpdeskflow.APIRequest{}
	for i := range n {
		r := sample(i)
		want[r.RequestID] = r
		l.Log(r)
	}
	records := consume(t, brokers, n)
	if got := len(records); got != n {
		t.Fatalf("%d records on %s, want %d", got, kafka.TopicAPIRequests, n)
	}
	got := byRequestID(t, records)
	for id, w := range want {
		if g := got[id]; g != w {
			t.Errorf("record %s = %+v, want %+v", id, g, w)
		}
	}
	for _, r := range records {
		if want := got[string(r.Key)].Time.Truncate(time.Millisecond); !r.Timestamp.Equal(want) {
			t.Errorf("record timestamp %s, want the request time %s", r.Timestamp, want)
		}
	}
	testenv.Eventually(t, wait, func() error {
		if got := l.metric(t, "helpdeskflow_request_log_records_total"); got != n {
			return fmt.Errorf("records_total = %v, want %d", got, n)
		}
		return nil
	})
	if got := l.metric(t, "helpdeskflow_request_log_queue_depth"); got != 0 {
		t.Errorf("queue_depth = %v, want 0", got)
	}
	if got := l.metric(t, "helpdeskflow_request_log_dropped_total"); got != 0 {
		t.Errorf("dropped_total = %v, want 0", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
}

func TestLogger_Log_Concurrent(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	l := newLogger(t, brokers)
	const goroutines, each = 8, 250
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Log(sample(g*each + i))
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	if got, want := l.metric(t, "helpdeskflow_request_log_records_total"), float64(goroutines*each); got != want {
		t.Errorf("records_total after Close = %v, want %v", got, want)
	}
	if got := len(byRequestID(t, consume(t, brokers, goroutines*each))); got != goroutines*each {
		t.Errorf("%d distinct records, want %d", got, goroutines*each)
	}
}

// Records logged while the broker is down wait in the buffer and all go out
// once it is back on the same address; nothing is dropped.
func TestLogger_BrokerDown(t *testing.T) {
	t.Parallel()
	dir, port := t.TempDir(), freePort(t)
	start := func(seed bool) *kfake.Cluster {
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir)}
		if seed {
			opts = append(opts, kfake.SeedTopics(4, kafka.TopicAPIRequests))
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatalf("start broker: %v", err)
		}
		t.Cleanup(c.Close)
		return c
	}
	cluster := start(true)
	brokers := cluster.ListenAddrs()
	l := newLogger(t, brokers)

	const before, during = 20, 30
	for i := range before {
		l.Log(sample(i))
	}
	testenv.Eventually(t, wait, func() error {
		if got := l.metric(t, "helpdeskflow_request_log_records_total"); got != before {
			return fmt.Errorf("records_total = %v, want %d", got, before)
		}
		return nil
	})

	cluster.Close()
	began := time.Now()
	for i := range during {
		l.Log(sample(before + i))
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("logging %d records with the broker down took %s", during, took)
	}
	time.Sleep(1500 * time.Millisecond) // the client notices, retries and keeps them
	if got := l.metric(t, "helpdeskflow_request_log_queue_depth"); got != during {
		t.Errorf("queue_depth while the broker is down = %v, want %d", got, during)
	}
	if got := l.metric(t, "helpdeskflow_request_log_records_total"); got != before {
		t.Errorf("records_total while the broker is down = %v, want %d", got, before)
	}

	start(false) // same port, same data directory
	testenv.Eventually(t, wait, func() error {
		if got := l.metric(t, "helpdeskflow_request_log_records_total"); got != before+during {
			return fmt.Errorf("records_total = %v, want %d", got, before+during)
		}
		return nil
	})
	got := byRequestID(t, consume(t, brokers, before+during))
	for i := range before + during {
		if _, ok := got[sample(i).RequestID]; !ok {
			t.Errorf("request %d missing after the outage", i)
		}
	}
	if got := l.metric(t, "helpdeskflow_request_log_dropped_total"); got != 0 {
		t.Errorf("dropped_total = %v, want 0", got)
	}
	if got := l.metric(t, "helpdeskflow_request_log_queue_depth"); got != 0 {
		t.Errorf("queue_depth after recovery = %v, want 0", got)
	}
}

// With the broker unreachable and the buffer full, Log keeps returning at
// once and counts what it drops; Close gives up on the buffered records
// when its context ends and counts them too.
func TestLogger_BufferFull(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	const maxBuffered, n = 10, 100_000
	l := newLogger(t, []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, func(c *recordlog.Config) {
		c.MaxBuffered = maxBuffered
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	done := make(chan time.Duration)
	go func() {
		began := time.Now()
		for i := range n {
			l.Log(sample(i))
		}
		done <- time.Since(began)
	}()
	select {
	case took := <-done:
		t.Logf("%d Log calls with a full buffer took %s (%s each)", n, took, took/n)
	case <-time.After(5 * time.Second):
		t.Fatal("Log blocked with the buffer full")
	}
	if got, want := l.metric(t, "helpdeskflow_request_log_dropped_total", "reason", "buffer_full"), float64(n-maxBuffered); got != want {
		t.Errorf("dropped_total{buffer_full} = %v, want %v", got, want)
	}
	if got := l.metric(t, "helpdeskflow_request_log_queue_depth"); got != maxBuffered {
		t.Errorf("queue_depth = %v, want %d", got, maxBuffered)
	}
	if got := l.QueueDepth(); got != maxBuffered {
		t.Errorf("QueueDepth = %d, want %d", got, maxBuffered)
	}
	if got := strings.Count(logs.String(), "records dropped"); got != 1 {
		t.Errorf("%d drop warnings, want 1 (rate-limited):\n%s", got, logs.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := l.Close(ctx)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EUnavailable; got != want {
		t.Errorf("Close = %v (code %q), want code %q", err, got, want)
	}
	if got := l.metric(t, "helpdeskflow_request_log_dropped_total", "reason", "closed"); got != maxBuffered {
		t.Errorf("dropped_total{closed} = %v, want %d", got, maxBuffered)
	}
	if got := l.metric(t, "helpdeskflow_request_log_queue_depth"); got != 0 {
		t.Errorf("queue_depth after Close = %v, want 0", got)
	}
	if got := l.metric(t, "helpdeskflow_request_log_records_total"); got != 0 {
		t.Errorf("records_total = %v, want 0", got)
	}
}

// MaxBufferedBytes bounds the buffer when records are large.
func TestLogger_BufferFullBytes(t *testing.T) {
	t.Parallel()
	// The largest record a request makes: path and user agent at their
	// limits (a record is its key and value).
	r := sample(0)
	r.RequestID = "0"
	r.Path = "/" + strings.Repeat("x", 2047)
	r.UserAgent = strings.Repeat("x", 512)
	value, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	size := len(r.RequestID) + len(value)
	l := newLogger(t, []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, func(c *recordlog.Config) {
		c.MaxBufferedBytes = 3*size + size/2
	})
	for i := range 10 {
		r.RequestID = fmt.Sprint(i)
		l.Log(r)
	}
	if got := l.QueueDepth(); got != 3 {
		t.Errorf("QueueDepth = %d, want 3 (3.5 records' worth of bytes)", got)
	}
	if got := l.metric(t, "helpdeskflow_request_log_dropped_total", "reason", "buffer_full"); got != 7 {
		t.Errorf("dropped_total{buffer_full} = %v, want 7", got)
	}
}

// A topic that does not exist fails the records for good: they are counted
// as produce_failed and warned about once.
func TestLogger_ProduceFailed(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1)) // no topics
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var logs syncBuffer
	l := newLogger(t, cluster.ListenAddrs(), func(c *recordlog.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		// franz-go gives up on an unknown topic after 4 metadata
		// refreshes, which it may space by the minimum metadata age (5s).
		c.KafkaOptions = []kgo.Opt{kgo.MetadataMinAge(50 * time.Millisecond)}
	})
	for i := range 5 {
		l.Log(sample(i))
	}
	testenv.Eventually(t, wait, func() error {
		if got := l.metric(t, "helpdeskflow_request_log_dropped_total", "reason", "produce_failed"); got != 5 {
			return fmt.Errorf("dropped_total{produce_failed} = %v, want 5", got)
		}
		return nil
	})
	if got := strings.Count(logs.String(), "records dropped"); got != 1 {
		t.Errorf("%d drop warnings, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "reason=produce_failed") || !strings.Contains(logs.String(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("warning does not name the reason and cause:\n%s", logs.String())
	}
	if got := l.metric(t, "helpdeskflow_request_log_queue_depth"); got != 0 {
		t.Errorf("queue_depth = %v, want 0", got)
	}
}

func TestLogger_LogAfterClose(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	l := newLogger(t, brokers)
	l.Log(sample(0))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	l.Log(sample(1))
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close = %v, want the first one's nil", err)
	}
	if got := l.metric(t, "helpdeskflow_request_log_dropped_total", "reason", "closed"); got != 1 {
		t.Errorf("dropped_total{closed} = %v, want 1", got)
	}
	if got := l.metric(t, "helpdeskflow_request_log_records_total"); got != 1 {
		t.Errorf("records_total = %v, want 1", got)
	}
}

// Close while other goroutines keep logging returns promptly, and every
// record is accounted for: acknowledged or counted as dropped.
func TestLogger_CloseWhileLogging(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	l := newLogger(t, brokers)
	var (
		wg    sync.WaitGroup
		calls atomic.Int64
		stop  = make(chan struct{})
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l.Log(sample(g*1_000_000 + i))
				calls.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	began := time.Now()
	if err := l.Close(ctx); err != nil {
		t.Errorf("Close = %v, want nil (the broker is up)", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Close took %s under load", took)
	}
	close(stop)
	wg.Wait()
	acked := l.metric(t, "helpdeskflow_request_log_records_total")
	closed := l.metric(t, "helpdeskflow_request_log_dropped_total", "reason", "closed")
	if other := l.metric(t, "helpdeskflow_request_log_dropped_total") - closed; other != 0 {
		t.Errorf("%v records dropped for other reasons than closed", other)
	}
	if got, want := acked+closed, float64(calls.Load()); got != want {
		t.Errorf("acknowledged %v + dropped %v = %v, want the %v Log calls", acked, closed, got, want)
	}
	if acked == 0 || closed == 0 {
		t.Errorf("acknowledged %v, dropped after Close %v; want both > 0", acked, closed)
	}
	t.Logf("%v acknowledged before Close, %v dropped after it", acked, closed)
}

// Two Loggers on one registry share the series (a restart in one process).
func TestNew_SharesMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	for range 2 {
		l, err := recordlog.New(recordlog.Config{Brokers: []string{"127.0.0.1:1"}, Registerer: reg})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		_ = l.Close(context.Background())
	}
}

func TestNew_InvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := recordlog.New(recordlog.Config{Brokers: []string{" "}, MaxBuffered: -1, MaxBufferedBytes: -1})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Fatalf("ErrorCode = %q, want %q (%v)", got, want, err)
	}
	for _, want := range []string{"brokers[0]", "max buffered:", "max buffered bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := (recordlog.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "brokers") || !strings.Contains(err.Error(), "topic") {
		t.Errorf("Validate of an empty Config = %v", err)
	}
}

// BenchmarkLogger_Log measures what a request pays to log itself, against
// a kfake broker that acknowledges without storing. The buffer is large
// enough that nothing is dropped; "dropped" reports it if anything was.
func BenchmarkLogger_Log(b *testing.B) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, kafka.TopicAPIRequests), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			l, err := recordlog.New(recordlog.Config{Brokers: cluster.ListenAddrs(), Registerer: reg, MaxBuffered: 4 << 20})
			if err != nil {
				b.Fatal(err)
			}
			r := sample(1)
			l.Log(r) // load the topic's metadata outside the timing
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for l.QueueDepth() > 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						l.Log(r)
					}
				})
			} else {
				for range b.N {
					l.Log(r)
				}
			}
			b.StopTimer()
			if err := l.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(testenv.Metric(b, reg, "helpdeskflow_request_log_dropped_total"), "dropped")
		})
	}
	// What a request pays while Kafka is down and the buffer is full.
	b.Run("buffer_full", func(b *testing.B) {
		l, err := recordlog.New(recordlog.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", freePort(b))}, MaxBuffered: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = l.Close(ctx)
		}()
		r := sample(1)
		l.Log(r)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Log(r)
			}
		})
	})
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var testLogLevel = func() slog.Level {
	if os.Getenv("HDF_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

// TestLogger_HugeFieldsAreCut: a client controls the path, user agent and
// method; a request with megabytes of them is still logged, with each cut
// to its limit, rather than refused by the broker.
func TestLogger_HugeFieldsAreCut(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	l := newLogger(t, brokers)
	r := sample(1)
	r.Path = "/v1/" + strings.Repeat("é", 600_000)
	r.UserAgent = strings.Repeat("a", 2_000_000)
	r.Method = strings.Repeat("M", 1000)
	l.Log(r)
	got := byRequestID(t, consume(t, brokers, 1))[r.RequestID]
	if len(got.Path) > 2048 || !strings.HasPrefix(r.Path, got.Path) || !utf8.ValidString(got.Path) || len(got.Path) < 2000 {
		t.Errorf("logged path of %d bytes (valid UTF-8: %v), want the first 2 KiB at a character boundary", len(got.Path), utf8.ValidString(got.Path))
	}
	if len(got.UserAgent) != 512 || len(got.Method) != 32 {
		t.Errorf("logged user agent of %d bytes and method of %d, want 512 and 32", len(got.UserAgent), len(got.Method))
	}
	if n := l.metric(t, "helpdeskflow_request_log_dropped_total"); n != 0 {
		t.Errorf("%v records dropped", n)
	}
}
