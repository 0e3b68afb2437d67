package chaos_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/helpdeskflow/helpdeskflow/chaos"
)

// storedFor makes the events the writes would leave: a create carries its
// token in the subject, an update as the new value of a change whose old
// value is the previous update's token.
func storedFor(writes []chaos.Write) []chaos.StoredEvent {
	var events []chaos.StoredEvent
	previous := "first"
	for i, w := range writes {
		data := fmt.Sprintf(`{"subject": "load %s"}`, w.Token)
		if w.Kind == chaos.WriteUpdate {
			data = fmt.Sprintf(`{"subject": {"old": "update %s", "new": "update %s"}}`, previous, w.Token)
			previous = w.Token
		}
		events = append(events, chaos.StoredEvent{ID: fmt.Sprint(i), Type: "ticket.updated", Data: data})
	}
	return events
}

func acknowledged(kinds ...chaos.Write) []chaos.Write { return kinds }

func TestTallyStore_AllStoredOnce(t *testing.T) {
	var writes []chaos.Write
	for i := range 6 {
		kind := chaos.WriteCreate
		if i%2 == 1 {
			kind = chaos.WriteUpdate
		}
		writes = append(writes, chaos.Write{Token: chaos.NewToken(), Kind: kind, Outcome: chaos.OutcomeOK})
	}
	tally := chaos.TallyStore(writes, chaos.TokenCounts(storedFor(writes)), 1)[0]
	if tally.Failed() || tally.Acknowledged != 6 {
		t.Fatalf("every write stored once (an update's token also as the next update's old value): got %+v", tally)
	}
}

func TestTallyStore_CatchesADroppedWrite(t *testing.T) {
	writes := acknowledged(
		chaos.Write{Token: chaos.NewToken(), Kind: chaos.WriteCreate, Outcome: chaos.OutcomeOK},
		chaos.Write{Token: chaos.NewToken(), Kind: chaos.WriteCreate, Outcome: chaos.OutcomeOK, Phase: 1},
		chaos.Write{Token: chaos.NewToken(), Kind: chaos.WriteCreate, Outcome: chaos.OutcomeOK, Phase: 1},
	)
	events := storedFor(writes)
	events = append(events[:1], events[2:]...) // the store lost the second write
	tally := chaos.TallyStore(writes, chaos.TokenCounts(events), 2)
	if tally[0].Failed() || !tally[1].Failed() || tally[1].Lost != 1 {
		t.Fatalf("want the dropped write counted lost in phase 1 only, got %+v", tally)
	}
}

func TestTallyStore_CatchesADuplicateAndAPhantom(t *testing.T) {
	writes := acknowledged(
		chaos.Write{Token: chaos.NewToken(), Kind: chaos.WriteCreate, Outcome: chaos.OutcomeOK},
		chaos.Write{Token: chaos.NewToken(), Kind: chaos.WriteCreate, Outcome: chaos.OutcomeUnknown, Refused: true},
		chaos.Write{Token: chaos.NewToken(), Kind: chaos.WriteCreate, Outcome: chaos.OutcomeUnknown},
	)
	events := storedFor(writes)
	events = append(events, events[0]) // the first write stored twice
	tally := chaos.TallyStore(writes, chaos.TokenCounts(events), 1)[0]
	if tally.Duplicated != 1 || tally.Phantom != 1 || tally.Unknown != 1 || tally.UnknownKept != 1 || !tally.Failed() {
		t.Fatalf("want 1 duplicate, 1 phantom (refused but stored), 1 unknown (kept once); got %+v", tally)
	}
}

