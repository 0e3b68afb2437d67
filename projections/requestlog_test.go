package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/kafka/recordlog"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// startRequestLogProjector runs a request log projector with test-friendly
// timings; the test's cleanup stops it if the test did not.
func startRequestLogProjector(t *testing.T, conn driver.Conn, brokers []string, group string, tweak ...func(*projections.RequestLogConfig)) *runningProjector {
	t.Helper()
	cfg, reg := testConfig(t, conn, brokers, group, tweak)
	p, err := projections.NewRequestLogProjector(cfg)
	if err != nil {
		t.Fatalf("NewRequestLogProjector: %v", err)
	}
	return runInBackground(t, "request log projector", reg, p.Run)
}

var (
	logWorkspace = uuid.MustParse("0a7e0000-0000-4000-8000-000000000001")
	logKeyA      = uuid.MustParse("0a7e0000-0000-4000-8000-00000000000a")
	logKeyB      = uuid.MustParse("0a7e0000-0000-4000-8000-00000000000b")
)

// apiRequest returns request i: keys A and B take turns, every fifth one is
// unauthenticated, and times are 1.25 s apart with millisecond precision,
// crossing a month (a partition) boundary after request 8
// (what the table keeps), latencies with microsecond precision.
func apiRequest(i int) helpdeskflow.APIRequest {
	r := helpdeskflow.APIRequest{
		Time:              time.Date(2024, 5, 31, 23, 59, 50, 7_000_000, time.UTC).Add(time.Duration(i) * 1250 * time.Millisecond),
		RequestID:         fmt.Sprintf("req_%032x", i),
		WorkspaceID:       logWorkspace,
		KeyID:             logKeyA,
		KeyPrefix:         "hdf_live_a1b2",
		Method:            []string{"GET", "POST", "PATCH"}[i%3],
		Route:             "/v1/tickets/:id",
		Path:              fmt.Sprintf("/v1/tickets/%d", i),
		Status:            []int{200, 201, 422, 429}[i%4],
		Latency:           time.Duration(1500+i*17) * time.Microsecond,
		ClientIP:          fmt.Sprintf("2001:db8::%x", i),
		UserAgent:         "acme-sync/1.2 \"quoted\" ünïcode",
		RateLimitCategory: "write",
	}
	if i%2 == 1 {
		r.KeyID, r.KeyPrefix = logKeyB, "hdf_live_b3c4"
	}
	if r.Status >= 400 {
		r.ErrorCode = map[int]string{422: "validation_failed", 429: "rate_limited"}[r.Status]
	}
	if i%5 == 4 {
		r.WorkspaceID, r.KeyID, r.KeyPrefix, r.Status, r.ErrorCode, r.RateLimitCategory = uuid.Nil, uuid.Nil, "", 401, "unauthorized", ""
	}
	return r
}

func produceAPIRequests(t *testing.T, brokers []string, reqs ...helpdeskflow.APIRequest) {
	t.Helper()
	records := make([]*kgo.Record, 0, len(reqs))
	for _, r := range reqs {
		value, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, &kgo.Record{Topic: kafka.TopicAPIRequests, Key: []byte(r.RequestID), Value: value})
	}
	produceRecords(t, brokers, records...)
}

