package queues_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// Finished deliveries whose last outcome is older than the cutoff go, with
// their attempts, a bounded batch at a time; pending ones (however old),
// young ones and one redelivered lately stay, and the queue still claims
// the pending ones in order afterwards.
func TestPurgeDeliveries(t *testing.T) {
	q := newDeliveryQueue(t)
	now := q.t0
	old := now.Add(-40 * 24 * time.Hour)
	young := now.Add(-time.Hour)
	cutoff := now.Add(-30 * 24 * time.Hour)
	q.t0 = old // the attempts below start then
	hook, gone := q.webhook(q.ws), q.webhook(q.ws)

	// Five old deliveries of five streams, finished long ago: four
	// succeeded, one failed for good. One more of the webhook deleted then:
	// cancelled.
	for range 5 {
		q.enqueue(hook, uuid.New(), 1, 1, old)
	}
	claimed := q.claim(old, 10, 10)
	if len(claimed) != 5 {
		t.Fatalf("want 5 old deliveries claimed, got %d", len(claimed))
	}
	q.finish(claimed[:4], helpdeskflow.DeliverySucceeded, time.Time{})
	q.finish(claimed[4:], helpdeskflow.DeliveryFailed, time.Time{})
	cancelled := q.enqueue(gone, uuid.New(), 1, 1, old)[1]
	if err := q.deleteWebhook(gone, old); err != nil {
		t.Fatal(err)
	}
	// The failed one of an old stream is redelivered lately and succeeds:
	// its last outcome is young.
	redelivered := claimed[4].ID
	if err := q.store.Redeliver(q.ctx, q.ws, hook, redelivered, young); err != nil {
		t.Fatal(err)
	}
	q.t0 = young
	again := q.claim(young, 10, 10)
	if len(again) != 1 || again[0].ID != redelivered {
		t.Fatalf("want the redelivered delivery claimed, got %d", len(again))
	}
	q.finish(again, helpdeskflow.DeliverySucceeded, time.Time{})
	// Old but still pending: two versions of one stream, the second held
	// back behind the first.
	pendingStream := uuid.New()
	pending := q.enqueue(hook, pendingStream, 1, 2, old)
	// Young and finished.
	q.enqueue(hook, uuid.New(), 1, 1, young)
	youngClaim := q.claim(young, 10, 10)
	// The pending stream's head was claimed too: it fails and is due
	// again now.
	var retry, done []queues.ClaimedDelivery
	for _, c := range youngClaim {
		if c.StreamID == pendingStream {
			retry = append(retry, c)
		} else {
			done = append(done, c)
		}
	}
	q.finish(done, helpdeskflow.DeliverySucceeded, time.Time{})
	q.finish(retry, helpdeskflow.DeliveryPending, now)
	if len(done) != 1 || len(retry) != 1 {
		t.Fatalf("want the young delivery and the pending head claimed, got %d and %d", len(done), len(retry))
	}

	// Four old finished ones (the redelivered one is young again) and the
	// cancelled one: 5 deliveries, 4 attempts.
	d, a, err := q.store.PurgeDeliveries(q.ctx, cutoff, 2)
	if err != nil || d != 2 {
		t.Fatalf("first batch of 2: got %d deliveries, %v", d, err)
	}
	d2, a2, err := q.store.PurgeDeliveries(q.ctx, cutoff, 100)
	if err != nil || d2 != 3 || a+a2 != 4 {
		t.Fatalf("rest: got %d deliveries (want 3), %d attempts in all (want 4), %v", d2, a+a2, err)
	}
	if d, a, err := q.store.PurgeDeliveries(q.ctx, cutoff, 100); err != nil || d != 0 || a != 0 {
		t.Fatalf("nothing left to purge: got %d, %d, %v", d, a, err)
	}

	var left []string
	rows, err := q.db.Pool().Query(q.ctx, `SELECT id::text || ' ' || status FROM webhook_deliveries ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		redelivered.String() + " succeeded": true, pending[1].String() + " pending": true, pending[2].String() + " pending": true,
		done[0].ID.String() + " succeeded": true,
	}
	if len(left) != len(want) {
		t.Errorf("deliveries left: got %v, want %d of them", left, len(want))
	}
	for _, l := range left {
		if !want[l] {
			t.Errorf("delivery %s should have been purged (or has the wrong status)", l)
		}
	}
	var orphans int
	if err := q.db.Pool().QueryRow(q.ctx, `SELECT count(*) FROM webhook_attempts a
		WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d attempts of purged deliveries are left", orphans)
	}
	ds, err := q.store.Deliveries(q.ctx, q.ws, gone, "", uuid.Nil, 10)
	if err != nil || len(ds) != 0 {
		t.Errorf("the deleted webhook's cancelled delivery %s: want it purged, got %d, %v", cancelled, len(ds), err)
	}

	// The queue still delivers the pending stream in order.
	var got []int64
	for range 2 {
		c := q.claim(now.Add(time.Minute), 10, 10)
		got = append(got, versions(c)...)
		q.finish(c, helpdeskflow.DeliverySucceeded, time.Time{})
	}
	if fmt.Sprint(got) != "[1 2]" {
		t.Errorf("the pending stream after the purge: want versions [1 2] claimed in turn, got %v", got)
	}
}
