package pollers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// A paused webhook collects its deliveries (held, not sent) up to the
// held cap; beyond it the oldest are dropped, listed and counted; resuming
// sends the held ones, each ticket's in order.
func TestWebhooks_PausedHoldsDeliveriesUntilResumed(t *testing.T) {
	f := newWebhookFixture(t)
	f.store.QueueStore = queues.New(f.store.DB, queues.WithHeldCap(3))
	paused := newReceiver(t, nil)
	other := newReceiver(t, nil)
	hook := f.subscribe(paused.srv.URL, "*")
	f.subscribe(other.srv.URL, "*")
	no := false
	if _, err := f.svc.Outbound.UpdateWebhook(f.ctx, f.workspace, f.md, hook.ID, outbound.UpdateWebhook{Active: &no}); err != nil {
		t.Fatal(err)
	}
	f.worker(time.Second)
	a, b := uuid.New(), uuid.New()
	var sent []helpdeskflow.Event
	for _, p := range []struct {
		stream  uuid.UUID
		version int64
	}{{a, 1}, {a, 2}, {a, 3}, {b, 1}, {b, 2}} {
		sent = append(sent, f.publish(p.stream, p.version, helpdeskflow.EventTicketUpdated))
	}
	// The active webhook gets all five; by then the paused one would have
	// been sent its deliveries too, were they not held.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(answered(other, 200)); n != 5 {
			return fmt.Errorf("%d of 5 delivered to the active webhook", n)
		}
		return nil
	})
	if n := len(paused.requests()); n != 0 {
		t.Fatalf("the paused webhook was sent %d requests", n)
	}
	held := f.deliveries(hook.ID, helpdeskflow.DeliveryHeld)
	dropped := f.deliveries(hook.ID, helpdeskflow.DeliveryDropped)
	if len(held) != 3 || len(dropped) != 2 {
		t.Fatalf("held %d, dropped %d; want 3 held (the cap) and the 2 oldest dropped", len(held), len(dropped))
	}
	for _, d := range dropped {
		if d.EventID != sent[0].ID && d.EventID != sent[1].ID {
			t.Errorf("dropped %s (event %s), not one of the two oldest", d.ID, d.EventID)
		}
	}
	if n := len(f.deliveries(hook.ID, helpdeskflow.DeliveryPending)); n != 0 {
		t.Errorf("a paused webhook lists %d deliveries as pending, want them listed as held", n)
	}
	w, err := f.store.Webhook(f.ctx, f.workspace, hook.ID)
	if err != nil || w.DroppedDeliveries != 2 {
		t.Fatalf("webhook dropped_deliveries = %d, %v; want 2", w.DroppedDeliveries, err)
	}

	yes := true
	if _, err := f.svc.Outbound.UpdateWebhook(f.ctx, f.workspace, f.md, hook.ID, outbound.UpdateWebhook{Active: &yes}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(answered(paused, 200)); n != 3 {
			return fmt.Errorf("%d of 3 held deliveries sent after resuming", n)
		}
		return nil
	})
	var gotB []int64
	for _, r := range paused.requests() {
		if r.Ticket == b.String() {
			gotB = append(gotB, r.Version)
		}
		if r.Ticket == a.String() && r.Version != 3 {
			t.Errorf("sent a dropped delivery: ticket a version %d", r.Version)
		}
	}
	if fmt.Sprint(gotB) != "[1 2]" {
		t.Errorf("ticket b's held deliveries sent as versions %v, want [1 2]", gotB)
	}
	if n := len(f.deliveries(hook.ID, helpdeskflow.DeliveryDropped)); n != 2 {
		t.Errorf("after resuming: %d dropped, want them to stay dropped", n)
	}
}
