package queues_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// laterStreams enqueues one delivery of each of n new streams to hook,
// due at t0+1s, t0+2s, …, and returns their ids in that order.
func (q *deliveryQueue) laterStreams(hook uuid.UUID, n int) []uuid.UUID {
	var ids []uuid.UUID
	for i := 1; i <= n; i++ {
		ids = append(ids, q.enqueue(hook, uuid.New(), 1, 1, q.at(time.Duration(i)*time.Second))[1])
	}
	return ids
}

func ids(claimed []queues.ClaimedDelivery) []uuid.UUID {
	var out []uuid.UUID
	for _, c := range claimed {
		out = append(out, c.ID)
	}
	return out
}

// A claim starts each webhook where the last one ended; a stream's next
// delivery, due long before that and made the head when its predecessor
// succeeded, is still claimed by the very next claim, and only then.
func TestClaimDeliveries_SuccessorDueBeforeTheLastClaimIsClaimed(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	stream := q.enqueue(hook, uuid.New(), 1, 2, q.t0)
	later := q.laterStreams(hook, 5)
	now := q.at(10 * time.Second)

	first := q.claim(now, 10, 10)
	if got := versions(first); len(first) != 6 || !slices.Contains(ids(first), stream[1]) || slices.Contains(ids(first), stream[2]) {
		t.Fatalf("first claim: %d deliveries (versions %v); want the stream's first and the 5 later streams", len(first), got)
	}
	var head []queues.ClaimedDelivery
	for _, c := range first {
		if c.ID == stream[1] {
			head = append(head, c)
		}
	}
	q.finish(head, helpdeskflow.DeliverySucceeded, time.Time{})
	last := q.enqueue(hook, uuid.New(), 1, 1, q.at(6*time.Second))[1]
	next := ids(q.claim(now, 10, 10))
	if len(next) != 2 || !slices.Contains(next, stream[2]) || !slices.Contains(next, last) {
		t.Fatalf("after the predecessor succeeded, claimed %v; want its successor %s and the latest stream %s (later streams %v are leased)", next, stream[2], last, later)
	}
}

// A delivery given back unsent (released) keeps its early due time and is
// claimed again by the next claim, though that claim starts after it.
func TestClaimDeliveries_ReleasedDeliveryIsClaimedAgain(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	later := q.laterStreams(hook, 5)
	now := q.at(10 * time.Second)

	first := q.claim(now, 5, 10)
	if len(first) != 5 {
		t.Fatalf("claimed %d, want 5", len(first))
	}
	var given []queues.FinishedAttempt
	for _, c := range first {
		if c.ID == later[0] {
			given = append(given, queues.FinishedAttempt{DeliveryID: c.ID, Released: true,
				Attempt: helpdeskflow.DeliveryAttempt{Attempt: c.Attempts, StartedAt: now}})
		}
	}
	if err := q.store.FinishAttempts(q.ctx, given); err != nil {
		t.Fatal(err)
	}
	again := q.claim(now, 5, 10)
	if len(again) != 1 || again[0].ID != later[0] {
		t.Fatalf("after the release, claimed %v; want the released %s", ids(again), later[0])
	}
}

// A delivery that another process makes claimable, due before where this
// process's claims of its webhook start, is claimed by this process's
// full claim, at most fullClaimEvery (1 s) later.
func TestClaimDeliveries_OtherProcessesDeliveryBehindTheCursor(t *testing.T) {
	q := newDeliveryQueue(t)
	other := queues.New(q.db)
	hook := q.webhook(q.ws)
	q.laterStreams(hook, 3)
	now := q.at(10 * time.Second)
	if first := q.claim(now, 10, 10); len(first) != 3 {
		t.Fatalf("claimed %d, want 3", len(first))
	}
	early := q.deliveries(hook, uuid.New(), 1, 1, q.t0)
	if err := other.EnqueueDeliveries(q.ctx, early); err != nil {
		t.Fatal(err)
	}
	// And more work after the cursor, so that claims keep finding some.
	mine := q.enqueue(hook, uuid.New(), 1, 1, q.at(4*time.Second))[1]
	var got []uuid.UUID
	for _, at := range []time.Time{now.Add(100 * time.Millisecond), now.Add(1100 * time.Millisecond)} {
		got = append(got, ids(q.claim(at, 10, 10))...)
	}
	slices.SortFunc(got, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	want := []uuid.UUID{early[0].ID, mine}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v within a second; want this process's %s and the other process's %s", got, mine, early[0].ID)
	}
}

// An outcome names its delivery's webhook and stream (the transaction
// locks and moves heads by them); one without is refused, and nothing of
// the batch is written.
func TestFinishAttempts_NeedsWebhookAndStream(t *testing.T) {
	q := newDeliveryQueue(t)
	hook := q.webhook(q.ws)
	q.laterStreams(hook, 2)
	now := q.at(10 * time.Second)
	claimed := q.claim(now, 10, 10)
	fs := q.finished(claimed, helpdeskflow.DeliverySucceeded, time.Time{})
	fs[1].StreamID = uuid.Nil
	if err := q.store.FinishAttempts(q.ctx, fs); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Fatalf("FinishAttempts without a stream: %v, want %s", err, helpdeskflow.EValidation)
	}
	ds, err := q.store.Deliveries(q.ctx, q.ws, hook, helpdeskflow.DeliveryPending, uuid.Nil, 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("pending after the refused batch: %d (%v), want 2", len(ds), err)
	}
}
