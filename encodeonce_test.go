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

// TestWithDecodedData_DescribeAndFoldDecodeOnce: an event read back from
// the store and given WithDecodedData is described (FieldChanges) and
// folded (ApplyTicket, ApplyCustomer) as before, with one decoding for
// both, and data that does not decode still fails both.
func TestWithDecodedData_DescribeAndFoldDecodeOnce(t *testing.T) {
	ticket := helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: uuid.New(), Type: helpdeskflow.StreamTicket}
	customer := helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: ticket.WorkspaceID, Type: helpdeskflow.StreamCustomer}
	name := "Ada"
	newEvents := []struct {
		ref  helpdeskflow.StreamRef
		typ  string
		data any
	}{
		{ticket, helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
			Status:       &helpdeskflow.Change[string]{Old: helpdeskflow.StatusNew, New: helpdeskflow.StatusOpen},
			Tags:         &helpdeskflow.Change[[]string]{Old: []string{"a"}, New: []string{"a", "b"}},
			CustomFields: map[string]helpdeskflow.Change[any]{"seats": {Old: 3.0, New: 4.0}},
		}},
		{customer, helpdeskflow.EventCustomerUpdated, helpdeskflow.CustomerUpdated{Name: &helpdeskflow.Change[string]{Old: "", New: name}}},
	}
	for _, ne := range newEvents {
		n, err := helpdeskflow.NewEventOf(ne.typ, ne.data)
		if err != nil {
			t.Fatal(err)
		}
		s := n.Stored(ne.ref, 2, helpdeskflow.Metadata{Channel: "api"})
		read := helpdeskflow.Event{ID: s.ID, Type: s.Type, SchemaVersion: s.SchemaVersion, StreamID: s.StreamID,
			StreamType: s.StreamType, Version: s.Version, WorkspaceID: s.WorkspaceID, OccurredAt: s.OccurredAt, Data: s.Data, Metadata: s.Metadata}
		decoded := read.WithDecodedData()

		wantChanges, err := helpdeskflow.FieldChanges(read)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := helpdeskflow.FieldChanges(decoded); err != nil || !reflect.DeepEqual(got, wantChanges) {
			t.Fatalf("%s: changes of the decoded event %s (%v), want %s", ne.typ, got, err, wantChanges)
		}
		fold := func(e helpdeskflow.Event) any {
			if ne.ref.Type == helpdeskflow.StreamTicket {
				tk := helpdeskflow.Ticket{Status: helpdeskflow.StatusNew, Tags: []string{"a"}, CustomFields: map[string]any{"seats": 3.0}}
				if err := helpdeskflow.ApplyTicket(&tk, e); err != nil {
					t.Fatal(err)
				}
				return tk
			}
			var c helpdeskflow.Customer
			if err := helpdeskflow.ApplyCustomer(&c, e); err != nil {
				t.Fatal(err)
			}
			return c
		}
		if a, b := fold(decoded), fold(read); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: folding the decoded event gives\n%+v\nthe read one\n%+v", ne.typ, a, b)
		}
		both := func(e helpdeskflow.Event) {
			if _, err := helpdeskflow.FieldChanges(e); err != nil {
				t.Fatal(err)
			}
			fold(e)
		}
		once := testing.AllocsPerRun(50, func() { both(read.WithDecodedData()) })
		twice := testing.AllocsPerRun(50, func() { both(read) })
		if once >= twice {
			t.Errorf("%s: describing and folding after WithDecodedData allocates %.0f times, decoding for each %.0f: want fewer", ne.typ, once, twice)
		}

		broken := read
		broken.Data = []byte(`{"status": 7, "name": 7}`)
		broken = broken.WithDecodedData()
		if _, err := helpdeskflow.FieldChanges(broken); err == nil {
			t.Errorf("%s: the changes of undecodable data were listed", ne.typ)
		}
	}
}
