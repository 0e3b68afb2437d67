package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// lastPosition is the stored position of stream ref's last event.
func lastPosition(t *testing.T, s *eventstore.Store, ref helpdeskflow.StreamRef) helpdeskflow.Position {
	t.Helper()
	events, err := s.Load(context.Background(), ref.WorkspaceID, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	return events[len(events)-1].Position
}

// TestStore_NotesWritePositions: after the commit, the context's
// WriteRecorder holds the position of the last event the transaction
// appended: alone, in a group commit (each member its own), and without
// the appends of a part rolled back to its savepoint.
func TestStore_NotesWritePositions(t *testing.T) {
	s := testenv.Store(t)

	t.Run("alone", func(t *testing.T) {
		ctx, rec := helpdeskflow.RecordWrites(context.Background())
		first, second := testenv.NewTicketRef(), testenv.NewTicketRef()
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			if _, err := tx.Append(ctx, first, 0, testenv.SystemMetadata, testenv.NewEvents(t, 2)); err != nil {
				return err
			}
			_, err := tx.Append(ctx, second, 0, testenv.SystemMetadata, testenv.NewEvents(t, 3))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := rec.Last()
		if want := lastPosition(t, s, second); !ok || got != want {
			t.Errorf("noted %v (%t), want the last event's position %v", got, ok, want)
		}
	})

	t.Run("grouped", func(t *testing.T) {
		refs := make([]helpdeskflow.StreamRef, 8)
		got := make([]helpdeskflow.Position, len(refs))
		var wg sync.WaitGroup
		errs := make(chan error, len(refs))
		for i := range refs {
			refs[i] = testenv.NewTicketRef()
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, rec := helpdeskflow.RecordWrites(context.Background())
				err := s.DB().TransactGrouped(ctx, refs[i].ID.String(), func(tx *pg.Tx) error {
					_, err := s.In(tx).Append(ctx, refs[i], 0, testenv.SystemMetadata, testenv.NewEvents(t, i+1))
					return err
				})
				if p, ok := rec.Last(); err == nil && !ok {
					err = fmt.Errorf("member %d noted no position", i)
				} else {
					got[i] = p
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, ref := range refs {
			if want := lastPosition(t, s, ref); got[i] != want {
				t.Errorf("member %d noted %v, want its own last event's %v", i, got[i], want)
			}
		}
	})

	t.Run("savepoint rolled back", func(t *testing.T) {
		ctx, rec := helpdeskflow.RecordWrites(context.Background())
		kept, undone := testenv.NewTicketRef(), testenv.NewTicketRef()
		err := s.DB().Transact(ctx, func(tx *pg.Tx) error {
			events := s.In(tx)
			if _, err := events.Append(ctx, kept, 0, testenv.SystemMetadata, testenv.NewEvents(t, 1)); err != nil {
				return err
			}
			if _, err := events.Load(ctx, kept.ID); err != nil { // sends the append
				return err
			}
			tx.Savepoint()
			if _, err := events.Append(ctx, undone, 0, testenv.SystemMetadata, testenv.NewEvents(t, 2)); err != nil {
				return err
			}
			if _, err := events.Load(ctx, undone.ID); err != nil { // sends it too
				return err
			}
			return tx.RollbackToSavepoint(ctx)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := rec.Last()
		if want := lastPosition(t, s, kept); !ok || got != want {
			t.Errorf("noted %v (%t), want the kept event's position %v", got, ok, want)
		}
	})

	t.Run("no recorder", func(t *testing.T) {
		if _, err := testenv.AppendEvents(t, s, testenv.NewTicketRef(), 0, 1); err != nil {
			t.Fatal(err)
		}
	})
}
