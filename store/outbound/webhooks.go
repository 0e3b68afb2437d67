package outbound

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

const webhookColumns = `id, workspace_id, url, event_types, active, previous_secret_until, dropped_deliveries, created_at, updated_at`

func scanWebhook(row pgx.Row) (helpdeskflow.Webhook, error) {
	var w helpdeskflow.Webhook
	err := row.Scan(&w.ID, &w.WorkspaceID, &w.URL, &w.EventTypes, &w.Active, &w.PreviousSecretUntil, &w.DroppedDeliveries, &w.CreatedAt, &w.UpdatedAt)
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	if w.PreviousSecretUntil != nil {
		u := w.PreviousSecretUntil.UTC()
		w.PreviousSecretUntil = &u
	}
	return w, err
}

// CreateWebhook stores a subscription with its sealed secret (sent with
// the next statement or the commit).
func (t *Tx) CreateWebhook(ctx context.Context, w helpdeskflow.Webhook, sealedSecret []byte) {
	t.tx.Defer(`INSERT INTO webhooks (id, workspace_id, url, event_types, active, secret, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, w.ID, w.WorkspaceID, w.URL, w.EventTypes, w.Active, sealedSecret, w.CreatedAt)
}

// LockWebhook locks a live webhook of the workspace until commit and
// returns it; ENotFound for an unknown or deleted one.
func (t *Tx) LockWebhook(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Webhook, helpdeskflow.WebhookSecrets, error) {
	var w helpdeskflow.Webhook
	var s helpdeskflow.WebhookSecrets
	err := t.tx.QueryRow(ctx, `SELECT `+webhookColumns+`, secret, previous_secret FROM webhooks
		WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, workspaceID).
		Scan(&w.ID, &w.WorkspaceID, &w.URL, &w.EventTypes, &w.Active, &w.PreviousSecretUntil, &w.DroppedDeliveries, &w.CreatedAt, &w.UpdatedAt, &s.Current, &s.Previous)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, s, helpdeskflow.Errorf(helpdeskflow.ENotFound, "webhook %s not found", id)
	}
	if err != nil {
		return w, s, pg.Internal("lock webhook", err)
	}
	s.PreviousSecretUntil = w.PreviousSecretUntil
	return w, s, nil
}

// RotateWebhookSecret makes sealed the webhook's secret, keeping the
// current one as the previous secret until until (next statement).
func (t *Tx) RotateWebhookSecret(ctx context.Context, id uuid.UUID, sealed []byte, until, now time.Time) {
	t.tx.Defer(`UPDATE webhooks SET previous_secret = secret, previous_secret_until = $3, secret = $2, updated_at = $4 WHERE id = $1`,
		id, sealed, until, now)
}

// UpdateWebhook changes a webhook's url, event types and active flag
// (next statement).
func (t *Tx) UpdateWebhook(ctx context.Context, w helpdeskflow.Webhook) {
	t.tx.Defer(`UPDATE webhooks SET url = $2, event_types = $3, active = $4, updated_at = $5 WHERE id = $1`,
		w.ID, w.URL, w.EventTypes, w.Active, w.UpdatedAt)
}

// DeleteWebhook marks a webhook deleted and cancels its pending
// deliveries (next statement): they are never attempted, and claims skip
// the webhook. Lock the webhook first (LockWebhook): deliveries recorded
// or finished concurrently wait for the commit, then see the deletion (see
// EnqueueDeliveries and FinishAttempts).
func (t *Tx) DeleteWebhook(ctx context.Context, id uuid.UUID, now time.Time) {
	t.tx.Defer(`WITH gone AS (UPDATE webhooks SET deleted_at = $2, active = false, updated_at = $2 WHERE id = $1 RETURNING id)
		UPDATE webhook_deliveries SET status = 'cancelled', head = false, next_attempt_at = NULL, updated_at = $2
		WHERE webhook_id IN (SELECT id FROM gone) AND status = 'pending'`, id, now)
}

// Webhook returns a live webhook of the workspace; ENotFound otherwise.
func (s *Store) Webhook(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks
		WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL`, id, workspaceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return w, helpdeskflow.Errorf(helpdeskflow.ENotFound, "webhook %s not found", id)
	}
	if err != nil {
		return w, pg.Internal("read webhook", err)
	}
	return w, nil
}

// Webhooks lists the workspace's live webhooks, oldest first, after the
// webhook id after (uuid.Nil: from the start), at most limit.
func (s *Store) Webhooks(ctx context.Context, workspaceID, after uuid.UUID, limit int) ([]helpdeskflow.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks w
		WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2 = '00000000-0000-0000-0000-000000000000'::uuid
			OR (created_at, id) > (SELECT created_at, id FROM webhooks WHERE id = $2))
		ORDER BY created_at, id LIMIT $3`, workspaceID, after, limit)
	if err != nil {
		return nil, pg.Internal("list webhooks", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, pg.Internal("list webhooks", err)
	}
	return out, nil
}

// LiveWebhooks returns the webhooks, active or paused, of each of
// workspaceIDs that has any, for matching events (a paused webhook's
// deliveries are recorded and held), in one query (workspaces without one
// are left out of the map). Errors are EInternal.
func (s *Store) LiveWebhooks(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID][]helpdeskflow.Webhook, error) {
	out := map[uuid.UUID][]helpdeskflow.Webhook{}
	if len(workspaceIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks
		WHERE workspace_id = ANY($1) AND deleted_at IS NULL ORDER BY created_at, id`, workspaceIDs)
	if err != nil {
		return nil, pg.Internal("read webhooks", err)
	}
	hooks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, pg.Internal("read webhooks", err)
	}
	for _, w := range hooks {
		out[w.WorkspaceID] = append(out[w.WorkspaceID], w)
	}
	return out, nil
}

// CountWebhooks counts the workspace's live webhooks, locking the
// workspace's webhook creation until commit (so a limit holds under
// concurrent creates).
func (t *Tx) CountWebhooks(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || $1::text, 0))`, workspaceID); err != nil {
		return 0, pg.Internal("lock webhooks", err)
	}
	// A new statement: its snapshot includes what the lock's previous
	// holder committed.
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE workspace_id = $1 AND deleted_at IS NULL`, workspaceID).Scan(&n); err != nil {
		return 0, pg.Internal("count webhooks", err)
	}
	return n, nil
}
