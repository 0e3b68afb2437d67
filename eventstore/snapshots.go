package eventstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// PutSnapshot records snap as its stream's snapshot, replacing an older one
// or one of another format (a newer one stays). It is sent with the
// transaction's next statement or its commit, like Append, so it costs no
// round trip of its own and is stored only if the transaction commits.
// The caller holds the stream's lock and snap.State must be exactly what
// folding the stream up to snap.Version gives.
func (t *Tx) PutSnapshot(ctx context.Context, snap helpdeskflow.Snapshot) {
	t.tx.Defer(`INSERT INTO snapshots (stream_id, workspace_id, stream_type, version, format, state) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, format = excluded.format, state = excluded.state, created_at = now()
		WHERE snapshots.version < excluded.version OR snapshots.format <> excluded.format`,
		snap.StreamID, snap.WorkspaceID, snap.StreamType, snap.Version, snap.Format, snap.State)
}

// LoadTail returns stream id's snapshot of the current
// helpdeskflow.SnapshotFormat (if it has one) and the events after it, as
// this transaction sees them, in one round trip.
func (t *Tx) LoadTail(ctx context.Context, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	return loadTail(ctx, t.tx.Reader(), id)
}

// LoadTail returns stream id's snapshot of the current
// helpdeskflow.SnapshotFormat (if it has one) and the events after it, read
// by one statement, so the two agree. It returns ENotFound when the stream
// has neither or belongs to another workspace.
func (s *Store) LoadTail(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	tail, err := loadTail(ctx, s.pool, id)
	if err != nil {
		return helpdeskflow.StreamTail{}, err
	}
	if !tail.InWorkspace(workspaceID) {
		return helpdeskflow.StreamTail{}, helpdeskflow.Errorf(helpdeskflow.ENotFound, "stream %s not found", id)
	}
	return tail, nil
}

func loadTail(ctx context.Context, q pg.Querier, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	rows, err := q.Query(ctx, TailSQL("$1::uuid", "$2"), id, helpdeskflow.SnapshotFormat)
	if err != nil {
		return helpdeskflow.StreamTail{}, pg.Internal("load stream", err)
	}
	return ScanTail(rows)
}

// TailSQL is the statement that loads a stream from its snapshot: the
// snapshot of format formatParam (a row with a NULL event id) and then the
// events after it, in version order. streamID is an SQL expression for the
// stream's id. One statement, so the snapshot and the events come from one
// database snapshot even outside a transaction. A room that finds the
// stream by its own tables sends it in the same batch as its lookup (see
// lookups.Tx.ReserveCustomerEmail) and reads the rows with ScanTail.
func TailSQL(streamID, formatParam string) string {
	return tailSQL(streamID, formatParam, "", "")
}

// tailSQL is TailSQL with more conditions (each starting with AND) on the
// snapshot (snapshots s) and on the events after it (events).
func tailSQL(streamID, formatParam, snapshotCond, eventCond string) string {
	return `WITH sid AS (SELECT ` + streamID + ` AS id),
		snap AS (SELECT stream_id, workspace_id, stream_type, version, state FROM snapshots s
			WHERE stream_id = (SELECT id FROM sid) AND format = ` + formatParam + snapshotCond + `)
		SELECT NULL::uuid AS id, NULL::text AS type, NULL::int AS schema_version, stream_id, stream_type, version, workspace_id,
			NULL::timestamptz AS occurred_at, NULL::json AS data, NULL::jsonb AS metadata, NULL::bigint AS tx_id, NULL::bigint AS seq, state
		FROM snap
		UNION ALL
		SELECT ` + eventColumns + `, NULL::bytea
		FROM events WHERE stream_id = (SELECT id FROM sid) AND version > coalesce((SELECT version FROM snap), 0)` + eventCond + `
		ORDER BY version`
}

// tailByVersionSQL loads stream $1 up to version $3 from its snapshot of
// format $2 when that snapshot is not after it.
var tailByVersionSQL = tailSQL("$1::uuid", "$2", ` AND s.version <= $3`, ` AND version <= $3`)

// tailByTimeSQL loads stream $1 up to (not including) its first event
// after time $3, from its snapshot of format $2 when the snapshot's own
// event is not after $3. The first event after $3 is looked for from the
// snapshot on, in version order, so the statement reads the index entries
// and rows of the events it returns plus one.
var tailByTimeSQL = tailSQL("$1::uuid", "$2",
	` AND EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id AND e.version = s.version AND e.occurred_at <= $3)`,
	` AND version < coalesce((SELECT f.version FROM events f
		WHERE f.stream_id = (SELECT id FROM sid) AND f.version > coalesce((SELECT version FROM snap), 0) AND f.occurred_at > $3
		ORDER BY f.version LIMIT 1), 9223372036854775807)`)

// LoadTailAsOf is LoadTail for a past state of the stream (see
// helpdeskflow.AsOf): its snapshot is used only when it is not after
// asOf, and the events after it stop at asOf. One statement, like
// LoadTail. It returns ENotFound when the stream had no event by asOf or
// belongs to another workspace; the caller sees that a version beyond
// the stream's current one was asked for from the last event's version.
func (s *Store) LoadTailAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf) (helpdeskflow.StreamTail, error) {
	query, bound := tailByTimeSQL, any(asOf.Time)
	if asOf.ByVersion() {
		query, bound = tailByVersionSQL, asOf.Version
	}
	rows, err := s.pool.Query(ctx, query, id, helpdeskflow.SnapshotFormat, bound)
	if err != nil {
		return helpdeskflow.StreamTail{}, pg.Internal("load stream", err)
	}
	tail, err := ScanTail(rows)
	if err != nil {
		return helpdeskflow.StreamTail{}, err
	}
	if !tail.InWorkspace(workspaceID) {
		return helpdeskflow.StreamTail{}, helpdeskflow.Errorf(helpdeskflow.ENotFound, "stream %s not found", id)
	}
	return tail, nil
}

// ScanTail reads the rows of TailSQL and closes them; EInternal when they
// cannot be read.
func ScanTail(rows pgx.Rows) (helpdeskflow.StreamTail, error) {
	defer rows.Close()
	var tail helpdeskflow.StreamTail
	for rows.Next() {
		var (
			id              *uuid.UUID
			eventType       *string
			schemaVersion   *int
			e               helpdeskflow.Event
			occurredAt      *time.Time
			data, md, state []byte
			txID, seq       *int64
		)
		if err := rows.Scan(&id, &eventType, &schemaVersion, &e.StreamID, &e.StreamType, &e.Version, &e.WorkspaceID,
			&occurredAt, &data, &md, &txID, &seq, &state); err != nil {
			return helpdeskflow.StreamTail{}, pg.Internal("scan stream", err)
		}
		if id == nil {
			tail.Snapshot = &helpdeskflow.Snapshot{StreamID: e.StreamID, WorkspaceID: e.WorkspaceID, StreamType: e.StreamType,
				Version: e.Version, Format: helpdeskflow.SnapshotFormat, State: state}
			continue
		}
		e.ID, e.Type, e.SchemaVersion, e.OccurredAt, e.Data = *id, *eventType, *schemaVersion, occurredAt.UTC(), data
		e.Position = helpdeskflow.Position{TxID: uint64(*txID), Seq: *seq}
		if err := json.Unmarshal(md, &e.Metadata); err != nil {
			return helpdeskflow.StreamTail{}, pg.Internal("decode event metadata", err)
		}
		tail.Events = append(tail.Events, e)
	}
	if err := rows.Err(); err != nil {
		return helpdeskflow.StreamTail{}, pg.Internal("read stream", err)
	}
	return tail, nil
}
