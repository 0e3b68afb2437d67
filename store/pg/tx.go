package pg

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
)

// Tx is one short transaction that every room's view (the event store's
// eventstore.Tx, a room's Tx) writes through, so one commit spans an
// append and the rows beside it. A Tx is used by one goroutine only and is
// valid only inside the function given to DB.Transact.
//
// The transaction opens lazily: BEGIN travels in the same round trip as the
// first statement, which saves a round trip on every command (on this
// kind of machine round trips, not SQL, dominate a command's cost).
// Statements given to Defer wait for the next statement or the commit.
type Tx struct {
	conn     *pgxpool.Conn
	started  time.Time
	begun    bool
	deferred []deferredExec
	hooks    []func(ctx context.Context, db *DB) error
	locals   map[any]any
	// member is set when the transaction is one command of a group commit
	// (see DB.TransactGrouped): its statements then go out with its
	// neighbours' through the group's connection.
	member *member
	// wrote is set once a statement that may change data was sent (any
	// but Reader's); a grouped transaction that fails after writing undoes
	// its whole group.
	wrote bool
}

// Transact runs fn in one short transaction and commits if fn returns nil;
// otherwise it rolls back and returns fn's error unchanged. Keep fn free of
// slow work: the row locks it takes are held until commit. It returns
// EVersionConflict when the commit hits a unique violation (a concurrent
// writer) and EUnavailable when Postgres cannot be reached. After the
// commit it runs the hooks registered with AfterCommit, in order, and
// returns the first error of theirs (the change is committed either way).
// A transaction that sent nothing commits nothing and runs no hooks.
func (db *DB) Transact(ctx context.Context, fn func(tx *Tx) error) error {
	start := time.Now()
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return Unavailable("acquire connection", err)
	}
	// A connection released inside a transaction (a failed rollback) is
	// closed by the pool rather than reused.
	defer conn.Release()
	tx := &Tx{conn: conn, started: start}
	if err := fn(tx); err != nil {
		if tx.begun {
			conn.Exec(context.WithoutCancel(ctx), "rollback") //nolint:errcheck // fn's error is the one to report
		}
		return err
	}
	if !tx.begun && len(tx.deferred) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "commit"); err != nil {
		conn.Exec(context.WithoutCancel(ctx), "rollback") //nolint:errcheck // the commit's error is the one to report
		if IsUniqueViolation(err) {
			return helpdeskflow.Errorf(helpdeskflow.EVersionConflict, "the stream was changed concurrently")
		}
		return Internal("commit", err)
	}
	return tx.runHooks(ctx, db)
}

// runHooks runs the AfterCommit hooks in order and returns the first error.
func (t *Tx) runHooks(ctx context.Context, db *DB) error {
	var first error
	for _, hook := range t.hooks {
		if err := hook(ctx, db); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Started returns when Transact began, before it acquired a connection.
func (t *Tx) Started() time.Time { return t.started }

// AfterCommit registers hook to run once the transaction has committed
// (never after a rollback), after the hooks registered before it. Rooms use
// it for what must follow a commit: the event store wakes the relay, the
// access room waits until every API process dropped its cached access.
func (t *Tx) AfterCommit(hook func(ctx context.Context, db *DB) error) {
	t.hooks = append(t.hooks, hook)
}

// Local returns what a room keeps for this transaction under key, made by
// init on the first call (which may register an AfterCommit hook); every
// view of the transaction thus shares one copy.
func (t *Tx) Local(key any, init func() any) any {
	if v, ok := t.locals[key]; ok {
		return v
	}
	if t.locals == nil {
		t.locals = map[any]any{}
	}
	v := init()
	t.locals[key] = v
	return v
}

// deferredExec is a statement that goes out with the transaction's next
// one: a write whose result nobody waits for, or a read whose rows scan
// reads when that round trip is back.
type deferredExec struct {
	sql  string
	args []any
	scan func(pgx.Rows) error
	// write marks a statement given to DeferReturning: a write whose
	// rows scan reads.
	write bool
}

// Defer queues a statement to go out with the next one or the commit. Its
// error surfaces there: a unique violation, or the event store's version
// conflict (SQLSTATE HDF01), as EVersionConflict, anything else as
// EInternal.
func (t *Tx) Defer(sql string, args ...any) {
	t.deferred = append(t.deferred, deferredExec{sql: sql, args: args})
}

// DeferReturning is Defer for a write that returns rows: scan reads them
// when the round trip that sends the statement is back, the commit's
// included (also in a group commit). The statement's error surfaces as
// Defer's; scan must not fail (its error would be taken for the
// statement's), so it keeps what it cannot read to itself. When the
// statement is dropped unsent (its savepoint's part rolled back), scan
// never runs.
func (t *Tx) DeferReturning(scan func(pgx.Rows) error, sql string, args ...any) {
	t.deferred = append(t.deferred, deferredExec{sql: sql, args: args, scan: scan, write: true})
}

// DeferRead queues a statement that changes nothing to go out with the
// next one, saving it a round trip of its own: scan reads its rows as soon
// as that round trip is back, before the next statement's results are
// read, and rows are closed after it. An error of the statement or of
// scan is the next statement's (EInternal). When the transaction sends
// nothing more, scan may never run.
func (t *Tx) DeferRead(scan func(pgx.Rows) error, sql string, args ...any) {
	t.deferred = append(t.deferred, deferredExec{sql: sql, args: args, scan: scan})
}

// SendBatch sends b's statements in one round trip, after BEGIN when the
// transaction has not begun and the deferred statements, whose results it
// consumes: the caller reads only b's results, and closes them. An error of
// BEGIN or a deferred statement ends the batch: every result reports it.
func (t *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.sendBatch(ctx, b, false)
}

// sendBatch is SendBatch; readOnly promises that b's statements change
// nothing (see Reader).
func (t *Tx) sendBatch(ctx context.Context, b *pgx.Batch, readOnly bool) pgx.BatchResults {
	full := &pgx.Batch{}
	if !t.begun && t.member == nil {
		full.Queue("begin")
	}
	for _, d := range t.deferred {
		full.Queue(d.sql, d.args...)
	}
	full.QueuedQueries = append(full.QueuedQueries, b.QueuedQueries...)
	if !readOnly {
		t.wrote = true
	}
	for _, d := range t.deferred {
		if d.scan == nil || d.write {
			t.wrote = true
		}
	}
	var br pgx.BatchResults
	if t.member != nil {
		br = t.member.send(full, len(full.QueuedQueries))
	} else {
		br = t.conn.SendBatch(ctx, full)
	}
	if !t.begun {
		t.begun = true
		if t.member == nil {
			if _, err := br.Exec(); err != nil {
				return failedBatch{br, Internal("begin", err)}
			}
		}
	}
	deferred := t.deferred
	t.deferred = nil
	for _, d := range deferred {
		if err := d.result(br); err != nil {
			return failedBatch{br, err}
		}
	}
	return br
}

// result reads d's result from br: its rows through scan, or its command
// tag; the error is the statement's (or scan's), translated.
func (d deferredExec) result(br pgx.BatchResults) error {
	switch {
	case d.scan == nil:
		if _, err := br.Exec(); err != nil {
			return deferredError(err)
		}
	case d.write:
		if err := scanDeferred(br, d.scan); err != nil {
			return deferredError(err)
		}
	default:
		if err := scanDeferred(br, d.scan); err != nil {
			return Internal("deferred read", err)
		}
	}
	return nil
}

// scanDeferred reads the next result of br with scan.
func scanDeferred(br pgx.BatchResults, scan func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	err = scan(rows)
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	return err
}

// deferredError translates the error of a deferred statement.
func deferredError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "HDF01" || pgErr.Code == "23505") {
		return &helpdeskflow.Error{Code: helpdeskflow.EVersionConflict, Message: "the stream was changed concurrently; reload and retry", Err: err}
	}
	return Internal("append events", err)
}

