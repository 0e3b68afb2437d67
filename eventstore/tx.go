package eventstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
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
	lockedAt time.Time
	appended []helpdeskflow.NewEvent
}

// Transact runs fn in one short transaction and commits if fn returns nil;
// otherwise it rolls back and returns fn's error unchanged. Keep fn free of
// slow work: the stream locks it takes are held until commit. It returns
// EVersionConflict when the commit hits a concurrent writer and
// EUnavailable when Postgres cannot be reached.
func (s *Store) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	start := time.Now()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return unavailable("acquire connection", err)
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
	if !tx.begun {
		return nil
	}
	if _, err := conn.Exec(ctx, "commit"); err != nil {
		if isUniqueViolation(err) {
			return helpdeskflow.Errorf(helpdeskflow.EVersionConflict, "the stream was changed concurrently")
		}
		return internal("commit", err)
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
	return nil
}

// batch starts a pipeline of statements, with BEGIN first when the
// transaction has not begun.
func (t *Tx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue("begin")
	}
	return b
}

// sendBatch sends a pipeline started by batch and consumes the BEGIN's
// result, so the caller reads only its own statements' results.
func (t *Tx) sendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	br := t.conn.SendBatch(ctx, b)
	if !t.begun {
		t.begun = true
		if _, err := br.Exec(); err != nil {
			return failedBatch{br, err}
		}
	}
	return br
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
