// Package eventstore is the event store, HelpDeskFlow's source of truth in
// PostgreSQL: streams and their events (which double as the outbox), append
// with expected version, load (from snapshots), the commit-order reader
// below the commit horizon and the publisher lease the relay holds. It
// writes through the one transaction type of store/pg, so a command's
// append commits with the rows of the rooms under store/ beside it.
package eventstore

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store appends and loads events. It is safe for concurrent use.
type Store struct {
	db            *pg.DB
	pool          *pgxpool.Pool
	notifier      *notifier
	eventsTotal   *prometheus.CounterVec
	lockHold      prometheus.Histogram
	appendLatency prometheus.Histogram
}

// notifyInterval is the shortest time between two notifications that wake
// the relay (see notifier).
const notifyInterval = 5 * time.Millisecond

// New returns a Store on db, registering its metrics on reg (which may be
// nil): helpdeskflow_events_appended_total{type},
// helpdeskflow_stream_lock_hold_seconds and helpdeskflow_append_duration_seconds.
func New(db *pg.DB, reg prometheus.Registerer) (*Store, error) {
	s := &Store{
		db:       db,
		pool:     db.Pool(),
		notifier: &notifier{pool: db.Pool(), interval: notifyInterval},
		eventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_events_appended_total",
			Help: "Events appended to the event store, by event type.",
		}, []string{"type"}),
		lockHold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "helpdeskflow_stream_lock_hold_seconds",
			Help:    "Time from taking a stream's row lock (or creating the stream) to the commit that releases it. The guide promises under 50 ms.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "helpdeskflow_append_duration_seconds",
			Help:    "Duration of whole command transactions, begin to commit.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.eventsTotal, s.lockHold, s.appendLatency} {
			if err := reg.Register(c); err != nil {
				return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register event store metrics", Err: err}
			}
		}
	}
	return s, nil
}

// LockStream takes the row lock of stream ref.ID until the transaction ends
// and returns its current version. It returns ENotFound when the stream does
// not exist, belongs to another workspace or holds another type of entity.
func (t *Tx) LockStream(ctx context.Context, ref helpdeskflow.StreamRef) (int64, error) {
	return t.locked(t.tx.Reader().QueryRow(ctx, lockStreamSQL, ref.ID), ref)
}

// LockTail is LockStream and LoadTail in one round trip: it locks stream
// ref.ID until the transaction ends and returns its version and its
// snapshot and the events after it, read after the lock was taken.
// ENotFound as LockStream.
func (t *Tx) LockTail(ctx context.Context, ref helpdeskflow.StreamRef) (int64, helpdeskflow.StreamTail, error) {
	b := &pgx.Batch{}
	b.Queue(lockStreamSQL, ref.ID)
	b.Queue(TailSQL("$1::uuid", "$2"), ref.ID, helpdeskflow.SnapshotFormat)
	br := t.tx.Reader().SendBatch(ctx, b)
	defer br.Close()
	version, err := t.locked(br.QueryRow(), ref)
	if err != nil {
		return 0, helpdeskflow.StreamTail{}, err
	}
	rows, err := br.Query()
	if err != nil {
		return 0, helpdeskflow.StreamTail{}, pg.Internal("load stream", err)
	}
	tail, err := ScanTail(rows)
	return version, tail, err
}

// lockStreamSQL locks a stream's row and reads what LockStream checks.
const lockStreamSQL = `SELECT workspace_id, type, version FROM streams WHERE id = $1 FOR UPDATE`

// locked reads row, of lockStreamSQL, for stream ref: its version, noting
// when the transaction first held a stream lock; ENotFound as LockStream.
func (t *Tx) locked(row pgx.Row, ref helpdeskflow.StreamRef) (int64, error) {
	var workspaceID uuid.UUID
	var streamType string
	var version int64
	err := row.Scan(&workspaceID, &streamType, &version)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (workspaceID != ref.WorkspaceID || streamType != ref.Type)) {
		return 0, helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %s not found", ref.Type, ref.ID)
	}
	if err != nil {
		return 0, pg.Internal("lock stream", err)
	}
	if t.st.lockedAt.IsZero() {
		t.st.lockedAt = time.Now()
	}
	return version, nil
}

// Load returns the events of stream id in version order, as this
// transaction sees them.
func (t *Tx) Load(ctx context.Context, id uuid.UUID) ([]helpdeskflow.Event, error) {
	return loadStream(ctx, t.tx.Reader(), id)
}

