package queues

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// CreateReplay records a webhook replay to be enqueued (status
// enqueueing, its cursor at the range's start), for the replay worker to
// lease. Errors are EInternal.
func (s *Store) CreateReplay(ctx context.Context, r helpdeskflow.WebhookReplay) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_replays (id, webhook_id, workspace_id, range_from, range_to, event_types,
			after_tx, after_seq, upto_tx, upto_seq, from_time, to_time, total, cursor_tx, cursor_seq, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $7, $8, 'enqueueing', $14)`,
		r.ID, r.WebhookID, r.WorkspaceID, r.From, r.To, r.Range.Types, int64(r.Range.After.TxID), r.Range.After.Seq,
		int64(r.Range.Upto.TxID), r.Range.Upto.Seq, r.Range.From, r.Range.To, r.Total, r.CreatedAt)
	if err != nil {
		return pg.Internal("record webhook replay", err)
	}
	return nil
}

const replayColumns = `r.id, r.webhook_id, r.workspace_id, r.range_from, r.range_to, r.event_types, r.after_tx, r.after_seq,
	r.upto_tx, r.upto_seq, r.from_time, r.to_time, r.total, r.enqueued, r.cursor_tx, r.cursor_seq, r.status = 'enqueued',
	r.created_at, r.enqueued_at`

func scanReplay(row pgx.Row, extra ...any) (helpdeskflow.WebhookReplay, error) {
	var r helpdeskflow.WebhookReplay
	var afterTx, uptoTx, cursorTx int64
	err := row.Scan(append([]any{&r.ID, &r.WebhookID, &r.WorkspaceID, &r.From, &r.To, &r.Range.Types, &afterTx, &r.Range.After.Seq,
		&uptoTx, &r.Range.Upto.Seq, &r.Range.From, &r.Range.To, &r.Total, &r.Enqueued, &cursorTx, &r.Cursor.Seq, &r.Done,
		&r.CreatedAt, &r.EnqueuedAt}, extra...)...)
	r.Range.WorkspaceID = r.WorkspaceID
	r.Range.After.TxID, r.Range.Upto.TxID, r.Cursor.TxID = uint64(afterTx), uint64(uptoTx), uint64(cursorTx)
	r.EventTypes = r.Range.Types
	r.CreatedAt = r.CreatedAt.UTC()
	if r.EnqueuedAt != nil {
		t := r.EnqueuedAt.UTC()
		r.EnqueuedAt = &t
	}
	return r, err
}

// Replay returns a replay of a webhook of the workspace with its progress:
// its deliveries counted by status (Delivered: succeeded; Enqueued: all
// of them). ENotFound for
// any other (another workspace's or webhook's replay id included).
func (s *Store) Replay(ctx context.Context, workspaceID, webhookID, id uuid.UUID) (helpdeskflow.WebhookReplay, error) {
	var pending, delivered, failed, dropped, cancelled int
	r, err := scanReplay(s.pool.QueryRow(ctx, `SELECT `+replayColumns+`, c.pending, c.succeeded, c.failed, c.dropped, c.cancelled
		FROM webhook_replays r CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
			count(*) FILTER (WHERE status = 'succeeded') AS succeeded, count(*) FILTER (WHERE status = 'failed') AS failed,
			count(*) FILTER (WHERE status = 'dropped') AS dropped, count(*) FILTER (WHERE status = 'cancelled') AS cancelled
			FROM webhook_deliveries d WHERE d.replay_id = r.id) c
		WHERE r.id = $1 AND r.webhook_id = $2 AND r.workspace_id = $3`, id, webhookID, workspaceID),
		&pending, &delivered, &failed, &dropped, &cancelled)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, helpdeskflow.Errorf(helpdeskflow.ENotFound, "replay %s of webhook %s not found", id, webhookID)
	}
	if err != nil {
		return r, pg.Internal("read webhook replay", err)
	}
	r.Pending, r.Delivered, r.Failed, r.Dropped, r.Cancelled = pending, delivered, failed, dropped, cancelled
	// The deliveries themselves, not the worker's running count (a batch
	// repeated after a crash records nothing twice).
	r.Enqueued = pending + delivered + failed + dropped + cancelled
	return r, nil
}

// ClaimedReplay is a replay a worker leased to enqueue a batch of, with
// what its deliveries need from the webhook: its event types and whether
// it is paused (deliveries recorded held).
type ClaimedReplay struct {
	helpdeskflow.WebhookReplay
	WebhookEventTypes []string
	WebhookActive     bool
}

// ClaimReplay leases the oldest replay still enqueueing whose lease has
// run out (or that has none) until now+lease, and reports false when
// there is none. A replay of a deleted webhook is marked enqueued instead
// (its deliveries would be cancelled). Errors are EInternal.
func (s *Store) ClaimReplay(ctx context.Context, now time.Time, lease time.Duration) (ClaimedReplay, bool, error) {
	for {
		var c ClaimedReplay
		var deleted bool
		row := s.pool.QueryRow(ctx, `WITH next AS (
				SELECT id FROM webhook_replays WHERE status = 'enqueueing' AND (leased_until IS NULL OR leased_until <= $1)
				ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
			UPDATE webhook_replays r SET leased_until = $1::timestamptz + $2::interval FROM next, webhooks w
			WHERE r.id = next.id AND w.id = r.webhook_id
			RETURNING `+replayColumns+`, w.event_types, w.active, w.deleted_at IS NOT NULL`, now, lease)
		var err error
		c.WebhookReplay, err = scanReplay(row, &c.WebhookEventTypes, &c.WebhookActive, &deleted)
		if errors.Is(err, pgx.ErrNoRows) {
			return c, false, nil
		}
		if err != nil {
			return c, false, pg.Internal("claim webhook replay", err)
		}
		if !deleted {
			return c, true, nil
		}
		if err := s.AdvanceReplay(ctx, c.ID, c.Cursor, 0, true, now); err != nil {
			return c, false, err
		}
	}
}

// AdvanceReplay records that a replay's deliveries up to the event at
// cursor are recorded (enqueued more of them), and, when done, that all
// are (status enqueued), and releases the replay's lease, so the next
// claim may take it or another replay. Errors are EInternal.
func (s *Store) AdvanceReplay(ctx context.Context, id uuid.UUID, cursor helpdeskflow.Position, enqueued int, done bool, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE webhook_replays SET cursor_tx = $2::text::bigint, cursor_seq = $3, enqueued = enqueued + $4,
			status = CASE WHEN $5 THEN 'enqueued' ELSE status END, enqueued_at = CASE WHEN $5 THEN $6::timestamptz END,
			leased_until = NULL
		WHERE id = $1 AND status = 'enqueueing'`, id, strconv.FormatUint(cursor.TxID, 10), cursor.Seq, enqueued, done, now)
	if err != nil {
		return pg.Internal("advance webhook replay", err)
	}
	return nil
}