// selectAPIRequests reads every row of api_requests with FINAL, by request
// id, failing on a request id that has more than one row.
func selectAPIRequests(t *testing.T, conn driver.Conn) map[string]helpdeskflow.APIRequest {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT time, time_ms, request_id, workspace_id, key_id, key_prefix, method, route, path,
		status, latency_us, client_ip, user_agent, error_code, rate_limit_category FROM api_requests FINAL`)
	if err != nil {
		t.Fatalf("select api_requests: %v", err)
	}
	defer rows.Close()
	got := map[string]helpdeskflow.APIRequest{}
	for rows.Next() {
		var (
			tm                time.Time
			ms, status        uint16
			latencyUs         uint64
			r                 helpdeskflow.APIRequest
			workspace, keyID  uuid.UUID
			prefix, userAgent string
		)
		if err := rows.Scan(&tm, &ms, &r.RequestID, &workspace, &keyID, &prefix, &r.Method, &r.Route, &r.Path,
			&status, &latencyUs, &r.ClientIP, &userAgent, &r.ErrorCode, &r.RateLimitCategory); err != nil {
			t.Fatal(err)
		}
		r.Time = tm.Add(time.Duration(ms) * time.Millisecond).UTC()
		r.WorkspaceID, r.KeyID, r.KeyPrefix, r.UserAgent = workspace, keyID, prefix, userAgent
		r.Status, r.Latency = int(status), time.Duration(latencyUs)*time.Microsecond
		if _, dup := got[r.RequestID]; dup {
			t.Errorf("request %s has more than one row under FINAL", r.RequestID)
		}
		got[r.RequestID] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// Requests logged through recordlog.Logger reach api_requests once each,
// every field intact, and KeyActivity returns a key's requests in time
// order.
func TestRequestLogProjector_EndToEnd(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	logger, err := recordlog.New(recordlog.Config{Brokers: brokers})
	if err != nil {
		t.Fatalf("recordlog.New: %v", err)
	}
	const n = 60
	want := map[string]helpdeskflow.APIRequest{}
	for _, i := range rand.Perm(n) { // arrival order is not time order
		r := apiRequest(i)
		want[r.RequestID] = r
		logger.Log(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := logger.Close(ctx); err != nil {
		t.Fatalf("Logger.Close: %v", err)
	}

	p := startRequestLogProjector(t, conn, brokers, "g-request-log")
	eventually(t, wait, "all requests in api_requests", func() bool {
		return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == n
	})
	got := selectAPIRequests(t, conn)
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("request %s missing", id)
		} else if !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			t.Errorf("request %s time = %s, want %s", id, g.Time, w.Time)
		} else if g.Time = w.Time; g != w {
			t.Errorf("request %s row = %+v, want %+v", id, g, w)
		}
	}
	eventually(t, wait, "consumer lag 0", func() bool {
		return p.metric(t, "helpdeskflow_request_log_projector_consumer_lag") == 0
	})
	if got := p.metric(t, "helpdeskflow_request_log_projector_rows_total"); got != n {
		t.Errorf("rows_total = %v, want %d", got, n)
	}
	if got := p.metric(t, "helpdeskflow_request_log_projector_batch_size"); got < 1 {
		t.Errorf("batch_size observations = %v, want >= 1", got)
	}
	if got := p.metric(t, "helpdeskflow_request_log_projector_insert_duration_seconds"); got < 1 {
		t.Errorf("insert_duration_seconds observations = %v, want >= 1", got)
	}

	// KeyActivity: key B's requests, oldest first.
	reader := projections.NewRequestLogReader(conn)
	var wantB []helpdeskflow.APIRequest
	for i := range n {
		if r := apiRequest(i); r.KeyID == logKeyB {
			wantB = append(wantB, r)
		}
	}
	since, until := wantB[0].Time, wantB[len(wantB)-1].Time.Add(time.Millisecond)
	activity, err := reader.KeyActivity(context.Background(), logWorkspace, logKeyB, since, until, 0)
	if err != nil {
		t.Fatalf("KeyActivity: %v", err)
	}
	if !slices.EqualFunc(activity, wantB, func(a, b helpdeskflow.APIRequest) bool { return a == b }) {
		t.Errorf("KeyActivity(B) =\n%+v\nwant\n%+v", activity, wantB)
	}
	// [since, until) is exact to the millisecond, and limit cuts the tail.
	activity, err = reader.KeyActivity(context.Background(), logWorkspace, logKeyB,
		wantB[1].Time.Add(-time.Millisecond), wantB[4].Time, 2)
	if err != nil {
		t.Fatalf("KeyActivity: %v", err)
	}
	if got := requestIDs(activity); !slices.Equal(got, requestIDs(wantB[1:3])) {
		t.Errorf("KeyActivity(B, window, limit 2) = %v, want %v", got, requestIDs(wantB[1:3]))
	}
	activity, err = reader.KeyActivity(context.Background(), logWorkspace, logKeyB, wantB[1].Time.Add(time.Millisecond), wantB[2].Time, 0)
	if err != nil || len(activity) != 0 {
		t.Errorf("KeyActivity between two requests = %v, %v; want none", requestIDs(activity), err)
	}
	// Another workspace sees nothing of the key.
	activity, err = reader.KeyActivity(context.Background(), uuid.New(), logKeyB, since, until, 0)
	if err != nil || len(activity) != 0 {
		t.Errorf("KeyActivity of another workspace = %v, %v; want none", requestIDs(activity), err)
	}
	// Unauthenticated requests are filed under the nil ids.
	activity, err = reader.KeyActivity(context.Background(), uuid.Nil, uuid.Nil, since.Add(-time.Hour), until.Add(time.Hour), 0)
	if err != nil || len(activity) != n/5 {
		t.Errorf("KeyActivity(nil, nil) returned %d requests, %v; want %d", len(activity), err, n/5)
	}

	if err := p.stop(t); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

func requestIDs(reqs []helpdeskflow.APIRequest) []string {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.RequestID
	}
	return ids
}

// A record delivered twice (at least once delivery) leaves one row.
func TestRequestLogProjector_RedeliveryCollapses(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	p := startRequestLogProjector(t, conn, brokers, "g-request-log-redelivery")
	r := apiRequest(1)
	produceAPIRequests(t, brokers, r)
	eventually(t, wait, "first delivery", func() bool { return p.metric(t, "helpdeskflow_request_log_projector_rows_total") == 1 })
	produceAPIRequests(t, brokers, r)
	eventually(t, wait, "redelivery", func() bool { return p.metric(t, "helpdeskflow_request_log_projector_rows_total") == 2 })

	if got := queryUint(t, conn, "SELECT count() FROM api_requests FINAL"); got != 1 {
		t.Errorf("api_requests FINAL has %d rows, want 1", got)
	}
	if err := conn.Exec(context.Background(), "OPTIMIZE TABLE api_requests FINAL"); err != nil {
		t.Fatal(err)
	}
	if got := queryUint(t, conn, "SELECT count() FROM api_requests"); got != 1 {
		t.Errorf("api_requests has %d rows after a merge, want 1", got)
	}
	if got := selectAPIRequests(t, conn)[r.RequestID]; got != r {
		t.Errorf("row = %+v, want %+v", got, r)
	}
}

// Undecodable records are counted and skipped; the good records after them
// land, and the bad ones do not come back after a restart.
func TestRequestLogProjector_SkipsUndecodableRecords(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	bad := func(value string) *kgo.Record {
		return &kgo.Record{Topic: kafka.TopicAPIRequests, Key: []byte("k"), Value: []byte(value), Partition: 0}
	}
	produceRecords(t, brokers, bad("{not json"), bad(`{"request_id": 42}`), bad(`{}`), bad(`null`))
	produceAPIRequests(t, brokers, apiRequest(0), apiRequest(1))

	const group = "g-request-log-poison"
	p := startRequestLogProjector(t, conn, brokers, group)
	eventually(t, wait, "the good records after the bad ones", func() bool {
		return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == 2
	})
	if got := p.metric(t, "helpdeskflow_request_log_projector_errors_total", "kind", "decode"); got != 4 {
		t.Errorf("errors_total{decode} = %v, want 4", got)
	}
	eventually(t, wait, "offsets committed past the bad records", func() bool {
		return p.metric(t, "helpdeskflow_request_log_projector_consumer_lag") == 0
	})
	if err := p.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	produceAPIRequests(t, brokers, apiRequest(2))
	q := startRequestLogProjector(t, conn, brokers, group)
	eventually(t, wait, "the record after the restart", func() bool {
		return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == 3
	})
	if got := q.metric(t, "helpdeskflow_request_log_projector_errors_total", "kind", "decode"); got != 0 {
		t.Errorf("errors_total{decode} after restart = %v, want 0 (the bad records were committed)", got)
	}
}

// Values the columns cannot hold are clamped instead of failing the batch,
// which would stall the partition; a record without a time takes the Kafka
// record's timestamp.
func TestRequestLogProjector_ClampsValues(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	noTime, future, odd := apiRequest(0), apiRequest(1), apiRequest(2)
	noTime.Time = time.Time{}
	future.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	odd.Status, odd.Latency = 70000, -time.Second
	before := time.Now().Truncate(time.Millisecond)
	produceAPIRequests(t, brokers, noTime, future, odd)
	startRequestLogProjector(t, conn, brokers, "g-request-log-clamp")
	eventually(t, wait, "three rows", func() bool { return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == 3 })

	got := selectAPIRequests(t, conn)
	if tm := got[noTime.RequestID].Time; tm.Before(before) || tm.After(time.Now()) {
		t.Errorf("time of a record without one = %s, want the record timestamp (about %s)", tm, before)
	}
	if tm, want := got[future.RequestID].Time, time.Unix(1<<32-1, 999_000_000).UTC(); !tm.Equal(want) {
		t.Errorf("time of a record in 2300 = %s, want the largest DateTime %s", tm, want)
	}
	if g := got[odd.RequestID]; g.Status != 65535 || g.Latency != 0 {
		t.Errorf("status, latency = %d, %s; want 65535, 0", g.Status, g.Latency)
	}
}

// A failing insert keeps the batch and commits nothing; a later projector
// of the group writes the records.
func TestRequestLogProjector_CommitsOnlyAfterInsert(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	ctx := context.Background()
	const group = "g-request-log-commit"
	if err := conn.Exec(ctx, "RENAME TABLE api_requests TO api_requests_away"); err != nil {
		t.Fatal(err)
	}
	a := startRequestLogProjector(t, conn, brokers, group, func(c *projections.RequestLogConfig) { c.ShutdownTimeout = 500 * time.Millisecond })
	produceAPIRequests(t, brokers, apiRequest(0), apiRequest(1))
	eventually(t, wait, "insert errors", func() bool {
		return a.metric(t, "helpdeskflow_request_log_projector_errors_total", "kind", "insert") >= 2
	})
	err := a.stop(t)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EUnavailable; got != want {
		t.Errorf("Run after failing final insert = %v (code %q), want code %q", err, got, want)
	}
	if err := conn.Exec(ctx, "RENAME TABLE api_requests_away TO api_requests"); err != nil {
		t.Fatal(err)
	}
	b := startRequestLogProjector(t, conn, brokers, group)
	// The rows are visible in ClickHouse a moment before the projector
	// counts them, so wait for both: the second projector wrote both rows.
	eventually(t, wait, "the uncommitted records, written by the second projector", func() bool {
		return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == 2 &&
			b.metric(t, "helpdeskflow_request_log_projector_rows_total") == 2
	})
}

// The "what did this key do last week" query of README.md runs as written
// (on ClickHouse 18.16 as on current versions) and answers the question.
func TestRequestLogReadme_KeyLastWeekQuery(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### What did this key do last week\\?.*?```sql\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no sql block under \"### What did this key do last week?\"")
	}
	query := string(m[1])
	if strings.Count(query, "'…'") != 1 {
		t.Fatalf("the README query should have one '…' placeholder for the key id:\n%s", query)
	}
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	now := time.Now().UTC()
	recent, old, other := apiRequest(0), apiRequest(2), apiRequest(4)
	recent.Time, old.Time = now.Add(-26*time.Hour), now.Add(-8*24*time.Hour)
	other.KeyID, other.Time = uuid.New(), now.Add(-time.Hour)
	earlier := recent
	earlier.RequestID, earlier.Path, earlier.Time = "req_earlier", "/v1/earlier", now.Add(-6*24*time.Hour)
	produceAPIRequests(t, brokers, recent, old, other, earlier)
	startRequestLogProjector(t, conn, brokers, "g-request-log-readme")
	eventually(t, wait, "four rows", func() bool { return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == 4 })

	rows, err := conn.Query(context.Background(), strings.Replace(query, "'…'", "'"+logKeyA.String()+"'", 1))
	if err != nil {
		t.Fatalf("README query: %v\n%s", err, query)
	}
	defer rows.Close()
	var paths []string
	for rows.Next() {
		var (
			tm                          time.Time
			method, route, path, client string
			status                      uint16
			latency                     uint64
		)
		if err := rows.Scan(&tm, &method, &route, &path, &status, &latency, &client); err != nil {
			t.Fatalf("scan the README query's columns (time, method, route, path, status, latency_us, client_ip): %v", err)
		}
		paths = append(paths, path)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{earlier.Path, recent.Path}; !slices.Equal(paths, want) {
		t.Errorf("README query returned paths %v, want %v (the key's last 7 days, oldest first)", paths, want)
	}
}

