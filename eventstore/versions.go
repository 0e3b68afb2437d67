package eventstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// StreamVersions returns the current version of each of the streams ids
// that exists, in one statement; ids of no stream are left out. It is how
// a cache of folded streams learns which of its entries are stale: a
// version read after a write was acknowledged counts that write. EInternal
// when the statement fails.
func (s *Store) StreamVersions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, version FROM streams WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, pg.Internal("read stream versions", err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]int64, len(ids))
	for rows.Next() {
		var id uuid.UUID
		var version int64
		if err := rows.Scan(&id, &version); err != nil {
			return nil, pg.Internal("scan stream versions", err)
		}
		out[id] = version
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("read stream versions", err)
	}
	return out, nil
}

// LoadAfter returns the events of stream id after version, in version
// order (none when the stream has no later ones): what a cache holding
// the stream folded up to version must fold to be current. It returns
// ENotFound when the events it read belong to another workspace.
func (s *Store) LoadAfter(ctx context.Context, workspaceID, id uuid.UUID, version int64) ([]helpdeskflow.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version`, id, version)
	if err != nil {
		return nil, pg.Internal("load stream", err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, err
	}
	if len(events) > 0 && events[0].WorkspaceID != workspaceID {
		return nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "stream %s not found", id)
	}
	return events, nil
}
