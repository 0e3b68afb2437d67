package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
)

// SystemMetadata is the metadata of events a test appends straight to the
// store: the system acting over the system channel.
var SystemMetadata = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}

// NewEvents returns n ticket.message_added events whose data is {"n": i}.
func NewEvents(t testing.TB, n int) []helpdeskflow.NewEvent {
	t.Helper()
	events := make([]helpdeskflow.NewEvent, n)
	for i := range events {
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketMessageAdded, map[string]any{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		events[i] = e
	}
	return events
}

// AppendEvents appends n NewEvents to ref at expected in one transaction
// and returns the new version.
func AppendEvents(t testing.TB, s *eventstore.Store, ref helpdeskflow.StreamRef, expected int64, n int) (int64, error) {
	t.Helper()
	var version int64
	err := s.Transact(context.Background(), func(tx *eventstore.Tx) error {
		v, err := tx.Append(context.Background(), ref, expected, SystemMetadata, NewEvents(t, n))
		version = v
		return err
	})
	return version, err
}

// NewTicketRef is a new ticket stream in a new workspace.
func NewTicketRef() helpdeskflow.StreamRef {
	return helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: uuid.New(), Type: helpdeskflow.StreamTicket}
}

// ReadAtLeast reads after cursor until at least n events are readable. The
// commit horizon is cluster-wide, so another test's open transaction (in
// another database) can hold back events that have committed.
func ReadAtLeast(t *testing.T, s *eventstore.Store, cursor helpdeskflow.Position, workspaceID uuid.UUID, n int) []helpdeskflow.Event {
	t.Helper()
	var events []helpdeskflow.Event
	Eventually(t, 15*time.Second, func() error {
		var err error
		events, err = s.ReadAfter(context.Background(), cursor, 100, workspaceID)
		if err == nil && len(events) < n {
			err = fmt.Errorf("%d events readable, want %d", len(events), n)
		}
		return err
	})
	return events
}