// Append adds events to stream ref, which must be at expectedVersion: 0 means
// the stream must not exist yet and creates it. The events get versions
// expectedVersion+1, +2, … and all carry md. It returns the stream's new
// version. The statement is sent with the transaction's next statement or
// its commit, so EVersionConflict (the stream is at another version, or
// already exists for expectedVersion 0) is returned by that statement or
// by Transact. Appending no events is a no-op.
//
// An event whose encoding would exceed helpdeskflow.MaxEventBytes, or
// events that would take the transaction's appends over MaxAppendBytes,
// are refused with EPayloadTooLarge (its cause a
// *helpdeskflow.TooLargeError naming the event) before anything is sent,
// for every writer: the relay must be able to publish every stored event.
// Commands name the request field from the cause.
func (t *Tx) Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error) {
	if len(events) == 0 {
		return expectedVersion, nil
	}
	newVersion := expectedVersion + int64(len(events))
	mdJSON, err := helpdeskflow.MarshalJSON(md)
	if err != nil {
		return 0, pg.Internal("encode metadata", err)
	}
	total := t.st.appendedBytes
	for _, e := range events {
		size := helpdeskflow.EventSize(e.Type, ref.Type, e.Data, mdJSON)
		var refused *helpdeskflow.TooLargeError
		if size > helpdeskflow.MaxEventBytes {
			refused = &helpdeskflow.TooLargeError{Event: e, Size: size}
		} else if total += size; total > helpdeskflow.MaxAppendBytes {
			refused = &helpdeskflow.TooLargeError{Event: e, Size: total, Total: true}
		}
		if refused != nil {
			return 0, &helpdeskflow.Error{Code: helpdeskflow.EPayloadTooLarge, Message: refused.Error(), Err: refused}
		}
	}
	// An append undone with its part of the transaction (a batch item
	// rolled back to its savepoint) gives its bytes and events back.
	st, bytesBefore, appendedBefore, lastBefore := t.st, t.st.appendedBytes, len(t.st.appended), t.st.last
	t.tx.OnRollbackToSavepoint(func() {
		st.appendedBytes, st.appended, st.last = bytesBefore, st.appended[:appendedBefore], lastBefore
	})
	t.st.appendedBytes = total
	ids := make([]uuid.UUID, len(events))
	versions := make([]int64, len(events))
	types := make([]string, len(events))
	schemas := make([]int32, len(events))
	data := make([]string, len(events))
	occurred := make([]time.Time, len(events))
	now := time.Now().UTC()
	for i, e := range events {
		ids[i], versions[i], types[i], schemas[i], data[i] = e.ID, expectedVersion+int64(i)+1, e.Type, int32(e.SchemaVersion), string(e.Data)
		occurred[i] = e.OccurredAt
		if occurred[i].IsZero() {
			occurred[i] = now
		}
	}
	// One statement moves (or creates) the stream row and inserts the
	// events, and raises a version conflict (aborting the transaction) when
	// the stream row is not at the expected version. It is not sent now but
	// with the transaction's next statement or its COMMIT, which saves a
	// round trip; its error surfaces there. It returns the transaction id
	// and the last event's sequence number: the position the transaction
	// notes for the request after its commit.
	streamStep := `UPDATE streams SET version = $11, updated_at = now() WHERE id = $1 AND version = $12 RETURNING id`
	if expectedVersion == 0 {
		streamStep = `INSERT INTO streams (id, workspace_id, type, version) SELECT $1, $3, $2, $11 WHERE $12::bigint = 0
			ON CONFLICT (id) DO NOTHING RETURNING id`
	}
	t.tx.DeferReturning(st.noteLast, `WITH stream AS (`+streamStep+`), appended AS (
		INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata, occurred_at)
		SELECT e.id, $1, $2, e.version, $3, e.type, e.schema_version, e.data::json, $4, e.occurred_at
		FROM unnest($5::uuid[], $6::bigint[], $7::text[], $8::int[], $9::text[], $10::timestamptz[])
			AS e(id, version, type, schema_version, data, occurred_at)
		WHERE CASE WHEN EXISTS (SELECT 1 FROM stream) THEN true ELSE hdf_version_conflict($1, $12) END
		RETURNING seq)
		SELECT pg_current_xact_id()::text::bigint, max(seq) FROM appended`,
		ref.ID, ref.Type, ref.WorkspaceID, mdJSON, ids, versions, types, schemas, data, occurred, newVersion, expectedVersion)
	if t.st.lockedAt.IsZero() {
		// The stream row is locked from this statement until commit.
		t.st.lockedAt = time.Now()
	}
	t.st.appended = append(t.st.appended, events...)
	return newVersion, nil
}

