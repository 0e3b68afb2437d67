package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// TestDev_PoisonEventStopsNobody injects an event over the broker's record
// limit straight into the events table of a running dev process (as an
// older version, or a write around the command layer, could have stored
// it). It used to stop the relay for every workspace: now it travels as a
// claim check, and later tickets of another workspace still reach
// ClickHouse and their webhook, as does the oversized ticket itself.
func TestDev_PoisonEventStopsNobody(t *testing.T) {
	cfg := testConfig(t)
	dev := startDev(t, cfg)
	ctx := context.Background()

	var mu sync.Mutex
	delivered := map[string]int{}
	receiver := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		body, _ := io.ReadAll(r.Body)
		var payload struct {
			Data struct {
				Subject string `json:"subject"`
			} `json:"data"`
		}
		json.Unmarshal(body, &payload) //nolint:errcheck // a body that does not decode counts under ""
		mu.Lock()
		delivered[payload.Data.Subject]++
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	c, ctx := newAPIClient(t, dev), context.Background()
	if _, err := c.CreateWebhook(ctx, client.WebhookCreate{URL: receiver.URL, EventTypes: []string{"ticket.created"}}); err != nil {
		t.Fatalf("create webhook: %v", err)
	}

	pool, err := pg.Connect(ctx, cfg.PostgresURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	poisonTicket, other := uuid.New(), uuid.New()
	data, err := json.Marshal(helpdeskflow.TicketCreated{Subject: "poison", Status: "new", Priority: "normal", Type: "question",
		Channel: "api", Tags: []string{}, CustomerID: uuid.New(), CustomFields: map[string]any{"notes": strings.Repeat("<", 1_200_000)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Pool().Exec(ctx, `WITH st AS (INSERT INTO streams (id, workspace_id, type, version) VALUES ($1, $2, 'ticket', 1))
		INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata)
		VALUES ($3, $1, 'ticket', 1, $2, 'ticket.created', 1, $4::jsonb, '{"actor":{"type":"system"},"channel":"system"}')`,
		poisonTicket, other, uuid.New(), string(data)); err != nil {
		t.Fatal(err)
	}
	// A relay batch (1,000 events) piles up behind it: the old relay
	// retried that batch forever and published nothing newer.
	const filler = 1000
	small := `{"subject":"filler","status":"new","priority":"normal","type":"question","channel":"api","tags":[],"customer_id":"` + uuid.NewString() + `"}`
	if _, err := pool.Pool().Exec(ctx, `WITH st AS (INSERT INTO streams (id, workspace_id, type, version)
			SELECT gen_random_uuid(), $1, 'ticket', 1 FROM generate_series(1, $2) RETURNING id)
		INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata)
		SELECT gen_random_uuid(), st.id, 'ticket', 1, $1, 'ticket.created', 1, $3::jsonb, '{"actor":{"type":"system"},"channel":"system"}' FROM st`,
		other, filler, small); err != nil {
		t.Fatal(err)
	}

	const later = 3
	for i := range later {
		if _, _, err := c.CreateTicket(ctx, client.TicketCreate{Subject: fmt.Sprintf("after %d", i),
			Customer: client.TicketCustomer{Email: fmt.Sprintf("c%d@example.com", i)}, Message: client.TicketMessage{Body: "hi"}}); err != nil {
			t.Fatalf("create ticket: %v", err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for i := range later {
			if delivered[fmt.Sprintf("after %d", i)] == 0 {
				return fmt.Errorf("webhook deliveries so far: %v", delivered)
			}
		}
		return nil
	})
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	testenv.Eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := ch.QueryRow(ctx, `SELECT count() FROM tickets FINAL WHERE subject LIKE 'after %'`).Scan(&n); err != nil {
			return err
		}
		var poison, fillers uint64
		if err := ch.QueryRow(ctx, `SELECT count() FROM tickets FINAL WHERE ticket_id = ? AND length(custom_fields) > 1200000`, poisonTicket).Scan(&poison); err != nil {
			return err
		}
		if err := ch.QueryRow(ctx, `SELECT count() FROM tickets FINAL WHERE workspace_id = ? AND subject = 'filler'`, other).Scan(&fillers); err != nil {
			return err
		}
		if n != later || poison != 1 || fillers != filler {
			return fmt.Errorf("ClickHouse has %d of the %d later tickets, %d oversized ones and %d of %d fillers", n, later, poison, fillers, filler)
		}
		return nil
	})
}
