package main

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/client"
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
	clients := make([]*client.Client, len(urls))
	for i, url := range urls {
		if clients[i], err = client.New(url, admin.Secret); err != nil {
			t.Fatal(err)
		}
	}
	created, _, err := clients[0].CreateTicket(ctx, client.TicketCreate{Subject: "Cached", Customer: client.TicketCustomer{Email: "ada@example.com"},
		Message: client.TicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	for round := range 6 {
		for _, c := range clients { // both have it cached
			if _, err := c.GetTicket(ctx, created.ID, false); err != nil {
				t.Fatalf("GET: %v", err)
			}
		}
		writer, reader := clients[round%2], clients[1-round%2]
		priority := []string{"low", "high", "urgent"}[round%3]
		if _, _, err := writer.UpdateTicket(ctx, created.ID, client.TicketUpdate{Priority: &priority}); err != nil {
			t.Fatalf("PATCH: %v", err)
		}
		if _, _, err := writer.AddMessage(ctx, created.ID, client.MessageCreate{Body: fmt.Sprintf("reply %d", round)}); err != nil {
			t.Fatalf("add a message: %v", err)
		}
		got, err := reader.GetTicket(ctx, created.ID, false)
		if err != nil || got.Priority != priority || len(got.Messages) != round+2 {
			t.Fatalf("round %d: the other process answered %v with priority %v and %d messages, want %s and %d", round, err, got.Priority, len(got.Messages), priority, round+2)
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