// noteLast reads the row of an append's statement (transaction id, last
// sequence number) into st.last, keeping the later position. A row it
// cannot read leaves st.last as it was: the request then carries an
// earlier position, or none (pg.Tx.DeferReturning's scan must not fail).
func (st *txState) noteLast(rows pgx.Rows) error {
	for rows.Next() {
		var txID int64
		var seq *int64
		if rows.Scan(&txID, &seq) != nil || seq == nil {
			continue
		}
		if p := (helpdeskflow.Position{TxID: uint64(txID), Seq: *seq}); st.last.Less(p) {
			st.last = p
		}
	}
	return nil
}

// Load returns the events of stream id in version order. It returns
// ENotFound when the stream has no events or belongs to another workspace.
func (s *Store) Load(ctx context.Context, workspaceID, id uuid.UUID) ([]helpdeskflow.Event, error) {
	events, err := loadStream(ctx, s.pool, id)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 || events[0].WorkspaceID != workspaceID {
		return nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "stream %s not found", id)
	}
	return events, nil
}

// LoadRange returns the events of stream ref from version from to version
// to (both included; to 0: to the last), in version order, in one round
// trip. It returns ENotFound when
// ref.ID is not a stream of that workspace and type; a range past the
// stream's end returns what the stream has of it.
func (s *Store) LoadRange(ctx context.Context, ref helpdeskflow.StreamRef, from, to int64) ([]helpdeskflow.Event, error) {
	if to == 0 {
		to = math.MaxInt64
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT workspace_id, type FROM streams WHERE id = $1`, ref.ID)
	b.Queue(`SELECT `+eventColumns+` FROM events WHERE stream_id = $1 AND version BETWEEN $2 AND $3 ORDER BY version`, ref.ID, from, to)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var workspaceID uuid.UUID
	var streamType string
	err := br.QueryRow().Scan(&workspaceID, &streamType)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (workspaceID != ref.WorkspaceID || streamType != ref.Type)) {
		return nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %s not found", ref.Type, ref.ID)
	}
	if err != nil {
		return nil, pg.Internal("load stream", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, pg.Internal("load stream", err)
	}
	return scanEvents(rows)
}

// LatestEventsOfTypes returns, for each of the streams of workspace
// workspaceID named in streamIDs, its newest event of one of types that
// occurred at or before until, in no particular order; streams without one
// (or of another workspace) are left out. It reads every event of those
// streams, so callers keep streamIDs to what they need.
func (s *Store) LatestEventsOfTypes(ctx context.Context, workspaceID uuid.UUID, streamIDs []uuid.UUID, types []string, until time.Time) ([]helpdeskflow.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (stream_id) `+eventColumns+` FROM events
		WHERE stream_id = ANY($1) AND workspace_id = $2 AND type = ANY($3) AND occurred_at <= $4
		ORDER BY stream_id, version DESC`, streamIDs, workspaceID, types, until)
	if err != nil {
		return nil, pg.Internal("load events of types", err)
	}
	return scanEvents(rows)
}

const eventColumns = `id, type, schema_version, stream_id, stream_type, version, workspace_id, occurred_at, data, metadata, tx_id::text::bigint, seq`

func loadStream(ctx context.Context, q pg.Querier, id uuid.UUID) ([]helpdeskflow.Event, error) {
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, pg.Internal("load stream", err)
	}
	events, _, err := scanEventsUpTo(rows, 0)
	return events, err
}

func scanEvents(rows pgx.Rows) ([]helpdeskflow.Event, error) {
	events, _, err := scanEventsUpTo(rows, 0)
	return events, err
}

// scanEventsUpTo scans rows until their data and metadata total maxBytes or
// more (0: no limit), always taking at least one; cut reports that rows
// were left unread.
func scanEventsUpTo(rows pgx.Rows, maxBytes int) (events []helpdeskflow.Event, cut bool, err error) {
	defer rows.Close()
	total := 0
	for rows.Next() {
		if maxBytes > 0 && total >= maxBytes {
			return events, true, nil
		}
		var e helpdeskflow.Event
		var data, md []byte
		var txID int64
		if err := rows.Scan(&e.ID, &e.Type, &e.SchemaVersion, &e.StreamID, &e.StreamType, &e.Version,
			&e.WorkspaceID, &e.OccurredAt, &data, &md, &txID, &e.Position.Seq); err != nil {
			return nil, false, pg.Internal("scan event", err)
		}
		e.Data = data
		e.OccurredAt = e.OccurredAt.UTC()
		e.Position.TxID = uint64(txID)
		if err := decodeMetadata(md, &e.Metadata); err != nil {
			return nil, false, pg.Internal("decode event metadata", err)
		}
		events = append(events, e)
		total += len(data) + len(md)
	}
	if err := rows.Err(); err != nil {
		return nil, false, pg.Internal("read events", err)
	}
	return events, false, nil
}
