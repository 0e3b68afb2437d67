package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
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

// TestAppend_SavepointGivesBytesBack: appends undone with their part of
// the transaction (a batch item rolled back to its savepoint) no longer
// count against MaxAppendBytes, and leave nothing stored; the parts kept
// commit.
func TestAppend_SavepointGivesBytesBack(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	half := helpdeskflow.MaxAppendBytes/(helpdeskflow.MaxEventBytes/2)/2 + 1 // events of a part: over half the budget
	appendPart := func(tx *eventstore.Tx) (helpdeskflow.StreamRef, error) {
		ref := testenv.NewTicketRef()
		events := make([]helpdeskflow.NewEvent, half)
		for i := range events {
			events[i] = eventOfBytes(helpdeskflow.MaxEventBytes / 2)
		}
		_, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, events)
		return ref, err
	}
	var undone, kept helpdeskflow.StreamRef
	err := s.DB().Transact(ctx, func(ptx *pg.Tx) error {
		tx := s.In(ptx)
		ptx.Savepoint()
		var err error
		if undone, err = appendPart(tx); err != nil {
			return err
		}
		if err := ptx.RollbackToSavepoint(ctx); err != nil {
			return err
		}
		ptx.Savepoint()
		if kept, err = appendPart(tx); err != nil {
			return err // the undone part's bytes still counted
		}
		ptx.ReleaseSavepoint()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, undone.WorkspaceID, undone.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("the undone part was stored (Load: %v)", err)
	}
	if events, err := s.Load(ctx, kept.WorkspaceID, kept.ID); err != nil || len(events) != half {
		t.Errorf("the kept part: %d events, %v; want %d", len(events), err, half)
	}
}
