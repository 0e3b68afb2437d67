package queues_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// deliveryQueue drives the delivery queue of one store as delivery
// workers would, on a clock of its own (t0 and offsets from it).
type deliveryQueue struct {
	t     *testing.T
	ctx   context.Context
	db    *pg.DB
	store *queues.Store
	ws    uuid.UUID
	t0    time.Time
}

func newDeliveryQueue(t *testing.T) *deliveryQueue {
	db := testenv.Postgres(t)
	return &deliveryQueue{t: t, ctx: context.Background(), db: db, store: queues.New(db), ws: uuid.New(),
		t0: time.Now().UTC().Truncate(time.Millisecond)}
}

// at is t0 + d.
func (q *deliveryQueue) at(d time.Duration) time.Time { return q.t0.Add(d) }

// webhook creates an active webhook in workspace ws.
func (q *deliveryQueue) webhook(ws uuid.UUID) uuid.UUID {
	q.t.Helper()
	w := helpdeskflow.Webhook{ID: uuid.New(), WorkspaceID: ws, URL: "https://hooks.example.com/" + uuid.NewString(),
		EventTypes: []string{"*"}, Active: true, CreatedAt: q.t0}
	if err := q.db.Transact(q.ctx, func(ptx *pg.Tx) error {
		tx := outbound.In(ptx)
		tx.CreateWebhook(q.ctx, w, []byte("sealed"))
		return nil
	}); err != nil {
		q.t.Fatal(err)
	}
	return w.ID
}

// enqueue records deliveries of versions from..to of stream to hook, due
// at due, and returns their ids by version.
func (q *deliveryQueue) enqueue(hook, stream uuid.UUID, from, to int64, due time.Time) map[int64]uuid.UUID {
	q.t.Helper()
	ids := map[int64]uuid.UUID{}
	ds := q.deliveries(hook, stream, from, to, due)
	for _, d := range ds {
		ids[d.StreamVersion] = d.ID
	}
	if err := q.store.EnqueueDeliveries(q.ctx, ds); err != nil {
		q.t.Fatal(err)
	}
	return ids
}

// deliveries are new deliveries of versions from..to of stream to hook.
func (q *deliveryQueue) deliveries(hook, stream uuid.UUID, from, to int64, due time.Time) []helpdeskflow.Delivery {
	var ds []helpdeskflow.Delivery
	for v := from; v <= to; v++ {
		ds = append(ds, helpdeskflow.Delivery{ID: uuid.New(), WebhookID: hook, WorkspaceID: q.ws, EventID: uuid.New(), EventType: "ticket.updated",
			StreamID: stream, StreamVersion: v, Payload: []byte(`{}`), MaxAttempts: 3, NextAttemptAt: &due})
	}
	return ds
}

func (q *deliveryQueue) claim(now time.Time, limit, perWebhook int) []queues.ClaimedDelivery {
	q.t.Helper()
	claimed, err := q.store.ClaimDeliveries(q.ctx, now, limit, perWebhook, nil, time.Minute)
	if err != nil {
		q.t.Fatal(err)
	}
	return claimed
}

// finish records one attempt of each claimed delivery: status, and for a
// retry (pending) the time it is due again.
func (q *deliveryQueue) finish(claimed []queues.ClaimedDelivery, status string, retryAt time.Time) {
	q.t.Helper()
	if err := q.store.FinishAttempts(q.ctx, q.finished(claimed, status, retryAt)); err != nil {
		q.t.Fatal(err)
	}
}

func (q *deliveryQueue) finished(claimed []queues.ClaimedDelivery, status string, retryAt time.Time) []queues.FinishedAttempt {
	fs := make([]queues.FinishedAttempt, len(claimed))
	for i, c := range claimed {
		fs[i] = queues.FinishedAttempt{DeliveryID: c.ID, WebhookID: c.WebhookID, StreamID: c.StreamID, Status: status,
			Attempt: helpdeskflow.DeliveryAttempt{Attempt: c.Attempts, URL: c.URL, StartedAt: q.t0}}
		if status == helpdeskflow.DeliveryPending {
			fs[i].NextAttemptAt = &retryAt
		}
	}
	return fs
}