func TestRequestLogReader_KeyActivity_InvalidArguments(t *testing.T) {
	t.Parallel()
	r := projections.NewRequestLogReader(nil) // validation fails before any query
	now := time.Now()
	_, err := r.KeyActivity(context.Background(), logWorkspace, logKeyA, now, now, 5000)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Fatalf("ErrorCode = %q, want %q (%v)", got, want, err)
	}
	var appErr *helpdeskflow.Error
	if !errors.As(err, &appErr) {
		t.Fatalf("error %T is not a *helpdeskflow.Error", err)
	}
	var fields []string
	for _, d := range appErr.Details {
		fields = append(fields, d.Field)
	}
	if want := []string{"limit", "until"}; !slices.Equal(fields, want) {
		t.Errorf("problem fields = %v, want %v", fields, want)
	}
}

func TestNewRequestLogProjector_InvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := projections.NewRequestLogProjector(projections.RequestLogConfig{BatchSize: -1, Brokers: []string{""}})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Fatalf("ErrorCode = %q, want %q (%v)", got, want, err)
	}
	for _, want := range []string{"brokers[0]", "batch size", "clickhouse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	err = projections.RequestLogConfig{}.Validate()
	for _, want := range []string{"brokers", "group", "topic", "batch size", "flush interval", "retry backoff", "shutdown timeout", "clickhouse"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of an empty config = %v, does not mention %q", err, want)
		}
	}
}
