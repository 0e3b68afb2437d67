package main

import (
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
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

	status, _, hook := call(t, "POST", dev.url+"/v1/webhooks", dev.key, []byte(fmt.Sprintf(`{"url": %q, "event_types": ["ticket.created", "ticket.sla_policy_applied"]}`, receiver.URL)))
	if status != 201 {
		t.Fatalf("create webhook: %d %v", status, hook)
	}
	secret, _ := hook["secret"].(string)
	if status, _, body := call(t, "POST", dev.url+"/v1/automations", dev.key, []byte(`{"name": "refunds", "conditions": {"all": [{"field": "ticket.subject", "operator": "contains", "value": "refund"}]}, "actions": [{"type": "set_priority", "value": "urgent"}]}`)); status != 201 {
		t.Fatalf("create rule: %d %v", status, body)
	}
	if status, _, body := call(t, "POST", dev.url+"/v1/sla-policies", dev.key, []byte(`{"name": "urgent", "conditions": {"all": [{"field": "ticket.priority", "operator": "is", "value": "urgent"}]}, "first_response": {"minutes": 30}}`)); status != 201 {
		t.Fatalf("create policy: %d %v", status, body)
	}
	status, _, ticket := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{"subject": "refund please", "customer": {"email": "a@example.com"}, "message": {"body": "hi"}}`))
	if status != 201 || ticket["priority"] != "urgent" || ticket["sla"] == nil {
		t.Fatalf("create ticket: %d %v", status, ticket)
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
		if err := webhook.Verify(r.Header.Get("X-HDF-Signature"), bodies[i], secret, time.Minute, time.Now()); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	if !types["ticket.created"] || !types["ticket.sla_policy_applied"] {
		t.Errorf("delivered types: %v", types)
	}
}
