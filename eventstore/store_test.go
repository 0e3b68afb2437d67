package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

func TestStore_Append(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()

	t.Run("CreatesAndLoads", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		v, err := testenv.AppendEvents(t, s, ref, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := v, int64(3); got != want {
			t.Fatalf("version = %d, want %d", got, want)
		}
		events, err := s.Load(ctx, ref.WorkspaceID, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(events), 3; got != want {
			t.Fatalf("loaded %d events, want %d", got, want)
		}
		for i, e := range events {
			if got, want := e.Version, int64(i+1); got != want {
				t.Errorf("event %d version = %d, want %d", i, got, want)
			}
			if e.StreamID != ref.ID || e.WorkspaceID != ref.WorkspaceID || e.StreamType != ref.Type {
				t.Errorf("event %d stream = %v/%v/%s, want %v", i, e.StreamID, e.WorkspaceID, e.StreamType, ref)
			}
			var data map[string]int
			if err := json.Unmarshal(e.Data, &data); err != nil || data["n"] != i {
				t.Errorf("event %d data = %s (%v)", i, e.Data, err)
			}
			if e.Metadata != testenv.SystemMetadata {
				t.Errorf("event %d metadata = %+v, want %+v", i, e.Metadata, testenv.SystemMetadata)
			}
		}
	})

	t.Run("ErrVersionConflict/StreamExists", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		if _, err := testenv.AppendEvents(t, s, ref, 0, 1); err != nil {
			t.Fatal(err)
		}
		_, err := testenv.AppendEvents(t, s, ref, 0, 1)
		if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EVersionConflict; got != want {
			t.Fatalf("error code = %q (%v), want %q", got, err, want)
		}
	})

	t.Run("ErrVersionConflict/Concurrent", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		if _, err := testenv.AppendEvents(t, s, ref, 0, 1); err != nil {
			t.Fatal(err)
		}
		const writers = 100
		var wg sync.WaitGroup
		errs := make([]error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = testenv.AppendEvents(t, s, ref, 1, 2)
			}()
		}
		close(start)
		wg.Wait()
		var ok, conflicts int
		for _, err := range errs {
			switch helpdeskflow.ErrorCode(err) {
			case "":
				ok++
			case helpdeskflow.EVersionConflict:
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 || conflicts != writers-1 {
			t.Fatalf("%d succeeded and %d conflicted, want 1 and %d", ok, conflicts, writers-1)
		}
		events, err := s.Load(ctx, ref.WorkspaceID, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(events), 3; got != want {
			t.Fatalf("stream has %d events, want %d", got, want)
		}
		for i, e := range events {
			if got, want := e.Version, int64(i+1); got != want {
				t.Errorf("event %d has version %d, want %d (versions must stay contiguous)", i, got, want)
			}
		}
	})

	t.Run("ErrNotFound/OtherWorkspace", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		if _, err := testenv.AppendEvents(t, s, ref, 0, 1); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load(ctx, uuid.New(), ref.ID)
		if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
			t.Fatalf("error code = %q, want %q", got, want)
		}
		err = s.Transact(ctx, func(tx *eventstore.Tx) error {
			_, err := tx.LockStream(ctx, helpdeskflow.StreamRef{ID: ref.ID, WorkspaceID: uuid.New(), Type: ref.Type})
			return err
		})
		if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
			t.Fatalf("lock error code = %q, want %q", got, want)
		}
	})

	t.Run("LockLoadAppend", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		if _, err := testenv.AppendEvents(t, s, ref, 0, 2); err != nil {
			t.Fatal(err)
		}
		var version int64
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			v, err := tx.LockStream(ctx, ref)
			if err != nil {
				return err
			}
			history, err := tx.Load(ctx, ref.ID)
			if err != nil {
				return err
			}
			if int64(len(history)) != v {
				t.Errorf("locked at version %d with %d events", v, len(history))
			}
			version, err = tx.Append(ctx, ref, v, testenv.SystemMetadata, testenv.NewEvents(t, 1))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if version != 3 {
			t.Fatalf("version after lock, load and append = %d, want 3", version)
		}
	})

	t.Run("ErrVersionConflict/AtCommitUndoesTheRest", func(t *testing.T) {
		existing, fresh := testenv.NewTicketRef(), testenv.NewTicketRef()
		if _, err := testenv.AppendEvents(t, s, existing, 0, 1); err != nil {
			t.Fatal(err)
		}
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			if _, err := tx.Append(ctx, fresh, 0, testenv.SystemMetadata, testenv.NewEvents(t, 1)); err != nil {
				return err
			}
			// Stale: the stream is at version 1. The conflict surfaces when
			// the deferred append is sent, with the commit.
			_, err := tx.Append(ctx, existing, 5, testenv.SystemMetadata, testenv.NewEvents(t, 1))
			return err
		})
		if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EVersionConflict; got != want {
			t.Fatalf("error code = %q (%v), want %q", got, err, want)
		}
		if _, err := s.Load(ctx, fresh.WorkspaceID, fresh.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
			t.Fatalf("the other stream of the conflicting transaction was stored: %v", err)
		}
	})

	t.Run("EmptyTransaction", func(t *testing.T) {
		if err := s.Transact(ctx, func(*eventstore.Tx) error { return nil }); err != nil {
			t.Fatalf("a transaction that did nothing: %v", err)
		}
	})

	t.Run("RollbackStoresNothing", func(t *testing.T) {
		ref := testenv.NewTicketRef()
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			if _, err := tx.Append(ctx, ref, 0, testenv.SystemMetadata, testenv.NewEvents(t, 1)); err != nil {
				return err
			}
			return helpdeskflow.Errorf(helpdeskflow.EValidation, "decided against it")
		})
		if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
			t.Fatalf("error code = %q, want %q", got, want)
		}
		if _, err := s.Load(ctx, ref.WorkspaceID, ref.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
			t.Fatalf("stream exists after rollback: %v", err)
		}
	})
}