func TestTallyProjection_CatchesMissingAndDuplicatedEvents(t *testing.T) {
	events := []chaos.StoredEvent{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	tally, phantoms := chaos.TallyProjection(events, map[string]uint64{"a": 1, "c": 2, "z": 1}, 1, func(time.Time) int { return 0 })
	if tally[0].Missing != 1 || tally[0].Duplicated != 1 || phantoms != 1 {
		t.Fatalf("want b missing, c duplicated and z a phantom; got %+v, %d phantoms", tally[0], phantoms)
	}
}

func TestTallyWebhooks_CatchesAnEventNeitherDeliveredNorFailed(t *testing.T) {
	events := []chaos.StoredEvent{{ID: "a", Type: "ticket.created"}, {ID: "b", Type: "ticket.created"},
		{ID: "c", Type: "ticket.created"}, {ID: "d", Type: "ticket.created"}, {ID: "e", Type: "ticket.created"},
		{ID: "f", Type: "ticket.updated"}}
	deliveries := map[string]chaos.DeliveryRecord{
		"a": {Status: "succeeded", Attempts: 1, Logged: 1},
		"b": {Status: "failed", Attempts: 3, Logged: 3},
		"c": {Status: "failed", Attempts: 3, Logged: 2}, // one attempt cut short by a killed dispatcher
		"d": {Status: "failed", Attempts: 3, Logged: 0}, // nothing logged
		// e: no delivery at all
	}
	tally := chaos.TallyWebhooks(events, map[string]bool{"ticket.created": true}, map[string]int{"a": 1},
		deliveries, 1, func(time.Time) int { return 0 })[0]
	if tally.Subscribed != 5 || tally.Received != 1 || tally.PermanentFailed != 2 || tally.UnloggedAttempts != 1 || tally.Missing != 2 || !tally.Failed() {
		t.Fatalf("want 5 subscribed: a received, b and c failed with their attempts logged (c one short), d and e missing; got %+v", tally)
	}
}

func TestAvailability_FailuresOutsideADownWindowAreUnexcused(t *testing.T) {
	var a chaos.Availability
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	a.MarkDown(0, at(100), at(300))
	a.Record(0, 0, at(0), at(10), true)
	a.Record(0, 0, at(90), at(150), false)  // overlaps the window: excused
	a.Record(0, 0, at(200), at(250), false) // inside it
	a.Record(1, 0, at(200), at(220), false) // the other process was up
	a.Record(0, 0, at(400), at(410), true)
	tally := a.Tally(1)[0]
	if tally.Requests != 5 || tally.Failed != 3 || tally.Unexcused != 1 {
		t.Fatalf("want 5 requests, 3 failed, 1 unexcused; got %+v", tally)
	}
	if tally.Longest != 160*time.Millisecond {
		t.Fatalf("want the longest gap 90ms..250ms = 160ms, got %s", tally.Longest)
	}
}

// history builds one ticket's operations: init at version 1, then ops.
type history struct{ ops []porcupine.Operation }

func (h *history) add(client int, in chaos.TicketInput, out chaos.TicketOutput, call, ret int64) {
	in.Ticket = "t1"
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
}

func state(subject string, version int64) chaos.TicketOutput {
	return chaos.TicketOutput{Outcome: chaos.OutcomeOK, State: chaos.TicketState{Subject: subject, Version: version}}
}

func newHistory() *history {
	h := &history{}
	h.add(0, chaos.TicketInput{Kind: chaos.OpInit}, state("s0", 1), 0, 1)
	return h
}

func TestCheckLinearizable_AcceptsConcurrentWritesAndUnknownOutcomes(t *testing.T) {
	h := newHistory()
	// Two concurrent PATCHes: either order is fine.
	h.add(1, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "a"}, state("a", 3), 10, 20)
	h.add(2, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "b"}, state("b", 2), 11, 19)
	// A stale If-Match: 412, nothing happened.
	h.add(1, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "x", IfMatch: 2}, chaos.TicketOutput{Outcome: chaos.OutcomePrecondition}, 30, 31)
	// A write whose answer was lost: it happened, as a later read shows…
	h.add(3, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "c", IfMatch: 3}, chaos.TicketOutput{Outcome: chaos.OutcomeUnknown}, 40, chaos.PendingReturn)
	h.add(2, chaos.TicketInput{Kind: chaos.OpRead}, state("c", 4), 50, 51)
	// …and one that never happened.
	h.add(4, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "d"}, chaos.TicketOutput{Outcome: chaos.OutcomeUnknown}, 60, chaos.PendingReturn)
	h.add(2, chaos.TicketInput{Kind: chaos.OpRead}, state("c", 4), 70, 71)
	res, err := chaos.CheckLinearizable(h.ops, 10*time.Second, t.TempDir(), "ok")
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != porcupine.Ok || res.Visualization != "" || res.Unknown != 2 {
		t.Fatalf("want a linearizable history with 2 unknown outcomes and no visualisation, got %+v", res)
	}
}

func TestCheckLinearizable_CatchesAStaleReadAndWritesTheVisualisation(t *testing.T) {
	h := newHistory()
	h.add(1, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "a", API: 0}, state("a", 2), 10, 20)
	// A read that started after the PATCH was acknowledged, on the other
	// process, showing the ticket before it.
	h.add(2, chaos.TicketInput{Kind: chaos.OpRead, API: 1}, state("s0", 1), 30, 40)
	dir := t.TempDir()
	res, err := chaos.CheckLinearizable(h.ops, 10*time.Second, dir, "stale")
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != porcupine.Illegal {
		t.Fatalf("want the stale read found not linearizable, got %+v", res)
	}
	if !strings.HasPrefix(res.Visualization, dir) {
		t.Fatalf("want the visualisation in %s, got %q", dir, res.Visualization)
	}
	if b, err := os.ReadFile(res.Visualization); err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("the visualisation is not an HTML file: %v", err)
	}
}

func TestCheckLinearizable_CatchesAPreconditionFailureThatShouldHaveApplied(t *testing.T) {
	h := newHistory()
	// If-Match names the current version, yet 412.
	h.add(1, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "a", IfMatch: 1}, chaos.TicketOutput{Outcome: chaos.OutcomePrecondition}, 10, 20)
	res, err := chaos.CheckLinearizable(h.ops, 10*time.Second, t.TempDir(), "412")
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != porcupine.Illegal {
		t.Fatalf("want a 412 at the matching version found not linearizable, got %+v", res)
	}
}

func TestCheckLinearizable_CatchesALostAcknowledgedWrite(t *testing.T) {
	h := newHistory()
	h.add(1, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "a"}, state("a", 2), 10, 20)
	h.add(2, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "b"}, state("b", 3), 30, 40)
	// A later write acknowledged at version 3 again: "a" or "b" was lost.
	h.add(1, chaos.TicketInput{Kind: chaos.OpWrite, Subject: "c"}, state("c", 3), 50, 60)
	res, err := chaos.CheckLinearizable(h.ops, 10*time.Second, t.TempDir(), "lost")
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != porcupine.Illegal {
		t.Fatalf("want two writes acknowledged at one version found not linearizable, got %+v", res)
	}
}
