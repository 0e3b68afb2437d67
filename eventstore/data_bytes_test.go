package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestAppend_DataComesBackAsAppended: an event's data is stored as the
// command encoded it (events.data is json) and every read path returns
// those bytes, key order and all, so the relay publishes them unchanged.
func TestAppend_DataComesBackAsAppended(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	data := `{"subject":"<b>Hi</b>","tags":["b","a"],"a":{"z":1,"y":[1.50,2]}}`
	ref := testenv.NewTicketRef()
	id := uuid.New()
	if err := s.Transact(ctx, func(tx *eventstore.Tx) error {
		_, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, []helpdeskflow.NewEvent{{ID: id, Type: helpdeskflow.EventTicketUpdated, SchemaVersion: 1, Data: []byte(data)}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load(ctx, ref.WorkspaceID, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The commit horizon may wait for other databases' transactions.
	var batch []helpdeskflow.Event
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		if batch, _, err = s.ReadBatch(ctx, helpdeskflow.Position{}, 10, 1<<20); err == nil && len(batch) == 0 {
			err = errors.New("below the commit horizon: no event yet")
		}
		return err
	})
	byID, err := s.EventsByID(ctx, []uuid.UUID{id})
	if err != nil {
		t.Fatal(err)
	}
	tail, err := s.LoadTail(ctx, ref.WorkspaceID, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, events := range map[string][]helpdeskflow.Event{"Load": loaded, "ReadBatch": batch, "EventsByID": byID, "LoadTail": tail.Events} {
		if len(events) != 1 || string(events[0].Data) != data {
			t.Errorf("%s: %d events, data %s; want %s", name, len(events), firstData(events), data)
		}
	}
}

func firstData(events []helpdeskflow.Event) string {
	if len(events) == 0 {
		return ""
	}
	return string(events[0].Data)
}