func TestReadAfter_OneWorkspace(t *testing.T) {
	s := testenv.Store(t)
	mine, theirs := testenv.NewTicketRef(), testenv.NewTicketRef()
	for _, ref := range []helpdeskflow.StreamRef{mine, theirs, mine} {
		if _, err := testenv.AppendEvents(t, s, helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: ref.WorkspaceID, Type: ref.Type}, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	events := testenv.ReadAtLeast(t, s, helpdeskflow.Position{}, mine.WorkspaceID, 2)
	if len(events) != 2 {
		t.Fatalf("read %d events of the workspace, want 2", len(events))
	}
	for _, e := range events {
		if e.WorkspaceID != mine.WorkspaceID {
			t.Errorf("event of workspace %s in another workspace's read", e.WorkspaceID)
		}
	}
	if !events[0].Position.Less(events[1].Position) {
		t.Errorf("events out of commit order: %v then %v", events[0].Position, events[1].Position)
	}
}

// TestHeldBack: an event committed after a reader's position is reported
// whether it is still held back by an open transaction or readable already
// (the transaction that held it back ended after the read came back
// empty), so the reader reads again instead of waiting for a notification
// that has come and gone; nothing after the last event is reported.
func TestHeldBack(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	if _, err := testenv.AppendEvents(t, s, testenv.NewTicketRef(), 0, 2); err != nil {
		t.Fatal(err)
	}
	var events []helpdeskflow.Event
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		if events, _, err = s.ReadBatch(ctx, helpdeskflow.Position{}, 10, 1<<20); err != nil || len(events) != 2 {
			return fmt.Errorf("read %d events (%v), want 2", len(events), err)
		}
		return nil
	})
	for _, c := range []struct {
		after helpdeskflow.Position
		want  bool
	}{
		{helpdeskflow.Position{}, true},
		{events[0].Position, true},
		{events[1].Position, false},
	} {
		if got, err := s.HeldBack(ctx, c.after); err != nil || got != c.want {
			t.Errorf("HeldBack after %+v = %v (%v), want %v", c.after, got, err, c.want)
		}
	}
}
