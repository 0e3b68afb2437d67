package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// newAPIClient is the Go client of dev's API with its demo key.
func newAPIClient(t *testing.T, dev *devInstance) *client.Client {
	t.Helper()
	c, err := client.New(dev.url, dev.key, client.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// TestDev_Client drives the whole binary through the Go client: tickets and
// messages, sync by external id, lists paged by the iterator, customers,
// the change feed resumed from its cursor, and a webhook whose deliveries
// the client verifies.
func TestDev_Client(t *testing.T) {
	dev := startDev(t, testConfig(t))
	c := newAPIClient(t, dev)
	ctx := context.Background()

	var mu sync.Mutex
	var delivered []string
	var secret string
	receiver := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		mu.Lock()
		s := secret
		mu.Unlock()
		body, err := client.ReadWebhook(r, s, 1<<20)
		if err != nil {
			t.Errorf("delivery does not verify: %v", err)
			w.WriteHeader(400)
			return
		}
		var e client.WebhookEvent
		if err := json.Unmarshal(body, &e); err != nil || e.SchemaVersion != 1 || e.Type != r.Header.Get("X-HDF-Event-Type") || len(e.Data) == 0 {
			t.Errorf("delivery body %s: %v", body, err)
		}
		mu.Lock()
		delivered = append(delivered, r.Header.Get("X-HDF-Event-Type"))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	hook, err := c.CreateWebhook(ctx, client.WebhookCreate{URL: receiver.URL, EventTypes: []string{"ticket.message_added"}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	secret = hook.Secret
	mu.Unlock()
	if got, err := c.GetWebhook(ctx, hook.ID); err != nil || got.URL != receiver.URL || got.Secret != "" {
		t.Fatalf("webhook read back: %+v %v", got, err)
	}

	// Create, read, update, reply.
	created, w, err := c.CreateTicket(ctx, client.TicketCreate{Subject: "Refund for order 1042",
		Customer: client.TicketCustomer{Email: " Ada@Example.com", Name: "Ada"}, Message: client.TicketMessage{Body: "<p>Broken</p>"},
		Priority: "high", Tags: []string{"refund"}, ExternalID: ptr("order-1042")})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Created || w.Position == "" || created.Customer == nil || created.Customer.Email != "ada@example.com" || created.Version != 1 {
		t.Fatalf("created %+v, %+v", created, w)
	}
	updated, _, err := c.UpdateTicket(ctx, created.ID, client.TicketUpdate{Status: ptr("open"), TagsAdd: []string{"vip"}})
	if err != nil || updated.Status != "open" || fmt.Sprint(updated.Tags) != "[refund vip]" {
		t.Fatalf("update: %+v %v", updated, err)
	}
	replied, _, err := c.AddMessage(ctx, created.ID, client.MessageCreate{Body: "On its way", AuthorType: "agent"})
	if err != nil || len(replied.Messages) != 2 {
		t.Fatalf("reply: %+v %v", replied, err)
	}
	got, err := c.GetTicket(ctx, created.ID, false)
	if err != nil || got.Version != 3 || got.Messages[1].Body != "On its way" {
		t.Fatalf("read back: %+v %v", got, err)
	}
	var apiErr *client.Error
	if _, err := c.GetTicket(ctx, "00000000-0000-4000-8000-000000000000", false); !errors.As(err, &apiErr) || apiErr.Code != "not_found" || apiErr.RequestID == "" {
		t.Fatalf("unknown ticket: %v", err)
	}

	// Sync by external id.
	found, ok, err := c.FindTicket(ctx, "order-1042")
	if err != nil || !ok || found.ID != created.ID {
		t.Fatalf("find by external id: %+v %v %v", found, ok, err)
	}
	_, _, err = c.CreateTicket(ctx, client.TicketCreate{Subject: "Again", Customer: client.TicketCustomer{Email: "ada@example.com"},
		Message: client.TicketMessage{Body: "x"}, ExternalID: ptr("order-1042")})
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "conflict" || apiErr.ExistingID != created.ID {
		t.Fatalf("second create with the external id: %v", err)
	}
	upserted, w, err := c.UpsertTicket(ctx, client.TicketCreate{Subject: "Refund for order 1042 (paid)", Customer: client.TicketCustomer{Email: "ada@example.com"},
		Message: client.TicketMessage{Body: "x"}, ExternalID: ptr("order-1042")})
	if err != nil || w.Created || upserted.ID != created.ID || upserted.Subject != "Refund for order 1042 (paid)" {
		t.Fatalf("upsert: %+v %+v %v", upserted, w, err)
	}

	// Lists, paged by the iterator, read from the read model once it has
	// the last write.
	var last client.Written
	for i := range 4 {
		if _, last, err = c.CreateTicket(ctx, client.TicketCreate{Subject: fmt.Sprintf("Paged %d", i),
			Customer: client.TicketCustomer{Email: "pages@example.com"}, Message: client.TicketMessage{Body: "x"}, Tags: []string{"paged"}}); err != nil {
			t.Fatal(err)
		}
	}
	var subjects []string
	for tk, err := range c.ListTickets(ctx, client.TicketFilter{Tag: "paged", PageSize: 3, MinPosition: last.Position, MaxWait: 10 * time.Second}) {
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, tk.Subject)
	}
	if fmt.Sprint(subjects) != "[Paged 3 Paged 2 Paged 1 Paged 0]" {
		t.Errorf("listed %v, want the four paged tickets newest first over two pages", subjects)
	}

	// Customers.
	cu, w, err := c.UpsertCustomer(ctx, client.CustomerUpsert{Email: "grace@example.com", Name: ptr("Grace"), ExternalID: ptr("crm-7"), Tags: []string{"vip"}})
	if err != nil || !w.Created || cu.ExternalID == nil || *cu.ExternalID != "crm-7" {
		t.Fatalf("customer: %+v %v", cu, err)
	}
	if byID, ok, err := c.FindCustomerByExternalID(ctx, "crm-7"); err != nil || !ok || byID.ID != cu.ID {
		t.Fatalf("find customer by external id: %+v %v %v", byID, ok, err)
	}
	ada, ok, err := c.FindCustomerByEmail(ctx, "ADA@example.com")
	if err != nil || !ok || len(ada.TicketIDs) != 1 || ada.TicketIDs[0] != created.ID {
		t.Fatalf("find customer by email: %+v %v %v", ada, ok, err)
	}
	if changed, _, err := c.UpdateCustomer(ctx, cu.ID, client.CustomerUpdate{Name: ptr("Grace H.")}); err != nil || changed.Name != "Grace H." {
		t.Fatalf("update customer: %+v %v", changed, err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		var emails []string
		for c, err := range c.ListCustomers(ctx, client.CustomerFilter{Tag: "vip", PageSize: 1}) {
			if err != nil {
				return err
			}
			emails = append(emails, c.Email)
		}
		if fmt.Sprint(emails) != "[grace@example.com]" {
			return fmt.Errorf("vip customers %v", emails)
		}
		return nil
	})

	// The change feed: every event once, resumable from its cursor. It
	// shows events below the commit horizon, which other transactions of
	// the server may hold back for a moment: read on until all are in.
	feed := c.Events("", 5)
	types := map[string]int{}
	testenv.Eventually(t, 20*time.Second, func() error {
		for e, err := range feed.All(ctx) {
			if err != nil {
				return err
			}
			types[e.Type]++
		}
		if types["ticket.created"] != 5 || types["ticket.message_added"] != 1 || types["customer.created"] != 3 || types["customer.updated"] != 1 {
			return fmt.Errorf("feed types so far %v", types)
		}
		return nil
	})
	if _, _, err := c.AddMessage(ctx, created.ID, client.MessageCreate{Body: "Anything else?", AuthorType: "agent"}); err != nil {
		t.Fatal(err)
	}
	resumed := c.Events(feed.Cursor(), 0)
	var after []string
	testenv.Eventually(t, 20*time.Second, func() error {
		for e, err := range resumed.All(ctx) {
			if err != nil {
				return err
			}
			after = append(after, e.Type)
		}
		if len(after) == 0 {
			return errors.New("the resumed feed has nothing yet")
		}
		return nil
	})
	if fmt.Sprint(after) != "[ticket.message_added]" {
		t.Errorf("resumed feed: %v, want only the event after the cursor", after)
	}

	// Both replies were delivered, signed.
	testenv.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(delivered) != 2 {
			return fmt.Errorf("%d deliveries", len(delivered))
		}
		return nil
	})
	n := 0
	for d, err := range c.ListDeliveries(ctx, hook.ID, "") {
		if err != nil {
			t.Fatal(err)
		}
		if d.EventType != "ticket.message_added" || d.WebhookID != hook.ID {
			t.Errorf("delivery %+v", d)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d deliveries listed, want 2", n)
	}
	if err := c.DeleteWebhook(ctx, hook.ID); err != nil {
		t.Fatal(err)
	}
}
