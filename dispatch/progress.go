package dispatch

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
)

// progressStore reads and writes dispatch_progress: per consumer, the
// highest version of each stream whose event every handler has handled.
type progressStore struct {
	pool     *pgxpool.Pool
	consumer string
}

// load returns the handled version of each of streams that has one, in one
// query.
func (s progressStore) load(ctx context.Context, streams []uuid.UUID) (map[uuid.UUID]int64, error) {
	known := make(map[uuid.UUID]int64, len(streams))
	if len(streams) == 0 {
		return known, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT stream_id, version FROM dispatch_progress
		WHERE consumer = $1 AND stream_id = ANY($2::uuid[])`, s.consumer, streams)
	if err != nil {
		return nil, storeError("read dispatch progress", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var version int64
		if err := rows.Scan(&id, &version); err != nil {
			return nil, storeError("read dispatch progress", err)
		}
		known[id] = version
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("read dispatch progress", err)
	}
	return known, nil
}

// save records handled (stream id → highest handled version) in one
// statement. It never moves a stream's version backwards, so a late or
// repeated write is harmless.
func (s progressStore) save(ctx context.Context, handled map[uuid.UUID]int64) error {
	if len(handled) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(handled))
	versions := make([]int64, 0, len(handled))
	for id, v := range handled {
		ids = append(ids, id)
		versions = append(versions, v)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO dispatch_progress (consumer, stream_id, version)
		SELECT $1, p.stream_id, p.version FROM unnest($2::uuid[], $3::bigint[]) AS p(stream_id, version)
		ON CONFLICT (consumer, stream_id) DO UPDATE SET version = GREATEST(dispatch_progress.version, excluded.version)`,
		s.consumer, ids, versions)
	if err != nil {
		return storeError("write dispatch progress", err)
	}
	return nil
}

// storeError wraps a driver error as EInternal, or as EUnavailable when the
// database could not be reached, so that no pgx error leaves the package.
func storeError(what string, err error) error {
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.SafeToRetry(err) {
		return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "database unavailable: " + what, Err: err}
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: what, Err: err}
}
