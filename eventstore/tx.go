package eventstore

import (
	"context"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Tx is the event store's view of one transaction (a *pg.Tx): LockStream,
// Load, LoadTail, Append and PutSnapshot write and read through it, so
// they commit together with whatever the rooms under store/ write in the
// same transaction. A Tx is used by one goroutine only and is valid only
// inside the transaction's function.
type Tx struct {
	tx *pg.Tx
	st *txState
}

// txState is what the event store notes about one transaction, shared by
// every view of it.
type txState struct {
	lockedAt time.Time
	appended []helpdeskflow.NewEvent
	// appendedBytes sums EventSize over appended, against MaxAppendBytes.
	appendedBytes int
	// last is the position of the last event appended and sent (zero
	// before the first): noted after the commit (helpdeskflow.NoteWrite).
	last helpdeskflow.Position
}

// stateKey keys a store's txState in a transaction.
type stateKey struct{ s *Store }

// In returns the event store's view of tx. Every view of one transaction
// shares its state (the appends' byte budget, the lock time); after the
// commit the store counts the transaction's events and its duration in its
// metrics and wakes the relay when events were appended; the position of
// the last event appended is noted in the WriteRecorder of the context the
// transaction ran under (helpdeskflow.RecordWrites), if any.
func (s *Store) In(tx *pg.Tx) *Tx {
	st := tx.Local(stateKey{s}, func() any {
		st := &txState{}
		tx.AfterCommit(func(ctx context.Context, _ *pg.DB) error {
			s.committed(ctx, tx, st)
			return nil
		})
		return st
	}).(*txState)
	return &Tx{tx: tx, st: st}
}

// DB returns the database the store is on: a room whose writes join the
// store's transactions is opened on it and passed the same *pg.Tx (see
// commands/postgres).
func (s *Store) DB() *pg.DB { return s.db }

// Transact runs fn in one short transaction (see pg.DB.Transact) and
// commits if fn returns nil; otherwise it rolls back and returns fn's
// error unchanged. Keep fn free of slow work: the stream locks it takes
// are held until commit. It returns EVersionConflict when the commit hits
// a concurrent writer and EUnavailable when Postgres cannot be reached.
// When fn changed API keys or workspace settings, Transact returns only
// after every API process has dropped its cached access (see
// store/access), so the change holds for the very next request anywhere;
// EUnavailable then means the change is committed but that could not be
// confirmed.
func (s *Store) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	return s.db.Transact(ctx, func(tx *pg.Tx) error { return fn(s.In(tx)) })
}

// committed records a committed transaction in the metrics, notes its
// last event's position in ctx's WriteRecorder and wakes the relay when it
// appended events.
func (s *Store) committed(ctx context.Context, tx *pg.Tx, st *txState) {
	now := time.Now()
	if !st.lockedAt.IsZero() {
		s.lockHold.Observe(now.Sub(st.lockedAt).Seconds())
	}
	s.appendLatency.Observe(now.Sub(tx.Started()).Seconds())
	for _, e := range st.appended {
		s.eventsTotal.WithLabelValues(e.Type).Inc()
	}
	if len(st.appended) > 0 {
		s.notifier.poke()
	}
	if st.last != (helpdeskflow.Position{}) {
		helpdeskflow.NoteWrite(ctx, st.last)
	}
}
