// Package ratelimits is where the API processes share their rate limit
// counts and denial streaks (tables rate_limit_counts and
// rate_limit_streaks, unlogged): it implements http/ratelimit's Shared on
// Postgres (cmd/ wires it).
package ratelimits

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Store exchanges rate limit state through Postgres. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// lastCleanup is the exchange time of the last deletion of expired
	// rows.
	lastCleanup atomic.Int64
}

// New returns the store on db.
func New(db *pg.DB) *Store { return &Store{pool: db.Pool()} }

const (
	upsertCounts = `INSERT INTO rate_limit_counts (key_id, category, window_ns, slot, node, count, expires_ns)
		SELECT k, c, w, s, $1, n, e FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(k, c, w, s, n, e)
		ON CONFLICT (key_id, category, window_ns, slot, node) DO UPDATE SET count = EXCLUDED.count, expires_ns = EXCLUDED.expires_ns`
	upsertStreaks = `INSERT INTO rate_limit_streaks (workspace_id, node, start_ns, last_denial_ns, expires_ns)
		SELECT w, $1, s, l, e FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(w, s, l, e)
		ON CONFLICT (workspace_id, node) DO UPDATE SET start_ns = EXCLUDED.start_ns, last_denial_ns = EXCLUDED.last_denial_ns, expires_ns = EXCLUDED.expires_ns`
	deleteExpiredCounts  = `DELETE FROM rate_limit_counts WHERE expires_ns < $1`
	deleteExpiredStreaks = `DELETE FROM rate_limit_streaks WHERE expires_ns < $1`
	selectCounts         = `SELECT c.key_id, c.category, c.window_ns, c.slot, sum(c.count)::bigint
		FROM rate_limit_counts c
		JOIN unnest($2::uuid[], $3::text[], $4::bigint[], $5::bigint[]) AS b(k, cat, w, from_slot)
		  ON c.key_id = b.k AND c.category = b.cat AND c.window_ns = b.w AND c.slot >= b.from_slot
		WHERE c.node <> $1
		GROUP BY c.key_id, c.category, c.window_ns, c.slot`
	selectStreaks = `SELECT workspace_id, start_ns, last_denial_ns, expires_ns FROM rate_limit_streaks
		WHERE workspace_id = ANY($2::uuid[]) AND node <> $1`
)

// cleanupEvery is how often, by the exchanges' times, a Store deletes
// expired rows (any process's).
const cleanupEvery = time.Second

// Exchange implements ratelimit.Shared in one round trip (a pipelined
// batch): it upserts ex's counts and streaks as ex.Node's, deletes rows
// expired before ex.Now (about once a second per process) and reads the
// other nodes' counts and streaks. Errors are EUnavailable when Postgres
// cannot be reached, else EInternal.
func (s *Store) Exchange(ctx context.Context, ex helpdeskflow.RateLimitExchange) (helpdeskflow.RateLimitExchanged, error) {
	var out helpdeskflow.RateLimitExchanged
	b := &pgx.Batch{}
	if len(ex.Counts) > 0 {
		n := len(ex.Counts)
		keys, cats, windows, slots, counts, expires := make([]uuid.UUID, n), make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, c := range ex.Counts {
			keys[i], cats[i], windows[i], slots[i], counts[i], expires[i] = c.Key, c.Category, int64(c.Window), c.Slot, c.Count, c.Expires
		}
		b.Queue(upsertCounts, ex.Node, keys, cats, windows, slots, counts, expires)
	}
	if len(ex.Streaks) > 0 {
		n := len(ex.Streaks)
		ids, starts, lasts, expires := make([]uuid.UUID, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, st := range ex.Streaks {
			ids[i], starts[i], lasts[i], expires[i] = st.Workspace, st.Start, st.LastDenial, st.Expires
		}
		b.Queue(upsertStreaks, ex.Node, ids, starts, lasts, expires)
	}
	if last := s.lastCleanup.Load(); ex.Now-last >= int64(cleanupEvery) && s.lastCleanup.CompareAndSwap(last, ex.Now) {
		b.Queue(deleteExpiredCounts, ex.Now)
		b.Queue(deleteExpiredStreaks, ex.Now)
	}
	if len(ex.Buckets) > 0 {
		n := len(ex.Buckets)
		keys, cats, windows, froms := make([]uuid.UUID, n), make([]string, n), make([]int64, n), make([]int64, n)
		for i, bs := range ex.Buckets {
			keys[i], cats[i], windows[i], froms[i] = bs.Key, bs.Category, int64(bs.Window), bs.FromSlot
		}
		b.Queue(selectCounts, ex.Node, keys, cats, windows, froms).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var c helpdeskflow.RateLimitSlot
				var window int64
				if err := rows.Scan(&c.Key, &c.Category, &window, &c.Slot, &c.Count); err != nil {
					return err
				}
				c.Window = time.Duration(window)
				out.Counts = append(out.Counts, c)
			}
			return rows.Err()
		})
	}
	if len(ex.Workspaces) > 0 {
		b.Queue(selectStreaks, ex.Node, ex.Workspaces).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var st helpdeskflow.RateLimitStreak
				if err := rows.Scan(&st.Workspace, &st.Start, &st.LastDenial, &st.Expires); err != nil {
					return err
				}
				out.Streaks = append(out.Streaks, st)
			}
			return rows.Err()
		})
	}
	if b.Len() == 0 {
		return out, nil
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return helpdeskflow.RateLimitExchanged{}, pg.Internal("exchange rate limit counts", err)
	}
	return out, nil
}
