package dispatch

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/progress"
)

// progressStore reads and writes one consumer's rows of dispatch_progress
// (store/progress): per stream, the highest version whose event every
// handler has handled.
type progressStore struct {
	pool     *pg.DB
	consumer string
}

// load returns the handled version of each of streams that has one, in one
// query.
func (s progressStore) load(ctx context.Context, streams []uuid.UUID) (map[uuid.UUID]int64, error) {
	return progress.New(s.pool).Load(ctx, s.consumer, streams)
}

// save records handled (stream id → highest handled version) in one
// statement; it never moves a stream's version backwards.
func (s progressStore) save(ctx context.Context, handled map[uuid.UUID]int64) error {
	return progress.New(s.pool).Save(ctx, s.consumer, handled)
}
