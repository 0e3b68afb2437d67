package pg

import (
	"context"
	"hash/fnv"
)

// TryLock takes the cluster-wide advisory lock name on a session of its
// own, without waiting: ok is false when another session holds it. While
// ok, the caller holds the lock until it calls unlock (exactly once),
// which frees it and gives the session back to the pool; the lock also
// ends when the session breaks (the process died, Postgres restarted), so
// a crashed holder never keeps it. The session holds no transaction, so
// holding the lock keeps nothing from vacuum or the relay's commit
// horizon. It returns EUnavailable when Postgres cannot be reached and
// EInternal when the lock cannot be tried.
func (db *DB) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, Unavailable("acquire a session for lock "+name, err)
	}
	key := lockKey(name)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, Internal("try lock "+name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		var freed bool
		if err := conn.QueryRow(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key).Scan(&freed); err != nil || !freed {
			// A session that may still hold the lock must not go back to
			// the pool: closing it frees the lock.
			conn.Hijack().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing is the point
			return
		}
		conn.Release()
	}, true, nil
}

// lockKey is the advisory lock key of name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("helpdeskflow-lock:" + name))
	return int64(h.Sum64())
}
