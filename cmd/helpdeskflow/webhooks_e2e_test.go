package main

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestDev_WebhookDelivered follows a ticket from the API through the relay,
// Kafka and the dispatcher to a signed webhook delivery, in one dev
// process, with an automation rule and an SLA policy acting on the way.
func TestDev_WebhookDelivered(t *testing.T) {
	dev := startDev(t, testConfig(t))
	var mu sync.Mutex
	var got []*nethttp.Request
	var bodies [][]byte
	receiver := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, body)
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)

	c, ctx := newAPIClient(t, dev), context.Background()
	hook, err := c.CreateWebhook(ctx, client.WebhookCreate{URL: receiver.URL, EventTypes: []string{"ticket.created", "ticket.sla_policy_applied"}})
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	secret := hook.Secret
	// Rules and policies are not in the client: raw calls.
	if status, _, body := call(t, "POST", dev.url+"/v1/automations", dev.key, []byte(`{"name": "refunds", "conditions": {"all": [{"field": "ticket.subject", "operator": "contains", "value": "refund"}]}, "actions": [{"type": "set_priority", "value": "urgent"}]}`)); status != 201 {
		t.Fatalf("create rule: %d %v", status, body)
	}
	if status, _, body := call(t, "POST", dev.url+"/v1/sla-policies", dev.key, []byte(`{"name": "urgent", "conditions": {"all": [{"field": "ticket.priority", "operator": "is", "value": "urgent"}]}, "first_response": {"minutes": 30}}`)); status != 201 {
		t.Fatalf("create policy: %d %v", status, body)
	}
	ticket, _, err := c.CreateTicket(ctx, client.TicketCreate{Subject: "refund please", Customer: client.TicketCustomer{Email: "a@example.com"},
		Message: client.TicketMessage{Body: "hi"}})
	if err != nil || ticket.Priority != "urgent" || ticket.SLA == nil {
		t.Fatalf("create ticket: %+v %v", ticket, err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 {
			return fmt.Errorf("%d deliveries so far", len(got))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	types := map[string]bool{}
	for i, r := range got {
		types[r.Header.Get("X-HDF-Event-Type")] = true
		if err := client.VerifyWebhook(r.Header.Get("X-HDF-Signature"), bodies[i], secret, time.Now()); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	if !types["ticket.created"] || !types["ticket.sla_policy_applied"] {
		t.Errorf("delivered types: %v", types)
	}
}
