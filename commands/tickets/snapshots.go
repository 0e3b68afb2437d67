package tickets

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// SnapshotEvery is the most events a command folds on top of a stream's
// snapshot before it writes a new one, in the transaction of its append
// and without a round trip of its own. So a command loads a ticket or a
// customer from one snapshot and fewer than SnapshotEvery events after it
// (plus what writers that do not fold the stream, such as a merge moving a
// customer's tickets, appended since), however long the stream is.
const SnapshotEvery = 100

// MaxSnapshotBytes bounds a snapshot's encoded state. A larger state (a
// ticket whose messages alone take more) is not snapshotted: its loads
// fold from its last snapshot that fitted, or from its first event.
const MaxSnapshotBytes = 64 << 20

// streamSource is where a stream is loaded from: a command's transaction
// or, for reads, the store. Each is a fresh, consistent read (a cache in
// front of it must check the stream's version).
type streamSource interface {
	// loadTail returns the stream's snapshot and the events after it.
	loadTail(ctx context.Context, id uuid.UUID) (helpdeskflow.StreamTail, error)
	// loadAll returns every event of the stream.
	loadAll(ctx context.Context, id uuid.UUID) ([]helpdeskflow.Event, error)
}

// txSource loads streams as a transaction sees them.
type txSource struct{ tx Tx }

func (s txSource) loadTail(ctx context.Context, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	return s.tx.Events.LoadTail(ctx, id)
}

func (s txSource) loadAll(ctx context.Context, id uuid.UUID) ([]helpdeskflow.Event, error) {
	return s.tx.Events.Load(ctx, id)
}

// storeSource loads streams of one workspace from the store.
type storeSource struct {
	store       Store
	workspaceID uuid.UUID
}

func (s storeSource) loadTail(ctx context.Context, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	return s.store.LoadTail(ctx, s.workspaceID, id)
}

func (s storeSource) loadAll(ctx context.Context, id uuid.UUID) ([]helpdeskflow.Event, error) {
	return s.store.Load(ctx, s.workspaceID, id)
}

// loadTicket folds ticket id from src (see foldStream): the ticket and how
// many events were folded on its snapshot. ENotFound when it is not a
// ticket.
func loadTicket(ctx context.Context, src streamSource, id uuid.UUID) (helpdeskflow.Ticket, int, error) {
	return foldStream(ctx, src, id, helpdeskflow.StreamTicket, helpdeskflow.ApplyTicket)
}

// loadCustomer folds customer id from src like loadTicket. A merged
// customer is returned as it is (MergedInto set).
func loadCustomer(ctx context.Context, src streamSource, id uuid.UUID) (helpdeskflow.Customer, int, error) {
	return foldStream(ctx, src, id, helpdeskflow.StreamCustomer, helpdeskflow.ApplyCustomer)
}

// foldStream loads stream id from src, from its snapshot, and folds it with
// apply. It returns the state and how many events it folded on top of the
// snapshot (every event when there is none); ENotFound when the stream is
// empty or not of streamType.
func foldStream[S any](ctx context.Context, src streamSource, id uuid.UUID, streamType string, apply func(*S, helpdeskflow.Event) error) (S, int, error) {
	var zero S
	tail, err := src.loadTail(ctx, id)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound || (err == nil && tail.StreamType() != streamType) {
		return zero, 0, helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %s not found", streamType, id)
	}
	if err != nil {
		return zero, 0, err
	}
	return foldTail(ctx, src, id, tail, apply)
}

// foldTail folds a loaded tail of stream id: the snapshot's state, then
// the events after it. It returns the state and how many events it folded.
// A snapshot that does not decode (it should not happen: its format is
// checked) is ignored: the whole stream is loaded again from src and
// folded.
func foldTail[S any](ctx context.Context, src streamSource, id uuid.UUID, tail helpdeskflow.StreamTail, apply func(*S, helpdeskflow.Event) error) (S, int, error) {
	var state S
	if tail.Snapshot != nil && helpdeskflow.DecodeSnapshot(tail.Snapshot.State, &state) != nil {
		events, err := src.loadAll(ctx, id)
		if err != nil {
			var zero S
			return zero, 0, err
		}
		all, err := fold(events, apply)
		return all, len(events), err
	}
	for _, e := range tail.Events {
		if err := apply(&state, e); err != nil {
			var zero S
			return zero, 0, err
		}
	}
	return state, len(tail.Events), nil
}

// fold folds events from the zero state.
func fold[S any](events []helpdeskflow.Event, apply func(*S, helpdeskflow.Event) error) (S, error) {
	var state S
	for _, e := range events {
		if err := apply(&state, e); err != nil {
			var zero S
			return zero, err
		}
	}
	return state, nil
}

// keepSnapshot queues a snapshot of state, stream ref's state at version
// after this command appended appended events, with the transaction when
// tail (the events folded on the stream's last snapshot, counting the
// appended ones) has reached SnapshotEvery. It is written with the commit,
// so only if the append is; a command that appends nothing writes none. A
// state over MaxSnapshotBytes is not kept.
func keepSnapshot(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef, version int64, appended, tail int, state any) error {
	if appended == 0 || tail < SnapshotEvery {
		return nil
	}
	if t, ok := state.(helpdeskflow.Ticket); ok && messageBytes(t) > MaxSnapshotBytes {
		// Known to be too large without encoding it.
		return nil
	}
	b, err := helpdeskflow.EncodeSnapshot(state)
	if err != nil || len(b) > MaxSnapshotBytes {
		return err
	}
	tx.Events.PutSnapshot(ctx, helpdeskflow.Snapshot{StreamID: ref.ID, WorkspaceID: ref.WorkspaceID, StreamType: ref.Type,
		Version: version, Format: helpdeskflow.SnapshotFormat, State: b})
	return nil
}

// messageBytes is the length of t's message bodies, a lower bound of its
// encoding's.
func messageBytes(t helpdeskflow.Ticket) int {
	n := 0
	for _, m := range t.Messages {
		n += len(m.Body) + len(m.BodyText)
	}
	return n
}