// concurrently runs each of fns in a goroutine of its own and waits for
// them; errors fail the test.
func (q *deliveryQueue) concurrently(fns ...func() error) {
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				q.t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// deleteWebhook deletes hook as the DeleteWebhook command does.
func (q *deliveryQueue) deleteWebhook(hook uuid.UUID, now time.Time) error {
	return q.db.Transact(q.ctx, func(ptx *pg.Tx) error {
		tx := outbound.In(ptx)
		if _, _, err := tx.LockWebhook(q.ctx, q.ws, hook); err != nil {
			return err
		}
		tx.DeleteWebhook(q.ctx, hook, now)
		return nil
	})
}

// versions lists the claimed (stream version) of each delivery, sorted.
func versions(claimed []queues.ClaimedDelivery) []int64 {
	var vs []int64
	for _, c := range claimed {
		vs = append(vs, c.StreamVersion)
	}
	slices.Sort(vs)
	return vs
}

func ofWebhook(claimed []queues.ClaimedDelivery, hook uuid.UUID) []queues.ClaimedDelivery {
	var out []queues.ClaimedDelivery
	for _, c := range claimed {
		if c.WebhookID == hook {
			out = append(out, c)
		}
	}
	return out
}

// The wedge: 300 tickets whose first delivery is being retried
// later, each with two later events held back behind it (due long ago).
// The held-back deliveries are never candidates, so another webhook's
// delivery is claimed at once, the retried heads when they are due, and a
// successor as soon as its predecessor is done.
func TestClaimDeliveries_HeldBackDeliveriesDoNotWedgeTheQueue(t *testing.T) {
	q := newDeliveryQueue(t)
	backlog, other := q.webhook(q.ws), q.webhook(q.ws)
	for range 300 {
		q.enqueue(backlog, uuid.New(), 1, 3, q.t0)
	}
	heads := q.claim(q.t0, 1000, 1000)
	if got := versions(heads); len(got) != 300 || got[0] != 1 || got[299] != 1 {
		t.Fatalf("first claim: want the 300 version-1 heads, got %d: %v", len(got), got)
	}
	q.finish(heads, helpdeskflow.DeliveryPending, q.at(10*time.Minute))
	otherID := q.enqueue(other, uuid.New(), 1, 1, q.at(time.Second))[1]

	// The heads wait for their retry; 600 held-back deliveries were due
	// before the other webhook's: the other webhook's is claimed anyway.
	got := q.claim(q.at(time.Minute), 64, 4)
	if len(got) != 1 || got[0].ID != otherID {
		t.Fatalf("claim while the heads wait for their retry: want only the other webhook's delivery, got %d: %v", len(got), versions(got))
	}
	q.finish(got, helpdeskflow.DeliverySucceeded, time.Time{})

	// When the retries are due, heads are claimed (at most 4 of the
	// webhook), never a held-back delivery.
	retried := q.claim(q.at(11*time.Minute), 64, 4)
	if v := versions(retried); fmt.Sprint(v) != "[1 1 1 1]" {
		t.Fatalf("claim when retries are due: want 4 heads, got %v", v)
	}
	// Their successors become claimable once they are done, and come
	// first (due earlier than the other heads' retries).
	q.finish(retried, helpdeskflow.DeliverySucceeded, time.Time{})
	next := q.claim(q.at(11*time.Minute), 64, 4)
	if v := versions(next); fmt.Sprint(v) != "[2 2 2 2]" {
		t.Fatalf("claim after 4 heads succeeded: want their 4 successors, got %v", v)
	}
	for _, c := range next {
		if !slices.ContainsFunc(retried, func(r queues.ClaimedDelivery) bool { return r.StreamID == c.StreamID }) {
			t.Errorf("successor %s is not of a stream whose head succeeded", c.ID)
		}
	}
}

// A webhook with hundreds of due deliveries holds at most perWebhook of a
// claim; other webhooks' due deliveries are in the same claim, although
// they were due later.
func TestClaimDeliveries_OtherWebhooksAreNotBehindABacklog(t *testing.T) {
	q := newDeliveryQueue(t)
	backlog, other := q.webhook(q.ws), q.webhook(uuid.New())
	for range 300 {
		q.enqueue(backlog, uuid.New(), 1, 1, q.t0)
	}
	otherID := q.enqueue(other, uuid.New(), 1, 1, q.at(time.Second))[1]
	got := q.claim(q.at(time.Minute), 8, 4)
	if n := len(ofWebhook(got, backlog)); n != 4 {
		t.Errorf("want 4 of the backlog's webhook (perWebhook), got %d", n)
	}
	if o := ofWebhook(got, other); len(o) != 1 || o[0].ID != otherID {
		t.Errorf("the other webhook's due delivery is not in the claim: %d of %d claimed are its", len(o), len(got))
	}
}

// Workers claiming at once never take the same delivery, nor two of
// one (webhook, stream).
func TestClaimDeliveries_ConcurrentWorkers(t *testing.T) {
	q := newDeliveryQueue(t)
	hooks := []uuid.UUID{q.webhook(q.ws), q.webhook(q.ws)}
	for i := range 200 {
		q.enqueue(hooks[i%2], uuid.New(), 1, 3, q.t0)
	}
	var mu sync.Mutex
	seen := map[uuid.UUID]int{}
	inFlight := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				claimed, err := q.store.ClaimDeliveries(q.ctx, q.at(time.Second), 16, 8, nil, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, c := range claimed {
					seen[c.ID]++
					inFlight[c.WebhookID.String()+c.StreamID.String()]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Errorf("want the 200 heads claimed, got %d", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
		}
	}
	for pair, n := range inFlight {
		if n != 1 {
			t.Errorf("%d deliveries of one (webhook, stream) %s in flight at once", n, pair)
		}
	}
}

// A redelivered delivery goes before the later pending deliveries of its
// stream: while it is pending they wait (one already in flight finishes),
// and once it is done they are claimable again.
func TestRedeliver_KeepsStreamOrder(t *testing.T) {
	q := newDeliveryQueue(t)
	hook, stream := q.webhook(q.ws), uuid.New()
	ids := q.enqueue(hook, stream, 1, 3, q.t0)
	first := q.claim(q.t0, 10, 10)
	q.finish(first, helpdeskflow.DeliverySucceeded, time.Time{})
	second := q.claim(q.t0, 10, 10) // version 2 is in flight
	if v := versions(second); fmt.Sprint(v) != "[2]" {
		t.Fatalf("want version 2 claimed, got %v", v)
	}
	if err := q.store.Redeliver(q.ctx, q.ws, hook, ids[1], q.at(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Version 2 fails and is due again; version 1 goes first.
	q.finish(second, helpdeskflow.DeliveryPending, q.at(time.Second))
	if v := versions(q.claim(q.at(2*time.Second), 10, 10)); fmt.Sprint(v) != "[1]" {
		t.Fatalf("after redelivering version 1: want it alone claimed, got %v", v)
	}
	if got := q.claim(q.at(30*time.Second), 10, 10); len(got) != 0 {
		t.Fatalf("while version 1 is in flight, want nothing claimable, got %v", versions(got))
	}
}

// A successor recorded while its predecessor finishes is claimable
// afterwards, whichever commits first (a lost head would wedge the pair).
func TestEnqueueDeliveries_ConcurrentWithFinish(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	const n = 100
	streams := make([]uuid.UUID, n)
	for i := range streams {
		streams[i] = uuid.New()
		q.enqueue(hook, streams[i], 1, 1, q.t0)
	}
	heads := q.claim(q.t0, n, n)
	if len(heads) != n {
		t.Fatalf("want %d heads claimed, got %d", n, len(heads))
	}
	var fns []func() error
	for _, h := range heads {
		done := q.finished([]queues.ClaimedDelivery{h}, helpdeskflow.DeliverySucceeded, time.Time{})
		next := q.deliveries(hook, h.StreamID, 2, 2, q.t0)
		fns = append(fns, func() error { return q.store.FinishAttempts(q.ctx, done) },
			func() error { return q.store.EnqueueDeliveries(q.ctx, next) })
	}
	q.concurrently(fns...)
	if got := q.claim(q.at(time.Second), 2*n, 2*n); len(got) != n || versions(got)[0] != 2 {
		t.Fatalf("want the %d successors claimable, got %d", n, len(got))
	}
}

// Deleting a webhook cancels its pending deliveries: never attempted,
// listed as cancelled, blocking nothing; deliveries recorded for it after
// the deletion are cancelled too, and an attempt in flight at the
// deletion is logged without making the delivery pending again.
func TestDeleteWebhook_CancelsPendingDeliveries(t *testing.T) {
	q := newDeliveryQueue(t)
	gone, kept := q.webhook(q.ws), q.webhook(q.ws)
	stream := uuid.New()
	q.enqueue(gone, stream, 1, 3, q.t0)
	q.enqueue(kept, stream, 1, 3, q.t0)
	first := q.claim(q.t0, 10, 10)
	inFlight := ofWebhook(first, gone)
	if len(inFlight) != 1 || len(first) != 2 {
		t.Fatalf("want version 1 of each webhook claimed, got %d of the one to delete, %d in all", len(inFlight), len(first))
	}
	q.finish(ofWebhook(first, kept), helpdeskflow.DeliverySucceeded, time.Time{})
	if err := q.deleteWebhook(gone, q.at(time.Second)); err != nil {
		t.Fatal(err)
	}
	q.finish(inFlight, helpdeskflow.DeliveryPending, q.at(2*time.Second))
	late := q.enqueue(gone, stream, 4, 4, q.at(time.Second))[4]

	// Only the live webhook's deliveries are claimed, in order.
	var claimed []int64
	for range 3 {
		got := q.claim(q.at(time.Hour), 10, 10)
		if len(ofWebhook(got, gone)) != 0 {
			t.Fatalf("a deleted webhook's delivery was claimed")
		}
		claimed = append(claimed, versions(got)...)
		q.finish(got, helpdeskflow.DeliverySucceeded, time.Time{})
	}
	if fmt.Sprint(claimed) != "[2 3]" {
		t.Errorf("the live webhook's deliveries after its version 1: want [2 3], got %v", claimed)
	}
	ds, err := q.store.Deliveries(q.ctx, q.ws, gone, helpdeskflow.DeliveryCancelled, uuid.Nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 || ds[0].ID != late {
		t.Fatalf("want the deleted webhook's 4 deliveries listed as cancelled, got %d", len(ds))
	}
	for _, d := range ds {
		if d.NextAttemptAt != nil || (d.StreamVersion == 1) != (d.Attempts == 1) || (d.StreamVersion == 1) != (len(d.Log) == 1) {
			t.Errorf("cancelled delivery of version %d: %d attempts, %d logged, next %v", d.StreamVersion, d.Attempts, len(d.Log), d.NextAttemptAt)
		}
	}
	if _, err := q.store.Deliveries(q.ctx, uuid.New(), gone, "", uuid.Nil, 100); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("another workspace's webhook: want not_found, got %v", err)
	}
}

// A paused webhook's deliveries, those recorded before the pause too,
// are held: no claim takes them until the webhook is resumed.
func TestClaimDeliveries_PausedWebhookHoldsWhatItHas(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	id := q.enqueue(hook, uuid.New(), 1, 1, q.t0)[1]
	setActive := func(active bool) {
		t.Helper()
		if err := q.db.Transact(q.ctx, func(ptx *pg.Tx) error {
			tx := outbound.In(ptx)
			w, _, err := tx.LockWebhook(q.ctx, q.ws, hook)
			w.Active, w.UpdatedAt = active, q.t0
			tx.UpdateWebhook(q.ctx, w)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	setActive(false)
	if got := q.claim(q.at(time.Second), 10, 10); len(got) != 0 {
		t.Fatalf("a paused webhook's delivery was claimed (%d)", len(got))
	}
	setActive(true)
	if got := q.claim(q.at(2*time.Second), 10, 10); len(got) != 1 || got[0].ID != id {
		t.Fatalf("want the resumed webhook's held delivery claimed, got %d", len(got))
	}
}

// Deleting a webhook while its deliveries are recorded and finished
// neither deadlocks nor leaves any of them pending.
func TestDeleteWebhook_ConcurrentWithEnqueueAndFinish(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	for range 50 {
		q.enqueue(hook, uuid.New(), 1, 1, q.t0)
	}
	var fns []func() error
	for _, c := range q.claim(q.t0, 50, 50) {
		retry := q.finished([]queues.ClaimedDelivery{c}, helpdeskflow.DeliveryPending, q.t0)
		next := q.deliveries(hook, c.StreamID, 2, 2, q.t0)
		fns = append(fns, func() error { return q.store.FinishAttempts(q.ctx, retry) },
			func() error { return q.store.EnqueueDeliveries(q.ctx, next) })
	}
	fns = append(fns, func() error { return q.deleteWebhook(hook, q.t0) })
	q.concurrently(fns...)
	if pending, _, err := q.store.DeliveryQueue(q.ctx, q.t0); err != nil || pending != 0 {
		t.Errorf("want no delivery of the deleted webhook pending, got %d (%v)", pending, err)
	}
}

// TestRedeliver_ScopedToWebhookAndWorkspace: redelivering another
// workspace's delivery id through one's own webhook (or another webhook's
// id through one's own workspace) is 404 and changes nothing; it used to
// answer 404 but re-send the delivery.
func TestRedeliver_ScopedToWebhookAndWorkspace(t *testing.T) {
	q := newDeliveryQueue(t)
	mine := q.webhook(q.ws)
	otherWS := uuid.New()
	theirs := q.webhook(otherWS)
	ds := q.deliveries(theirs, uuid.New(), 1, 1, q.t0)
	ds[0].WorkspaceID = otherWS
	if err := q.store.EnqueueDeliveries(q.ctx, ds); err != nil {
		t.Fatal(err)
	}
	q.finish(q.claim(q.t0, 10, 10), helpdeskflow.DeliveryFailed, time.Time{})

	for _, try := range []struct {
		name          string
		workspace, wh uuid.UUID
	}{{"own webhook", q.ws, mine}, {"their webhook, own workspace", q.ws, theirs}, {"own webhook, their workspace", otherWS, mine}} {
		err := q.store.Redeliver(q.ctx, try.workspace, try.wh, ds[0].ID, q.at(time.Second))
		if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.ENotFound {
			t.Errorf("%s: err = %v, want not_found", try.name, err)
		}
	}
	if got := q.claim(q.at(time.Minute), 10, 10); len(got) != 0 {
		t.Fatalf("a refused redeliver made %d deliveries claimable", len(got))
	}
	log, err := q.store.Deliveries(q.ctx, otherWS, theirs, "", uuid.Nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Status != helpdeskflow.DeliveryFailed || log[0].MaxAttempts != 3 {
		t.Errorf("their delivery after the refused redelivers: %+v, want failed with 3 max attempts", log)
	}
	// Their own redeliver still works.
	if err := q.store.Redeliver(q.ctx, otherWS, theirs, ds[0].ID, q.at(time.Second)); err != nil {
		t.Fatalf("redeliver by its own workspace and webhook: %v", err)
	}
}

// A claim takes at most room[w] of a webhook in room (none when it is 0
// or less) and perWebhook of any other.
func TestClaimDeliveries_RoomPerWebhook(t *testing.T) {
	q := newDeliveryQueue(t)
	held, full, other := q.webhook(q.ws), q.webhook(q.ws), q.webhook(q.ws)
	for range 10 {
		for _, h := range []uuid.UUID{held, full, other} {
			q.enqueue(h, uuid.New(), 1, 1, q.t0)
		}
	}
	got, err := q.store.ClaimDeliveries(q.ctx, q.at(time.Second), 100, 4, map[uuid.UUID]int{held: 7, full: 0}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a, b, c := len(ofWebhook(got, held)), len(ofWebhook(got, full)), len(ofWebhook(got, other)); a != 7 || b != 0 || c != 4 {
		t.Errorf("claimed %d of the webhook with room 7, %d of the one with none, %d of another (perWebhook 4)", a, b, c)
	}
}

// A released delivery is due again at once, its claim not counted and
// nothing logged; a release by a worker whose lease ran out (the delivery
// was claimed again since) changes nothing.
func TestFinishAttempts_Release(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	q.enqueue(hook, uuid.New(), 1, 1, q.t0)
	q.enqueue(hook, uuid.New(), 1, 1, q.t0)
	claimed := q.claim(q.at(time.Second), 10, 10)
	if len(claimed) != 2 {
		t.Fatalf("claimed %d of 2", len(claimed))
	}
	released := func(c queues.ClaimedDelivery, at time.Time) queues.FinishedAttempt {
		return queues.FinishedAttempt{DeliveryID: c.ID, Released: true, Status: helpdeskflow.DeliveryPending,
			Attempt: helpdeskflow.DeliveryAttempt{Attempt: c.Attempts, StartedAt: at}}
	}
	// The first is given back at once; the second's lease runs out, it is
	// claimed again, and then its first claimer gives it back, too late.
	if err := q.store.FinishAttempts(q.ctx, []queues.FinishedAttempt{released(claimed[0], q.at(2*time.Second))}); err != nil {
		t.Fatal(err)
	}
	again := q.claim(q.at(2*time.Minute), 10, 10)
	if len(again) != 2 {
		t.Fatalf("after the release and the lease's end: claimed %d of 2", len(again))
	}
	for _, c := range again {
		want := 1
		if c.ID == claimed[1].ID {
			want = 2
		}
		if c.Attempts != want {
			t.Errorf("delivery claimed again with attempts %d, want %d", c.Attempts, want)
		}
	}
	if err := q.store.FinishAttempts(q.ctx, []queues.FinishedAttempt{released(claimed[1], q.at(2*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if got := q.claim(q.at(2*time.Minute+30*time.Second), 10, 10); len(got) != 0 {
		t.Errorf("a stale release freed a delivery leased by another claim: claimed %d", len(got))
	}
	ds, err := q.store.Deliveries(q.ctx, q.ws, hook, "", uuid.Nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if len(d.Log) != 0 {
			t.Errorf("a release logged an attempt: %+v", d.Log)
		}
	}
}
