package pollers_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// appendTo appends events of types to a ticket stream of the fixture's
// workspace (data {"internal": true} for an internal note) and returns
// the new version.
func (f *webhookFixture) appendTo(stream uuid.UUID, expected int64, internal ...bool) int64 {
	f.t.Helper()
	var events []helpdeskflow.NewEvent
	for _, in := range internal {
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketMessageAdded, map[string]any{"internal": in, "body": "b"})
		if err != nil {
			f.t.Fatal(err)
		}
		events = append(events, e)
	}
	var version int64
	err := f.store.EventStore.Transact(f.ctx, func(tx *eventstore.Tx) error {
		v, err := tx.Append(f.ctx, helpdeskflow.StreamRef{ID: stream, WorkspaceID: f.workspace, Type: helpdeskflow.StreamTicket}, expected, testenv.SystemMetadata, events)
		version = v
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return version
}

// A replay re-sends a range of events, from before the webhook existed
// too, as new deliveries marked X-HDF-Replay (webhook-id still the event
// id), each ticket's in order, internal notes never; its progress shows
// them delivered.
func TestWebhooks_ReplayResendsARangeInOrder(t *testing.T) {
	f := newWebhookFixture(t)
	start := time.Now().Add(-time.Second)
	a, b := uuid.New(), uuid.New()
	f.appendTo(a, 0, false, false, false)
	f.appendTo(b, 0, false, true, false) // the second is an internal note
	all := testenv.ReadAtLeast(t, f.store.EventStore, helpdeskflow.Position{}, f.workspace, 6)
	byID := map[string]helpdeskflow.Event{}
	var ofA []helpdeskflow.Event
	for _, e := range all {
		byID[e.ID.String()] = e
		if e.StreamID == a {
			ofA = append(ofA, e)
		}
	}

	rc := newReceiver(t, nil)
	hook := f.subscribe(rc.srv.URL, helpdeskflow.EventTicketMessageAdded) // after the events
	replays := outbound.NewReplays(f.store, nil)
	replay, err := replays.ReplayWebhook(f.ctx, f.workspace, hook.ID, outbound.ReplayWebhook{From: outbound.ReplayBound{Text: "start", Time: &start}})
	if err != nil {
		t.Fatal(err)
	}
	if replay.Total != 5 {
		t.Fatalf("the replay counts %d events, want 5 (the internal note left out)", replay.Total)
	}
	// A range of change-feed positions: after a's first event up to its
	// third, inclusive.
	byPosition, err := replays.ReplayWebhook(f.ctx, f.workspace, hook.ID, outbound.ReplayWebhook{
		From: outbound.ReplayBound{Text: "p1", Position: &ofA[0].Position}, To: outbound.ReplayBound{Text: "p3", Position: &ofA[2].Position}})
	if err != nil || byPosition.Total != 2 {
		t.Fatalf("replay by positions: %d events, %v; want 2", byPosition.Total, err)
	}

	worker, err := pollers.NewReplayWorker(pollers.ReplayWorkerConfig{Store: f.store, Events: f.store.EventStore, Interval: 10 * time.Millisecond,
		Batch: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, worker.Run)
	f.worker(time.Second)
	testenv.Eventually(t, 15*time.Second, func() error {
		for _, r := range []helpdeskflow.WebhookReplay{replay, byPosition} {
			got, err := f.store.Replay(f.ctx, f.workspace, hook.ID, r.ID)
			if err != nil {
				return err
			}
			if !got.Done || got.Delivered != r.Total || got.Enqueued != r.Total || got.Pending != 0 {
				return fmt.Errorf("replay %s: %+v", r.ID, got)
			}
		}
		return nil
	})
	got := rc.requests()
	if len(got) != 7 {
		t.Fatalf("%d requests, want 7 (5 and 2)", len(got))
	}
	last := map[string]int64{} // per replay and stream
	lib, err := standardwebhooks.NewWebhook(hook.Secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		e, ok := byID[r.EventID]
		if !ok || helpdeskflow.IsInternalNote(e) {
			t.Fatalf("request %d: event %s is not one of the range's", i, r.EventID)
		}
		if r.Header.Get(webhook.HeaderReplay) != "true" || r.Header.Get("webhook-id") != r.EventID {
			t.Errorf("request %d: X-HDF-Replay %q, webhook-id %q (event %s)", i, r.Header.Get(webhook.HeaderReplay), r.Header.Get("webhook-id"), r.EventID)
		}
		if err := lib.Verify(r.Body, r.Header); err != nil {
			t.Errorf("request %d: the Standard Webhooks library: %v", i, err)
		}
		var key string
		for _, rep := range f.deliveries(hook.ID, "") {
			if rep.ID.String() == r.DeliveryID {
				key = rep.ReplayID.String() + e.StreamID.String()
				if rep.ReplayID == uuid.Nil {
					t.Errorf("request %d: delivery %s has no replay id", i, rep.ID)
				}
			}
		}
		if e.Version <= last[key] {
			t.Errorf("request %d: %s version %d after version %d", i, e.StreamID, e.Version, last[key])
		}
		last[key] = e.Version
	}
}