// send runs one statement, prefixed by BEGIN when it is the first.
func (t *Tx) send(ctx context.Context, readOnly bool, sql string, args ...any) pgx.BatchResults {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return t.sendBatch(ctx, b, readOnly)
}

// Exec runs one statement (with the deferred ones before it).
func (t *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br := t.send(ctx, false, sql, args...)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// QueryRow runs one statement (with the deferred ones before it) and
// returns its first row.
func (t *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.queryRow(ctx, false, sql, args...)
}

func (t *Tx) queryRow(ctx context.Context, readOnly bool, sql string, args ...any) pgx.Row {
	br := t.send(ctx, readOnly, sql, args...)
	return closingRow{br.QueryRow(), br}
}

// Query runs one statement (with the deferred ones before it) and returns
// its rows; the caller closes them.
func (t *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.query(ctx, false, sql, args...)
}

func (t *Tx) query(ctx context.Context, readOnly bool, sql string, args ...any) (pgx.Rows, error) {
	br := t.send(ctx, readOnly, sql, args...)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return closingRows{rows, br}, nil
}

// Reader is the transaction's view for statements that change nothing
// (plain SELECTs, also FOR UPDATE). Rooms read through it, so that a
// grouped transaction (see DB.TransactGrouped) whose function fails after
// reads alone leaves the commands it shares its commit with untouched.
// Deferred statements sent along with a read still count as writes.
type Reader struct{ t *Tx }

// Reader returns tx's view for statements that change nothing.
func (t *Tx) Reader() Reader { return Reader{t} }

// Query runs one statement that changes nothing; see Tx.Query.
func (r Reader) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return r.t.query(ctx, true, sql, args...)
}

// QueryRow runs one statement that changes nothing; see Tx.QueryRow.
func (r Reader) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return r.t.queryRow(ctx, true, sql, args...)
}

// SendBatch sends statements that change nothing in one round trip; see
// Tx.SendBatch.
func (r Reader) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return r.t.sendBatch(ctx, b, true)
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

// failedBatch answers every read with err: the error that ended the
// batch's BEGIN or a deferred statement (BatchResults, the batch, is
// closed with it), or why a grouped transaction's statements were not sent
// (no BatchResults).
type failedBatch struct {
	pgx.BatchResults
	err error
}

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return errRow{f.err} }

func (f failedBatch) Close() error {
	if f.BatchResults == nil {
		return nil
	}
	return f.BatchResults.Close()
}

func (f failedBatch) Tx() pgx.Tx {
	if f.BatchResults == nil {
		return nil
	}
	return f.BatchResults.Tx()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
