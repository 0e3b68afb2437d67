package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// devInstance is a `helpdeskflow dev` running in this test process against
// its own Postgres and ClickHouse databases.
type devInstance struct {
	url, key string
	cfg      config
}

// clickHouseDatabase returns a new ClickHouse database name, dropped when t
// ends.
func clickHouseDatabase(t *testing.T) string {
	t.Helper()
	name := testenv.RandomName("t_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := projections.OpenClickHouse(ctx, testenv.ClickHouseAddr(), name)
		if err != nil {
			t.Errorf("drop ClickHouse database %s: %v", name, err)
			return
		}
		defer conn.Close()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop ClickHouse database %s: %v", name, err)
		}
	})
	return name
}

func testConfig(t *testing.T) config {
	return config{
		PostgresURL:        testenv.PostgresDatabase(t),
		ClickHouseAddr:     testenv.ClickHouseAddr(),
		ClickHouseDatabase: clickHouseDatabase(t),
		HTTPAddr:           "127.0.0.1:0",
		DataDir:            t.TempDir(),
		LogLevel:           "warn",
	}
}

// startDev runs `dev` until the test ends and returns its URL and demo key,
// read from what it prints, as a user would.
func startDev(t *testing.T, cfg config) *devInstance {
	t.Helper()
	return startDevLogging(t, cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startDevLogging is startDev with the process's logger.
func startDevLogging(t *testing.T, cfg config, logger *slog.Logger) *devInstance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, outWriter := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, cfg, logger, outWriter); outWriter.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev returned %v on shutdown, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not shut down within 30 s")
		}
	})

	urlRE := regexp.MustCompile(`running at (http://\S+)`)
	keyRE := regexp.MustCompile(`^\s+(hdf_\w+)$`)
	inst := &devInstance{cfg: cfg}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(60 * time.Second)
	for inst.url == "" || inst.key == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before printing its URL and key: %v", <-done)
			}
			if m := urlRE.FindStringSubmatch(line); m != nil {
				inst.url = m[1]
			}
			if m := keyRE.FindStringSubmatch(line); m != nil {
				inst.key = m[1]
			}
		case <-timeout:
			t.Fatal("dev did not print a URL and key within 60 s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return inst
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call sends a request and decodes a JSON answer into a map.
func call(t *testing.T, method, url, key string, body []byte) (int, nethttp.Header, map[string]any) {
	t.Helper()
	req, err := nethttp.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", method, url, err, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func errorOf(body map[string]any) map[string]any {
	e, _ := body["error"].(map[string]any)
	return e
}

func TestDev_TicketTravelsTheWholeWay(t *testing.T) {
	dev := startDev(t, testConfig(t))

	status, hdr, created := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{
		"subject": "Refund for order 1042",
		"customer": {"email": "  Ada@Example.COM ", "name": "Ada Lovelace"},
		"message": {"body": "<p>Hello <script>alert(1)</script><b>there</b></p>"},
		"priority": "high",
		"tags": ["Refund", "billing"]
	}`))
	if status != 201 {
		t.Fatalf("create: status %d, body %v", status, created)
	}
	if hdr.Get("X-Request-Id") == "" || hdr.Get("ETag") != `"1"` {
		t.Errorf("create headers: X-Request-Id %q, ETag %q", hdr.Get("X-Request-Id"), hdr.Get("ETag"))
	}
	id, _ := created["id"].(string)
	customer, _ := created["customer"].(map[string]any)
	if customer["email"] != "ada@example.com" || created["priority"] != "high" || created["status"] != "new" {
		t.Errorf("created ticket = %v", created)
	}
	messages, _ := created["messages"].([]any)
	if len(messages) != 1 || strings.Contains(fmt.Sprint(messages[0]), "script") {
		t.Errorf("messages = %v, want one sanitized message", messages)
	}

	// A second ticket for the same (differently written) email reuses the customer.
	c := newAPIClient(t, dev)
	ctx := context.Background()
	second, _, err := c.CreateTicket(ctx, client.TicketCreate{Subject: "Again", Customer: client.TicketCustomer{Email: "ada@example.com"},
		Message: client.TicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Customer == nil || second.Customer.ID != customer["id"] {
		t.Errorf("second ticket's customer %+v, want the same customer %v", second.Customer, customer["id"])
	}

	got, err := c.GetTicket(ctx, id, false)
	if err != nil || got.Subject != "Refund for order 1042" || got.Version != 1 {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	// The write's answer and the read must agree.
	if at := got.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"); at != created["created_at"] {
		t.Errorf("read back created_at %s, created %v", at, created["created_at"])
	}
	if len(got.Messages) != 1 || got.Messages[0].ID != messages[0].(map[string]any)["id"] || got.Messages[0].Body != messages[0].(map[string]any)["body"] {
		t.Errorf("read back messages %+v, created %v", got.Messages, messages)
	}
	if tags := fmt.Sprint(got.Tags); tags != "[refund billing]" {
		t.Errorf("tags = %s, want normalized [refund billing]", tags)
	}

	// The list comes from ClickHouse, within the projection lag.
	testenv.Eventually(t, 20*time.Second, func() error {
		var ids []string
		for tk, err := range c.ListTickets(ctx, client.TicketFilter{Tag: "refund"}) {
			if err != nil {
				return err
			}
			ids = append(ids, tk.ID)
		}
		if len(ids) != 1 || ids[0] != id {
			return fmt.Errorf("list has %v tagged refund, want [%s]", ids, id)
		}
		return nil
	})

	status, _, _ = call(t, "GET", dev.url+"/readyz", "", nil)
	if status != 200 {
		t.Errorf("readyz = %d, want 200", status)
	}
	resp, err := nethttp.Get(dev.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"helpdeskflow_http_requests_total", "helpdeskflow_events_appended_total",
		"helpdeskflow_stream_lock_hold_seconds", "helpdeskflow_relay_lag_events", "helpdeskflow_projector_batch_size",
		"helpdeskflow_oldest_transaction_age_seconds"} {
		if !strings.Contains(string(metrics), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestDev_BadInput(t *testing.T) {
	dev := startDev(t, testConfig(t))
	url := dev.url + "/v1/tickets"
	big := bytes.Repeat([]byte("a"), 1<<20+10)

	cases := []struct {
		name       string
		key        string
		path       string
		body       []byte
		wantStatus int
		wantCode   string
		wantText   []string
	}{
		{"malformed JSON names line and column", dev.key, url, []byte("{\n  \"subject\": \"x\",\n  oops\n}"), 400, "invalid_json", []string{"line 3, column 3"}},
		{"missing subject and email are both listed", dev.key, url, []byte(`{"message": {"body": "hi"}}`), 400, "validation_failed", []string{"subject", "customer.email"}},
		{"wrong type names the field", dev.key, url, []byte(`{"subject": 5, "customer": {"email": "a@b.co"}, "message": {"body": "x"}}`), 400, "validation_failed", []string{"subject"}},
		{"unknown field", dev.key, url, []byte(`{"subject": "s", "customer": {"email": "a@b.co"}, "message": {"body": "x"}, "colour": 1}`), 400, "validation_failed", []string{"colour"}},
		{"bad enum and email", dev.key, url, []byte(`{"subject": "s", "customer": {"email": "nope"}, "message": {"body": "x"}, "priority": "asap"}`), 400, "validation_failed", []string{"priority", "customer.email"}},
		{"body over 1 MiB", dev.key, url, big, 413, "payload_too_large", nil},
		{"no key", "", url, []byte(`{}`), 401, "unauthorized", nil},
		{"malformed key", "hdf_nope", url, []byte(`{}`), 401, "unauthorized", nil},
		{"unknown well-formed key", mustKey(t), url, []byte(`{}`), 401, "unauthorized", nil},
		{"key in query string", "", url + "?api_key=" + dev.key, []byte(`{}`), 400, "key_in_wrong_place", nil},
		{"key in body", dev.key, url, []byte(`{"api_key": "x"}`), 400, "key_in_wrong_place", nil},
		{"unknown ticket", dev.key, url + "/00000000-0000-0000-0000-000000000001", nil, 404, "not_found", nil},
		{"malformed ticket id", dev.key, url + "/nope", nil, 404, "not_found", nil},
		{"bad list limit", dev.key, url + "?limit=1000", nil, 400, "validation_failed", []string{"limit"}},
		{"bad cursor", dev.key, url + "?cursor=not-a-cursor!", nil, 400, "validation_failed", []string{"cursor"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.body == nil {
				method = "GET"
			}
			status, hdr, body := call(t, method, tc.path, tc.key, tc.body)
			e := errorOf(body)
			if status != tc.wantStatus || e["code"] != tc.wantCode {
				t.Fatalf("status %d code %v, want %d %s; body %v", status, e["code"], tc.wantStatus, tc.wantCode, body)
			}
			if e["request_id"] == "" || e["request_id"] != hdr.Get("X-Request-Id") {
				t.Errorf("request_id %v, header %q", e["request_id"], hdr.Get("X-Request-Id"))
			}
			text := fmt.Sprint(e)
			for _, want := range tc.wantText {
				if !strings.Contains(text, want) {
					t.Errorf("error %s does not mention %q", text, want)
				}
			}
		})
	}
}

func mustKey(t *testing.T) string {
	t.Helper()
	key, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestDev_RequestLog: every request, refused or not, reaches ClickHouse's
// api_requests through Kafka, tied to its key; "what did this key do" is
// one query.
func TestDev_RequestLog(t *testing.T) {
	cfg := testConfig(t)
	dev := startDev(t, cfg)
	status, _, keys := call(t, "GET", dev.url+"/v1/api-keys", dev.key, nil)
	if status != 200 {
		t.Fatalf("list keys: %d %v", status, keys)
	}
	key := keys["data"].([]any)[0].(map[string]any)
	keyID, workspaceID := uuid.MustParse(key["id"].(string)), uuid.Nil
	var notFound *client.Error
	if _, err := newAPIClient(t, dev).GetTicket(context.Background(), uuid.NewString(), false); !errors.As(err, &notFound) || notFound.Status != 404 {
		t.Fatalf("unknown ticket: %v", err)
	}
	notFoundID := notFound.RequestID
	if status, _, _ := call(t, "GET", dev.url+"/v1/tickets", "", nil); status != 401 {
		t.Fatalf("no key: %d", status)
	}

	ctx := context.Background()
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	reader := projections.NewRequestLogReader(ch)
	testenv.Eventually(t, 30*time.Second, func() error {
		if workspaceID == uuid.Nil {
			// The key's workspace, from the demo key's own log rows.
			var ws string
			if err := ch.QueryRow(ctx, `SELECT toString(any(workspace_id)) FROM api_requests WHERE key_id = toUUID(?)`, keyID.String()).Scan(&ws); err != nil {
				return err
			}
			workspaceID, _ = uuid.Parse(ws)
		}
		rows, err := reader.KeyActivity(ctx, workspaceID, keyID, time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 100)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.RequestID == notFoundID {
				if r.Status != 404 || r.Route != "/v1/tickets/:id" || r.Method != "GET" || r.ClientIP != "127.0.0.1" || r.ErrorCode != "not_found" {
					t.Errorf("logged %+v", r)
				}
				return nil
			}
		}
		return fmt.Errorf("request %s not in api_requests yet (%d rows for the key)", notFoundID, len(rows))
	})
	// The refused request is logged too, without a key.
	testenv.Eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := ch.QueryRow(ctx, `SELECT count() FROM api_requests FINAL WHERE status = 401 AND key_id = toUUID('00000000-0000-0000-0000-000000000000')`).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%d unauthenticated requests logged, want 1", n)
		}
		return nil
	})
}

// TestDev_CustomerList: customers created over HTTP are listed from the
// ClickHouse read model by tag and custom field; a merged one drops out.
func TestDev_CustomerList(t *testing.T) {
	dev := startDev(t, testConfig(t))
	c, ctx := newAPIClient(t, dev), context.Background()
	ids := map[string]string{}
	for _, cu := range []struct{ email, tier string }{{"gold@example.com", "gold"}, {"silver@example.com", "silver"}, {"gold2@example.com", "gold"}} {
		got, w, err := c.UpsertCustomer(ctx, client.CustomerUpsert{Email: cu.email, Tags: []string{"vip"}, CustomFields: map[string]any{"tier": cu.tier, "seats": 5}})
		if err != nil || !w.Created {
			t.Fatalf("create %s: %+v %v", cu.email, w, err)
		}
		ids[cu.email] = got.ID
	}
	// Merges are not in the client: the raw call.
	if status, _, body := call(t, "POST", dev.url+"/v1/customers/"+ids["gold@example.com"]+"/merge", dev.key,
		[]byte(`{"source_customer_id": "`+ids["gold2@example.com"]+`"}`)); status != 200 {
		t.Fatalf("merge: %d %v", status, body)
	}
	list := func(f client.CustomerFilter) ([]string, error) {
		var out []string
		for cu, err := range c.ListCustomers(ctx, f) {
			if err != nil {
				return nil, err
			}
			out = append(out, cu.Email)
		}
		return out, nil
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		// The custom-field filter of the API, as a raw query: the client
		// filters by tag.
		_, _, body := call(t, "GET", dev.url+"/v1/customers?custom_fields.tier=gold", dev.key, nil)
		var gold []string
		for _, cu := range body["data"].([]any) {
			gold = append(gold, cu.(map[string]any)["email"].(string))
		}
		if got := fmt.Sprint(gold); got != "[gold@example.com]" {
			return fmt.Errorf("tier=gold lists %s, want the merge target only", got)
		}
		vip, err := list(client.CustomerFilter{Tag: "vip", PageSize: 1})
		if err != nil {
			return err
		}
		if got := fmt.Sprint(vip); got != "[silver@example.com gold@example.com]" {
			return fmt.Errorf("vip lists %s", got)
		}
		return nil
	})
}
