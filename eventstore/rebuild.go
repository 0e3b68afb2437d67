package eventstore

import (
	"context"
	"strconv"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Horizon returns two transaction ids of the current snapshot: ended (its
// xmin, the commit horizon ReadBatch reads below: every transaction with a
// smaller id has ended) and next (its xmax: every transaction that
// committed before Horizon was called has a smaller id). A reader that has
// read everything below ended, for an ended at or above an earlier call's
// next, holds every event committed before that earlier call. Errors are
// EInternal.
func (s *Store) Horizon(ctx context.Context) (ended, next uint64, err error) {
	var e, n int64
	err = s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint
		FROM pg_current_snapshot() s`).Scan(&e, &n)
	if err != nil {
		return 0, 0, pg.Internal("read the commit horizon", err)
	}
	return uint64(e), uint64(n), nil
}

// CountAfter returns how many events are stored after position after in
// commit order (committed or not yet below the horizon). It counts every
// such row, so it takes about a second per few million events. Errors are
// EInternal.
func (s *Store) CountAfter(ctx context.Context, after helpdeskflow.Position) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE (tx_id, seq) > ($1::text::xid8, $2)`,
		strconv.FormatUint(after.TxID, 10), after.Seq).Scan(&n)
	if err != nil {
		return 0, pg.Internal("count events", err)
	}
	return n, nil
}

// StreamCounts returns how many streams of each type (helpdeskflow.StreamTicket,
// …) the store holds. Errors are EInternal.
func (s *Store) StreamCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT type, count(*) FROM streams GROUP BY type`)
	if err != nil {
		return nil, pg.Internal("count streams", err)
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, pg.Internal("count streams", err)
		}
		counts[typ] = n
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("count streams", err)
	}
	return counts, nil
}
