package pg

import "context"

// Savepoints let one transaction hold several independent parts (the
// items of a batch request), each of which can be undone alone: a part
// begins with Savepoint and ends with ReleaseSavepoint (kept) or
// RollbackToSavepoint (undone, with the rooms' notes of it). The
// statements are deferred (see Defer), so a part costs no round trip of its
// own. Savepoints do not nest: one part is open at a time.
//
// Error attribution: a part's own deferred statements (an append, a link
// row) travel with the next part's first statement, so their errors
// surface there; those errors are only ever EVersionConflict or EInternal
// (see Defer), which a caller should take as the whole transaction's, not
// a part's. Errors a part decides itself (validation, a conflict that a
// statement's result shows) leave the transaction usable, and
// RollbackToSavepoint undoes what that part wrote.

const (
	savepointSQL = "SAVEPOINT hdf_part"
	releaseSQL   = "RELEASE SAVEPOINT hdf_part"
	rollbackSQL  = "ROLLBACK TO SAVEPOINT hdf_part"
)

// savepointState is what a transaction notes about its open part.
type savepointState struct {
	open bool
	// at is the index in Tx.deferred where the part's SAVEPOINT was queued;
	// while it is still there, nothing of the part has been sent.
	at int
	// undo are the rooms' functions that restore their per-transaction
	// notes to what they were when the part began, newest last.
	undo []func()
}

type savepointKey struct{}

func (t *Tx) savepoints() *savepointState {
	return t.Local(savepointKey{}, func() any { return &savepointState{} }).(*savepointState)
}

// Savepoint begins a part of the transaction that RollbackToSavepoint can
// undo alone (SAVEPOINT, sent with the next statement). It panics when a
// part is already open: parts do not nest.
func (t *Tx) Savepoint() {
	sp := t.savepoints()
	if sp.open {
		panic("pg: Savepoint while a part is open; savepoints do not nest")
	}
	*sp = savepointState{open: true, at: len(t.deferred)}
	t.Defer(savepointSQL)
}

// ReleaseSavepoint keeps what the open part did (RELEASE SAVEPOINT, sent
// with the next statement) and closes it. A part that sent and queued
// nothing leaves no statement behind.
func (t *Tx) ReleaseSavepoint() {
	sp := t.savepoints()
	if !sp.open {
		return
	}
	if t.pendingSavepoint(sp) && len(t.deferred) == sp.at+1 {
		t.deferred = t.deferred[:sp.at]
	} else {
		t.Defer(releaseSQL)
	}
	*sp = savepointState{}
}

// RollbackToSavepoint undoes what the open part did and closes it: its
// statements not sent yet are dropped, the ones sent are rolled back
// (ROLLBACK TO and RELEASE SAVEPOINT, sent with the next statement), and
// the rooms' notes registered with OnRollbackToSavepoint are restored.
// When a failed statement of the part aborted the transaction, the
// rollback runs at once (one round trip, in the simple protocol: an
// aborted transaction prepares no statement) and brings the transaction
// back; if that fails it returns EInternal and the transaction stays
// aborted.
func (t *Tx) RollbackToSavepoint(ctx context.Context) error {
	sp := t.savepoints()
	if !sp.open {
		return nil
	}
	for i := len(sp.undo) - 1; i >= 0; i-- {
		sp.undo[i]()
	}
	pending, at := t.pendingSavepoint(sp), sp.at
	*sp = savepointState{}
	switch {
	case pending:
		t.deferred = t.deferred[:at]
	case t.conn.Conn().PgConn().TxStatus() == 'E':
		// Everything queued since the last round trip is the part's.
		t.deferred = nil
		if _, err := t.conn.Exec(ctx, rollbackSQL+"; "+releaseSQL); err != nil {
			return Internal("roll back to savepoint", err)
		}
	default:
		t.deferred = nil
		t.Defer(rollbackSQL)
		t.Defer(releaseSQL)
	}
	return nil
}

// OnRollbackToSavepoint registers undo to run when the open part is
// rolled back (before the undo functions registered earlier in the part);
// without an open part it does nothing. Rooms use it to restore what they
// note per transaction, such as the event store's byte budget of appends.
func (t *Tx) OnRollbackToSavepoint(undo func()) {
	if sp := t.savepoints(); sp.open {
		sp.undo = append(sp.undo, undo)
	}
}

// pendingSavepoint reports whether the open part's SAVEPOINT is still
// queued, so nothing of the part has been sent. After a round trip the
// queue starts empty, and since parts do not nest the part queues no
// SAVEPOINT of its own: one found at its index is the part's.
func (t *Tx) pendingSavepoint(sp *savepointState) bool {
	return len(t.deferred) > sp.at && t.deferred[sp.at].sql == savepointSQL
}
