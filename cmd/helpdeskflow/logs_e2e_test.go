package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// lockedBuffer collects a process's log output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every JSON log line written so far.
func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, line)
	}
	return out
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDev_FollowARequestThroughTheLogs follows one POST /v1/tickets in a
// dev process logging JSON at debug level: the API's line names its
// request id and workspace; the relay's, the projector's and the
// dispatcher's lines of the ticket.created event it made carry the same
// request id, event id and workspace; the webhook attempt's line names the
// event, the delivery and the webhook. No line holds the webhook secret or
// anything of the request's body.
func TestDev_FollowARequestThroughTheLogs(t *testing.T) {
	logs := &lockedBuffer{}
	dev := startDevLogging(t, testConfig(t), slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var mu sync.Mutex
	var delivered []nethttp.Header
	receiver := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // the test reads the headers
		mu.Lock()
		delivered = append(delivered, r.Header.Clone())
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	status, _, hook := call(t, "POST", dev.url+"/v1/webhooks", dev.key, []byte(fmt.Sprintf(`{"url": %q, "event_types": ["ticket.created"]}`, receiver.URL)))
	if status != 201 {
		t.Fatalf("create webhook: %d %v", status, hook)
	}
	secret, _ := hook["secret"].(string)
	webhookID, _ := hook["id"].(string)

	status, header, ticket := call(t, "POST", dev.url+"/v1/tickets", dev.key,
		[]byte(`{"subject": "Broken kettle 7f3a", "customer": {"email": "kettle@example.com"}, "message": {"body": "It leaks 9c1e"}}`))
	if status != 201 {
		t.Fatalf("create ticket: %d %v", status, ticket)
	}
	requestID := header.Get("X-Request-Id")
	var eventID, deliveryID string
	testenv.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(delivered) == 0 {
			return fmt.Errorf("no delivery yet")
		}
		eventID, deliveryID = delivered[0].Get("X-HDF-Event-Id"), delivered[0].Get("X-HDF-Delivery-Id")
		projected := false
		for _, l := range logs.lines(t) {
			projected = projected || (l["msg"] == "projector applied event" && l["event_id"] == eventID)
		}
		// The projector logs the ticket's event on its own schedule: any
		// other event's line (the webhook's, the customer's) is no sign.
		if !strings.Contains(logs.String(), `"msg":"webhook attempt"`) || !projected {
			return fmt.Errorf("the attempt or the ticket's projection is not logged yet")
		}
		return nil
	})

	find := func(msg, key, value string) map[string]any {
		t.Helper()
		for _, l := range logs.lines(t) {
			if l["msg"] == msg && l[key] == value {
				return l
			}
		}
		t.Fatalf("no %q line with %s=%s", msg, key, value)
		return nil
	}
	api := find("http request", "request_id", requestID)
	workspaceID, _ := api["workspace_id"].(string)
	if workspaceID == "" || workspaceID == uuid.Nil.String() || api["route"] != "/v1/tickets" || api["method"] != "POST" || api["status"] != float64(201) {
		t.Errorf("the API's line: %v", api)
	}
	for _, msg := range []string{"relay published event", "projector applied event", "dispatch event"} {
		l := find(msg, "event_id", eventID)
		if l["request_id"] != requestID || l["workspace_id"] != workspaceID || l["event_type"] != "ticket.created" {
			t.Errorf("%q line of event %s: request_id %v, workspace_id %v, event_type %v; want %s, %s, ticket.created",
				msg, eventID, l["request_id"], l["workspace_id"], l["event_type"], requestID, workspaceID)
		}
	}
	attempt := find("webhook attempt", "event_id", eventID)
	if attempt["delivery_id"] != deliveryID || attempt["webhook_id"] != webhookID || attempt["workspace_id"] != workspaceID ||
		attempt["outcome"] != "succeeded" {
		t.Errorf("the webhook attempt's line: %v; want delivery %s of webhook %s in workspace %s, succeeded", attempt, deliveryID, webhookID, workspaceID)
	}
	all := logs.String()
	for _, secretOrBody := range []string{secret, "Broken kettle 7f3a", "It leaks 9c1e", dev.key} {
		if secretOrBody != "" && strings.Contains(all, secretOrBody) {
			t.Errorf("the logs hold %q", secretOrBody)
		}
	}
}
