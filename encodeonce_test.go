package helpdeskflow_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// TestApplyTicket_CommandBuiltEventsAreNotDecoded: folding the events a
// command just built (NewEventOf, then Stored) gives the same ticket as
// folding them read back from the store, without decoding their data
// again (a fraction of the allocations).
func TestApplyTicket_CommandBuiltEventsAreNotDecoded(t *testing.T) {
	ref := helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: uuid.New(), Type: helpdeskflow.StreamTicket}
	created, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketCreated, helpdeskflow.TicketCreated{
		Subject: "Broken", Status: helpdeskflow.StatusNew, Priority: helpdeskflow.PriorityNormal, Type: "question",
		Channel: "api", Tags: []string{"a", "b"}, CustomerID: uuid.New(), CustomFields: map[string]any{"plan": "pro", "seats": 3.0},
		Message: helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorCustomer,
			Body: strings.Repeat("<p>It broke.</p>", 40), BodyText: strings.Repeat("It broke. ", 40)},
	})
	if err != nil {
		t.Fatal(err)
	}
	high := helpdeskflow.PriorityHigh
	updated, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
		Priority:     &helpdeskflow.Change[string]{Old: helpdeskflow.PriorityNormal, New: high},
		Tags:         &helpdeskflow.Change[[]string]{Old: []string{"a", "b"}, New: []string{"a"}},
		CustomFields: map[string]helpdeskflow.Change[any]{"seats": {Old: 3.0, New: 4.0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := helpdeskflow.Metadata{Channel: "api"}
	built := []helpdeskflow.Event{created.Stored(ref, 1, md), updated.Stored(ref, 2, md)}
	var read []helpdeskflow.Event
	for _, e := range built {
		read = append(read, helpdeskflow.Event{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, StreamID: e.StreamID,
			StreamType: e.StreamType, Version: e.Version, WorkspaceID: e.WorkspaceID, OccurredAt: e.OccurredAt, Data: e.Data, Metadata: e.Metadata})
	}
	fold := func(events []helpdeskflow.Event) helpdeskflow.Ticket {
		var tk helpdeskflow.Ticket
		for _, e := range events {
			if err := helpdeskflow.ApplyTicket(&tk, e); err != nil {
				t.Fatal(err)
			}
		}
		return tk
	}
	if a, b := fold(built), fold(read); !reflect.DeepEqual(a, b) {
		t.Fatalf("folding the command's events gives\n%+v\nreading them back gives\n%+v", a, b)
	}
	builtAllocs := testing.AllocsPerRun(50, func() { fold(built) })
	readAllocs := testing.AllocsPerRun(50, func() { fold(read) })
	if builtAllocs*3 > readAllocs {
		t.Errorf("folding the command's events allocates %.0f times, decoding them %.0f: want a third or less", builtAllocs, readAllocs)
	}
}
