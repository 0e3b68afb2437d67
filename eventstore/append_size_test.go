package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

func eventOfBytes(n int) helpdeskflow.NewEvent {
	return helpdeskflow.NewEvent{ID: uuid.New(), Type: helpdeskflow.EventTicketMessageAdded, SchemaVersion: 1,
		Data: []byte(`{"body":"` + strings.Repeat("x", n) + `"}`)}
}

// TestAppend_SizeCaps: the store refuses, for any writer, an event over
// MaxEventBytes and appends over MaxAppendBytes in one transaction, before
// anything is sent, so the relay can publish every stored event.
func TestAppend_SizeCaps(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()

	t.Run("one event", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			_, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, []helpdeskflow.NewEvent{eventOfBytes(helpdeskflow.MaxEventBytes)})
			return err
		})
		if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EPayloadTooLarge {
			t.Fatalf("err = %v, want %s", err, helpdeskflow.EPayloadTooLarge)
		}
		if _, err := s.Load(ctx, ref.WorkspaceID, ref.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
			t.Errorf("the refused event was stored (Load: %v)", err)
		}
	})

	t.Run("one transaction", func(t *testing.T) {
		var refs []helpdeskflow.StreamRef
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			for range helpdeskflow.MaxAppendBytes/(helpdeskflow.MaxEventBytes/2) + 1 {
				ref := testenv.NewTicketRef()
				refs = append(refs, ref)
				if _, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, []helpdeskflow.NewEvent{eventOfBytes(helpdeskflow.MaxEventBytes / 2)}); err != nil {
					return err
				}
			}
			return nil
		})
		if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EPayloadTooLarge {
			t.Fatalf("err = %v, want %s", err, helpdeskflow.EPayloadTooLarge)
		}
		if _, err := s.Load(ctx, refs[0].WorkspaceID, refs[0].ID); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
			t.Errorf("an event of the refused transaction was stored (Load: %v)", err)
		}
	})

	t.Run("at the limit", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		if err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			_, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, []helpdeskflow.NewEvent{eventOfBytes(helpdeskflow.MaxEventBytes - 1000)})
			return err
		}); err != nil {
			t.Fatalf("an event just under the limit: %v", err)
		}
	})
}
