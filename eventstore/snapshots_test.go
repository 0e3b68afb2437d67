package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

func putSnapshot(t *testing.T, s *eventstore.Store, snap helpdeskflow.Snapshot) {
	t.Helper()
	err := s.Transact(context.Background(), func(tx *eventstore.Tx) error {
		tx.PutSnapshot(context.Background(), snap)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tailOf returns the versions of a tail: the snapshot's (0 without one)
// and its events'.
func tailOf(t *testing.T, s *eventstore.Store, ref helpdeskflow.StreamRef) (snapshot int64, state string, events []int64) {
	t.Helper()
	tail, err := s.LoadTail(context.Background(), ref.WorkspaceID, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tail.Snapshot != nil {
		snapshot, state = tail.Snapshot.Version, string(tail.Snapshot.State)
		if tail.Snapshot.StreamID != ref.ID || tail.Snapshot.WorkspaceID != ref.WorkspaceID || tail.Snapshot.StreamType != ref.Type {
			t.Errorf("snapshot of %+v, want %+v", tail.Snapshot, ref)
		}
	}
	for _, e := range tail.Events {
		events = append(events, e.Version)
	}
	return snapshot, state, events
}

func TestStore_LoadTail(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	ref := testenv.NewTicketRef()
	if _, err := testenv.AppendEvents(t, s, ref, 0, 5); err != nil {
		t.Fatal(err)
	}
	snap := func(version int64, format int, state string) helpdeskflow.Snapshot {
		return helpdeskflow.Snapshot{StreamID: ref.ID, WorkspaceID: ref.WorkspaceID, StreamType: ref.Type, Version: version,
			Format: format, State: []byte(state)}
	}
	check := func(wantSnapshot int64, wantState string, wantEvents ...int64) {
		t.Helper()
		got, state, events := tailOf(t, s, ref)
		if got != wantSnapshot || state != wantState || len(events) != len(wantEvents) {
			t.Fatalf("tail = snapshot %d %q + events %v, want snapshot %d %q + events %v", got, state, events, wantSnapshot, wantState, wantEvents)
		}
		for i := range events {
			if events[i] != wantEvents[i] {
				t.Fatalf("tail events %v, want %v", events, wantEvents)
			}
		}
	}

	t.Run("NoSnapshot", func(t *testing.T) { check(0, "", 1, 2, 3, 4, 5) })
	t.Run("FromSnapshot", func(t *testing.T) {
		putSnapshot(t, s, snap(3, helpdeskflow.SnapshotFormat, "at 3"))
		check(3, "at 3", 4, 5)
	})
	t.Run("OlderSnapshotDoesNotReplace", func(t *testing.T) {
		putSnapshot(t, s, snap(2, helpdeskflow.SnapshotFormat, "at 2"))
		check(3, "at 3", 4, 5)
	})
	t.Run("NewerReplaces", func(t *testing.T) {
		putSnapshot(t, s, snap(5, helpdeskflow.SnapshotFormat, "at 5"))
		check(5, "at 5")
	})
	t.Run("OtherFormatIsIgnored", func(t *testing.T) {
		// Written by another version of the code: loads fold everything.
		putSnapshot(t, s, snap(4, helpdeskflow.SnapshotFormat+1, "newer format"))
		check(0, "", 1, 2, 3, 4, 5)
		putSnapshot(t, s, snap(2, helpdeskflow.SnapshotFormat, "current format again"))
		check(2, "current format again", 3, 4, 5)
	})
	t.Run("RolledBack", func(t *testing.T) {
		boom := errors.New("boom")
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			tx.PutSnapshot(ctx, snap(5, helpdeskflow.SnapshotFormat, "rolled back"))
			if _, err := tx.LockStream(ctx, ref); err != nil { // sends the snapshot
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		check(2, "current format again", 3, 4, 5)
	})
	t.Run("InATransaction", func(t *testing.T) {
		err := s.Transact(ctx, func(tx *eventstore.Tx) error {
			if _, err := tx.LockStream(ctx, ref); err != nil {
				return err
			}
			tail, err := tx.LoadTail(ctx, ref.ID)
			if err != nil {
				return err
			}
			if tail.Snapshot == nil || tail.Snapshot.Version != 2 || len(tail.Events) != 3 {
				t.Errorf("in a transaction: tail %+v", tail)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OtherWorkspaceOrUnknownStream", func(t *testing.T) {
		for _, c := range []struct{ workspace, id uuid.UUID }{{uuid.New(), ref.ID}, {ref.WorkspaceID, uuid.New()}} {
			if _, err := s.LoadTail(ctx, c.workspace, c.id); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
				t.Errorf("LoadTail(%v, %v) = %v, want not_found", c.workspace, c.id, err)
			}
		}
		// A snapshot with no events after it still names its workspace.
		putSnapshot(t, s, snap(5, helpdeskflow.SnapshotFormat, "at 5"))
		if _, err := s.LoadTail(ctx, uuid.New(), ref.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
			t.Errorf("LoadTail from another workspace = %v, want not_found", err)
		}
	})
}
