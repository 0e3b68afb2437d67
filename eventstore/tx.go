package eventstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Tx is one command transaction. A Tx is used by one goroutine only and is
// valid only inside the function given to Store.Transact.
//
// The transaction opens lazily: BEGIN travels in the same round trip as the
// first statement, which saves a round trip on every command (on this
// kind of machine round trips, not SQL, dominate a command's cost).
type Tx struct {
	conn     *pgxpool.Conn
	begun    bool
	deferred []deferredExec
	lockedAt time.Time
	appended []helpdeskflow.NewEvent
	// appendedBytes sums EventSize over appended, against MaxAppendBytes.
	appendedBytes int
	// accessChanged is set by changes to API keys or workspace settings:
	// after the commit, Transact waits for every API process to drop its
	// cached access.
	accessChanged bool
}

// Transact runs fn in one short transaction and commits if fn returns nil;
// otherwise it rolls back and returns fn's error unchanged. Keep fn free of
// slow work: the stream locks it takes are held until commit. It returns
// EVersionConflict when the commit hits a concurrent writer and
// EUnavailable when Postgres cannot be reached. When fn changed API keys or
// workspace settings, Transact returns only after every API process has
// dropped its cached access (AccessCache), so the change holds for the very
// next request anywhere; EUnavailable then means the change is committed
// but that could not be confirmed.
func (s *Store) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	start := time.Now()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return pg.Unavailable("acquire connection", err)
	}
	// A connection released inside a transaction (a failed rollback) is
	// closed by the pool rather than reused.
	defer conn.Release()
	tx := &Tx{conn: conn}
	if err := fn(tx); err != nil {
		if tx.begun {
			conn.Exec(context.WithoutCancel(ctx), "rollback") //nolint:errcheck // fn's error is the one to report
		}
		return err
	}
	if !tx.begun && len(tx.deferred) == 0 {
		return nil
	}
	if _, err := tx.exec(ctx, "commit"); err != nil {
		conn.Exec(context.WithoutCancel(ctx), "rollback") //nolint:errcheck // the commit's error is the one to report
		if pg.IsUniqueViolation(err) {
			return helpdeskflow.Errorf(helpdeskflow.EVersionConflict, "the stream was changed concurrently")
		}
		return pg.Internal("commit", err)
	}
	now := time.Now()
	if !tx.lockedAt.IsZero() {
		s.lockHold.Observe(now.Sub(tx.lockedAt).Seconds())
	}
	s.appendLatency.Observe(now.Sub(start).Seconds())
	for _, e := range tx.appended {
		s.eventsTotal.WithLabelValues(e.Type).Inc()
	}
	if len(tx.appended) > 0 {
		s.notifier.poke()
	}
	if tx.accessChanged {
		return s.invalidateAccess(ctx)
	}
	return nil
}

// deferredExec is a statement whose result nobody waits for; it is sent
// with the transaction's next statement.
type deferredExec struct {
	sql  string
	args []any
}

// defer_ queues a statement to go out with the next one.
func (t *Tx) defer_(sql string, args ...any) {
	t.deferred = append(t.deferred, deferredExec{sql, args})
}

// batch starts a pipeline of statements: BEGIN when the transaction has not
// begun, then the deferred statements.
func (t *Tx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue("begin")
	}
	for _, d := range t.deferred {
		b.Queue(d.sql, d.args...)
	}
	return b
}

// sendBatch sends a pipeline started by batch and consumes the results of
// BEGIN and the deferred statements, so the caller reads only its own
// statements' results. An error of those ends the batch: every later
// result reports it.
func (t *Tx) sendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	br := t.conn.SendBatch(ctx, b)
	if !t.begun {
		t.begun = true
		if _, err := br.Exec(); err != nil {
			return failedBatch{br, pg.Internal("begin", err)}
		}
	}
	deferred := t.deferred
	t.deferred = nil
	for range deferred {
		if _, err := br.Exec(); err != nil {
			return failedBatch{br, appendError(err)}
		}
	}
	return br
}

// appendError translates the error of a deferred append.
func appendError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "HDF01" || pgErr.Code == "23505") {
		return &helpdeskflow.Error{Code: helpdeskflow.EVersionConflict, Message: "the stream was changed concurrently; reload and retry", Err: err}
	}
	return pg.Internal("append events", err)
}

// send runs one statement, prefixed by BEGIN when it is the first.
func (t *Tx) send(ctx context.Context, sql string, args ...any) pgx.BatchResults {
	b := t.batch()
	b.Queue(sql, args...)
	return t.sendBatch(ctx, b)
}

func (t *Tx) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br := t.send(ctx, sql, args...)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *Tx) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	br := t.send(ctx, sql, args...)
	return closingRow{br.QueryRow(), br}
}

// txQuerier lets loadStream read through a Tx.
type txQuerier struct{ t *Tx }

func (q txQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br := q.t.send(ctx, sql, args...)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return closingRows{rows, br}, nil
}

// closingRow closes its batch once scanned.
type closingRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r closingRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// closingRows closes its batch with the rows.
type closingRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r closingRows) Close() {
	r.Rows.Close()
	r.br.Close()
}

// failedBatch answers every read with the error that ended the batch's
// BEGIN.
type failedBatch struct {
	pgx.BatchResults
	err error
}

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return errRow{f.err} }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
