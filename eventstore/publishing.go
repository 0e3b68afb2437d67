package eventstore

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// PublisherLease is the event store's side of publishing events in commit
// order: a dedicated session (never returned to the pool) that holds the
// leader lock of one publisher name, hears the store's commit
// notifications, and alone moves that name's checkpoint. One lease of a
// name exists at a time in the whole cluster; it ends with Close or when
// its session breaks (a Postgres restart, the network), and a waiting
// AcquirePublisherLease of another process then gets it.
type PublisherLease struct {
	name string
	conn *pgx.Conn
}

// AcquirePublisherLease waits until this process holds the leader lock of
// name, trying again every retry, and returns the lease listening for commit
// notifications. It returns (nil, nil) when ctx ends first, and
// EUnavailable or EInternal when the database fails.
func (s *Store) AcquirePublisherLease(ctx context.Context, name string, retry time.Duration) (*PublisherLease, error) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, pg.Unavailable("acquire publisher connection", err)
	}
	// The session holds the leader lock, so it must never go back to the pool.
	l := &PublisherLease{name: name, conn: pooled.Hijack()}
	for {
		var got bool
		if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, publisherLockKey(name)).Scan(&got); err != nil {
			l.Close(ctx)
			if ctx.Err() != nil {
				return nil, nil
			}
			return nil, pg.Internal("try publisher leader lock", err)
		}
		if got {
			break
		}
		if !poll.Sleep(ctx, retry) {
			l.Close(ctx)
			return nil, nil
		}
	}
	if _, err := l.conn.Exec(ctx, `LISTEN `+eventsChannel); err != nil {
		l.Close(ctx)
		return nil, pg.Internal("listen for events", err)
	}
	return l, nil
}

func publisherLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("helpdeskflow-relay:" + name))
	return int64(h.Sum64())
}

// Close ends the session, and with it the leadership.
func (l *PublisherLease) Close(ctx context.Context) {
	l.conn.Close(context.WithoutCancel(ctx))
}

// WaitForEvents returns when a commit notification arrives or d passes,
// or ctx ends (all nil); an error means the session broke.
func (l *PublisherLease) WaitForEvents(ctx context.Context, d time.Duration) error {
	waitCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := l.conn.WaitForNotification(waitCtx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || waitCtx.Err() != nil {
		return nil
	}
	return pg.Internal("wait for notification", err)
}

// Checkpoint returns the position up to which the lease's name has
// published (the zero Position before its first checkpoint).
func (l *PublisherLease) Checkpoint(ctx context.Context) (helpdeskflow.Position, error) {
	var txID string
	var seq int64
	err := l.conn.QueryRow(ctx, `SELECT tx_id::text, seq FROM relay_checkpoints WHERE name = $1`, l.name).Scan(&txID, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.Position{}, nil
	}
	if err != nil {
		return helpdeskflow.Position{}, pg.Internal("read relay checkpoint", err)
	}
	n, err := strconv.ParseUint(txID, 10, 64)
	if err != nil {
		return helpdeskflow.Position{}, pg.Internal("parse relay checkpoint", err)
	}
	return helpdeskflow.Position{TxID: n, Seq: seq}, nil
}

// SaveCheckpoint moves the checkpoint to p on the lease's own session, so a
// publisher that lost its session cannot move it, and never moves it
// backwards.
func (l *PublisherLease) SaveCheckpoint(ctx context.Context, p helpdeskflow.Position) error {
	_, err := l.conn.Exec(ctx, `INSERT INTO relay_checkpoints (name, tx_id, seq) VALUES ($1, $2::text::xid8, $3)
		ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, seq = excluded.seq, updated_at = now()
		WHERE (relay_checkpoints.tx_id, relay_checkpoints.seq) < (excluded.tx_id, excluded.seq)`,
		l.name, strconv.FormatUint(p.TxID, 10), p.Seq)
	if err != nil {
		return pg.Internal("save relay checkpoint", err)
	}
	return nil
}

// ReadBatch is ReadAfter over every workspace with its own byte budget:
// events after position after in commit order, below the commit horizon, at
// most limit of them and fewer when their data and metadata reach maxBytes
// (at least one event, whatever its size). cut reports a batch cut short by
// the budget, so more events follow at once.
func (s *Store) ReadBatch(ctx context.Context, after helpdeskflow.Position, limit, maxBytes int) (events []helpdeskflow.Event, cut bool, err error) {
	return s.readAfter(ctx, after, limit, uuid.Nil, maxBytes)
}
