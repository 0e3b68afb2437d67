// Package progress holds the dispatcher's progress (table
// dispatch_progress): per consumer, the highest version of each stream
// whose event every handler has handled, so an event Kafka delivers again
// is not handled twice. dispatch/ reads it for every polled batch and
// writes it before committing the batch's offsets.
package progress

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store reads and writes dispatch_progress. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the progress kept in db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

// Load returns consumer's handled version of each of streams that has one,
// in one query. Errors are EInternal, or EUnavailable when Postgres cannot
// be reached.
func (s *Store) Load(ctx context.Context, consumer string, streams []uuid.UUID) (map[uuid.UUID]int64, error) {
	known := make(map[uuid.UUID]int64, len(streams))
	if len(streams) == 0 {
		return known, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT stream_id, version FROM dispatch_progress
		WHERE consumer = $1 AND stream_id = ANY($2::uuid[])`, consumer, streams)
	if err != nil {
		return nil, pg.Internal("read dispatch progress", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var version int64
		if err := rows.Scan(&id, &version); err != nil {
			return nil, pg.Internal("read dispatch progress", err)
		}
		known[id] = version
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("read dispatch progress", err)
	}
	return known, nil
}

// Save records consumer's handled streams (stream id → highest handled
// version) in one statement. It never moves a stream's version backwards,
// so a late or repeated write is harmless. Errors are those of Load.
func (s *Store) Save(ctx context.Context, consumer string, handled map[uuid.UUID]int64) error {
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
		consumer, ids, versions)
	if err != nil {
		return pg.Internal("write dispatch progress", err)
	}
	return nil
}
