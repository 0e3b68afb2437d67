package eventstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// appendAt appends one event per time to ref (at version expected), each
// occurring at its time.
func appendAt(t *testing.T, s *eventstore.Store, ref helpdeskflow.StreamRef, expected int64, times ...time.Time) {
	t.Helper()
	events := testenv.NewEvents(t, len(times))
	for i := range events {
		events[i].OccurredAt = times[i]
	}
	err := s.Transact(context.Background(), func(tx *eventstore.Tx) error {
		_, err := tx.Append(context.Background(), ref, expected, testenv.SystemMetadata, events)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore_LoadTailAsOf(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	ref := testenv.NewTicketRef()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	// Versions 1..6 at minutes 0, 10, 20, 30, 40, 50.
	appendAt(t, s, ref, 0, at(0), at(10), at(20), at(30), at(40), at(50))

	load := func(t *testing.T, asOf helpdeskflow.AsOf) (snapshot int64, events []int64) {
		t.Helper()
		tail, err := s.LoadTailAsOf(ctx, ref.WorkspaceID, ref.ID, asOf)
		if err != nil {
			t.Fatal(err)
		}
		if tail.Snapshot != nil {
			snapshot = tail.Snapshot.Version
		}
		for _, e := range tail.Events {
			events = append(events, e.Version)
		}
		return snapshot, events
	}
	check := func(t *testing.T, asOf helpdeskflow.AsOf, wantSnapshot int64, wantEvents ...int64) {
		t.Helper()
		snapshot, events := load(t, asOf)
		if snapshot != wantSnapshot || !slices.Equal(events, wantEvents) {
			t.Errorf("as of %+v: snapshot %d + events %v, want snapshot %d + events %v", asOf, snapshot, events, wantSnapshot, wantEvents)
		}
	}
	cases := func(t *testing.T, snap int64) {
		// from returns the events after the snapshot (when it is usable
		// for a bound at version v) up to v.
		from := func(v int64) (int64, []int64) {
			start := int64(1)
			used := int64(0)
			if snap != 0 && snap <= v {
				start, used = snap+1, snap
			}
			var versions []int64
			for n := start; n <= v; n++ {
				versions = append(versions, n)
			}
			return used, versions
		}
		for v := int64(1); v <= 6; v++ {
			used, events := from(v)
			t.Run(fmt.Sprintf("Version%d", v), func(t *testing.T) { check(t, helpdeskflow.AsOf{Version: v}, used, events...) })
			// At the event's time, and just before the next one.
			used, events = from(v)
			t.Run(fmt.Sprintf("TimeOf%d", v), func(t *testing.T) { check(t, helpdeskflow.AsOf{Time: at(int(v-1) * 10)}, used, events...) })
			t.Run(fmt.Sprintf("TimeAfter%d", v), func(t *testing.T) {
				check(t, helpdeskflow.AsOf{Time: at(int(v-1)*10 + 9)}, used, events...)
			})
		}
		t.Run("VersionBeyond", func(t *testing.T) {
			used, events := from(6)
			check(t, helpdeskflow.AsOf{Version: 9}, used, events...)
		})
		t.Run("BeforeTheFirstEvent", func(t *testing.T) {
			_, err := s.LoadTailAsOf(ctx, ref.WorkspaceID, ref.ID, helpdeskflow.AsOf{Time: at(-1)})
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
				t.Fatalf("error %v (code %q), want %q", err, got, want)
			}
		})
	}
	t.Run("NoSnapshot", func(t *testing.T) { cases(t, 0) })
	putSnapshot(t, s, helpdeskflow.Snapshot{StreamID: ref.ID, WorkspaceID: ref.WorkspaceID, StreamType: ref.Type, Version: 4,
		Format: helpdeskflow.SnapshotFormat, State: []byte(`{}`)})
	t.Run("SnapshotAt4", func(t *testing.T) { cases(t, 4) })

	t.Run("OtherWorkspace", func(t *testing.T) {
		_, err := s.LoadTailAsOf(ctx, uuid.New(), ref.ID, helpdeskflow.AsOf{Version: 3})
		if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
			t.Fatalf("error %v (code %q), want %q", err, got, want)
		}
	})
	t.Run("StopsAtTheFirstEventAfter", func(t *testing.T) {
		// A later event stamped earlier (another process's clock) is not
		// reached: the load stops at the first event after the time.
		skewed := testenv.NewTicketRef()
		appendAt(t, s, skewed, 0, at(0), at(20), at(10))
		tail, err := s.LoadTailAsOf(ctx, skewed.WorkspaceID, skewed.ID, helpdeskflow.AsOf{Time: at(15)})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(tail.Events); got != 1 {
			t.Errorf("%d events, want 1", got)
		}
	})
}

func TestStore_LoadRange(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	ref := testenv.NewTicketRef()
	if _, err := testenv.AppendEvents(t, s, ref, 0, 6); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to int64
		want     []int64
	}{
		{1, 0, []int64{1, 2, 3, 4, 5, 6}},
		{3, 5, []int64{3, 4, 5}},
		{4, 4, []int64{4}},
		{5, 9, []int64{5, 6}},
		{7, 9, nil},
	} {
		events, err := s.LoadRange(ctx, ref, c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range events {
			got = append(got, e.Version)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("LoadRange(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	for name, other := range map[string]helpdeskflow.StreamRef{
		"OtherWorkspace": {ID: ref.ID, WorkspaceID: uuid.New(), Type: ref.Type},
		"OtherType":      {ID: ref.ID, WorkspaceID: ref.WorkspaceID, Type: helpdeskflow.StreamCustomer},
		"Unknown":        {ID: uuid.New(), WorkspaceID: ref.WorkspaceID, Type: ref.Type},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.LoadRange(ctx, other, 1, 0)
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.ENotFound; got != want {
				t.Fatalf("error %v (code %q), want %q", err, got, want)
			}
		})
	}
}

func TestStore_LatestEventsOfTypes(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b := testenv.NewTicketRef(), testenv.NewTicketRef()
	b.WorkspaceID = a.WorkspaceID
	other := testenv.NewTicketRef()
	appendAt(t, s, a, 0, base, base.Add(time.Minute), base.Add(2*time.Minute))
	appendAt(t, s, b, 0, base.Add(3*time.Minute))
	appendAt(t, s, other, 0, base)
	latest := func(until time.Time, types ...string) map[uuid.UUID]int64 {
		t.Helper()
		events, err := s.LatestEventsOfTypes(ctx, a.WorkspaceID, []uuid.UUID{a.ID, b.ID, other.ID}, types, until)
		if err != nil {
			t.Fatal(err)
		}
		got := map[uuid.UUID]int64{}
		for _, e := range events {
			got[e.StreamID] = e.Version
		}
		return got
	}
	got := latest(base.Add(90*time.Second), helpdeskflow.EventTicketMessageAdded)
	if want := map[uuid.UUID]int64{a.ID: 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("latest = %v, want %v", got, want)
	}
	got = latest(base.Add(time.Hour), helpdeskflow.EventTicketMessageAdded)
	if want := map[uuid.UUID]int64{a.ID: 3, b.ID: 1}; len(got) != 2 || got[a.ID] != 3 || got[b.ID] != 1 {
		t.Errorf("latest = %v, want %v", got, want)
	}
	if got := latest(base.Add(time.Hour), helpdeskflow.EventTicketCreated); len(got) != 0 {
		t.Errorf("latest of another type = %v, want none", got)
	}
}
