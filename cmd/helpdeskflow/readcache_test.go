package main

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestReadCache_TwoAPIProcesses: both API processes hold the ticket in
// their read cache; a change through one is on the very next GET through
// the other, which repairs its entry with the events after it (its delta
// load counter moves).
func TestReadCache_TwoAPIProcesses(t *testing.T) {
	cfg := testConfig(t)
	_, brokers := testenv.Kafka(t)
	ctx := context.Background()
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	svc := testenv.NewCommands(store.events, testenv.CommandOptions{})
	_, admin, err := svc.Access.CreateWorkspace(ctx, systemMetadata(), "two processes")
	if err != nil {
		t.Fatal(err)
	}
	urls := []string{startAPIProcess(t, cfg, brokers), startAPIProcess(t, cfg, brokers)}
	status, _, body := call(t, "POST", urls[0]+"/v1/tickets", admin.Secret,
		[]byte(`{"subject":"Cached","customer":{"email":"ada@example.com"},"message":{"body":"hi"}}`))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	path := "/v1/tickets/" + body["id"].(string)

	for round := range 6 {
		for _, url := range urls { // both have it cached
			if status, _, body := call(t, "GET", url+path, admin.Secret, nil); status != 200 {
				t.Fatalf("GET: %d %v", status, body)
			}
		}
		writer, reader := urls[round%2], urls[1-round%2]
		priority := []string{"low", "high", "urgent"}[round%3]
		if status, _, body := call(t, "PATCH", writer+path, admin.Secret, []byte(`{"priority":"`+priority+`"}`)); status != 200 {
			t.Fatalf("PATCH: %d %v", status, body)
		}
		if status, _, body := call(t, "POST", writer+path+"/messages", admin.Secret, []byte(fmt.Sprintf(`{"body":"reply %d"}`, round))); status != 201 {
			t.Fatalf("add a message: %d %v", status, body)
		}
		status, _, got := call(t, "GET", reader+path, admin.Secret, nil)
		messages, _ := got["messages"].([]any)
		if status != 200 || got["priority"] != priority || len(messages) != round+2 {
			t.Fatalf("round %d: the other process answered %d with priority %v and %d messages, want %s and %d", round, status, got["priority"], len(messages), priority, round+2)
		}
	}
	for _, url := range urls {
		if n := metricValue(t, url, "helpdeskflow_read_cache_delta_loads_total"); n < 3 {
			t.Errorf("%s repaired %v entries by delta loads, want at least 3", url, n)
		}
	}
}

// metricValue is the value of an unlabelled metric on url's /metrics.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := nethttp.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s/metrics has no %s", url, name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
