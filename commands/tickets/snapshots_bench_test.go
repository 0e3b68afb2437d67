package tickets_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// BenchmarkCommandOnLongStream runs a command (a PATCH of the priority) on
// a ticket of 5,000 events (a message in every five, ticket.updated
// otherwise), two ways in the same run:
//
//   - snapshot+tail: as commands run now, loading the ticket from its
//     snapshot and the fewer than SnapshotEvery events after it;
//   - full fold: the baseline, as before snapshots: before each command
//     the ticket's snapshot is replaced by one of a format the code does
//     not know, so the command loads and folds all 5,000 events (and then
//     writes a snapshot, which the baseline had no need to).
func BenchmarkCommandOnLongStream(b *testing.B) {
	store := testenv.Store(b)
	svc := tickets.New(postgres.Tickets(store))
	ctx, workspace := context.Background(), uuid.New()
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		b.Fatal(err)
	}
	appendLongHistory(b, store, helpdeskflow.StreamRef{ID: tk.ID, WorkspaceID: workspace, Type: helpdeskflow.StreamTicket}, 5000)
	priorities := []string{helpdeskflow.PriorityUrgent, helpdeskflow.PriorityNormal}
	patch := func(b *testing.B, i int) {
		if _, err := svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{Priority: &priorities[i%2]}, true); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("snapshot+tail", func(b *testing.B) {
		patch(b, 1) // writes the first snapshot
		b.ResetTimer()
		for i := range b.N {
			patch(b, i)
		}
	})
	b.Run("full fold", func(b *testing.B) {
		for i := range b.N {
			b.StopTimer()
			err := store.Transact(ctx, func(tx *eventstore.Tx) error {
				tx.PutSnapshot(ctx, helpdeskflow.Snapshot{StreamID: tk.ID, WorkspaceID: workspace, StreamType: helpdeskflow.StreamTicket,
					Version: 1, Format: helpdeskflow.SnapshotFormat + 1, State: []byte("{}")})
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			patch(b, i)
		}
	})
}

// appendLongHistory appends events to ticket ref, at version 1, up to
// version length: a message in every five, ticket.updated otherwise.
func appendLongHistory(b *testing.B, store *eventstore.Store, ref helpdeskflow.StreamRef, length int) {
	b.Helper()
	ctx := context.Background()
	err := store.Transact(ctx, func(tx *eventstore.Tx) error {
		events := make([]helpdeskflow.NewEvent, 0, length-1)
		priorities := []string{helpdeskflow.PriorityLow, helpdeskflow.PriorityHigh}
		for i := range length - 1 {
			var e helpdeskflow.NewEvent
			var err error
			if i%5 == 0 {
				body := fmt.Sprintf("message %d: %s", i, strings.Repeat("words of a reply ", 20))
				e, err = helpdeskflow.NewEventOf(helpdeskflow.EventTicketMessageAdded, helpdeskflow.MessageAdded{ID: uuid.New(),
					AuthorType: helpdeskflow.AuthorAgent, Body: "<p>" + body + "</p>", BodyText: body})
			} else {
				e, err = helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
					Priority: &helpdeskflow.Change[string]{Old: priorities[i%2], New: priorities[(i+1)%2]},
					Tags:     &helpdeskflow.Change[[]string]{Old: []string{}, New: []string{fmt.Sprintf("t%d", i%40)}}})
			}
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		_, err := tx.Append(ctx, ref, 1, md, events)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
