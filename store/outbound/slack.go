package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// PutSlackIntegration connects (or reconnects) the workspace's Slack with
// a sealed token, active, from in.ConnectionID's OAuth install or pasted
// (uuid.Nil) (next statement).
func (t *Tx) PutSlackIntegration(ctx context.Context, in helpdeskflow.SlackIntegration, sealedToken []byte) error {
	channels, err := json.Marshal(in.Channels)
	if err != nil {
		return pg.Internal("encode Slack channels", err)
	}
	var connectionID *uuid.UUID
	if in.ConnectionID != uuid.Nil {
		connectionID = &in.ConnectionID
	}
	t.tx.Defer(`INSERT INTO slack_integrations (workspace_id, token, channels, status, team_id, team, last_error, connected_at, updated_at, connection_id)
		VALUES ($1, $2, $3, $4, $5, $6, '', $7, $7, $8)
		ON CONFLICT (workspace_id) DO UPDATE SET token = excluded.token, channels = excluded.channels, status = excluded.status,
			team_id = excluded.team_id, team = excluded.team, last_error = '', connected_at = excluded.connected_at, updated_at = excluded.updated_at,
			connection_id = excluded.connection_id`,
		in.WorkspaceID, sealedToken, channels, in.Status, in.TeamID, in.Team, in.ConnectedAt, connectionID)
	return nil
}

// LockSlackIntegration locks the workspace's Slack connection until commit
// and returns it with its sealed token; ENotFound when not connected.
func (t *Tx) LockSlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error) {
	return scanSlack(t.tx.QueryRow(ctx, `SELECT `+slackColumns+` FROM slack_integrations WHERE workspace_id = $1 FOR UPDATE`, workspaceID))
}

// SetSlackStatus records whether Slack accepts the token, and why not
// (next statement). An OAuth-installed integration's connection takes the
// same status (active or needs_revalidation) and error, with the class
// Slack's answer, so GET /v1/integrations shows one state on both.
func (t *Tx) SetSlackStatus(ctx context.Context, workspaceID uuid.UUID, status, lastError string, now time.Time) {
	t.tx.Defer(`WITH slack AS (
			UPDATE slack_integrations SET status = $2, last_error = $3, updated_at = $4 WHERE workspace_id = $1 RETURNING connection_id)
		UPDATE integration_connections SET status = $2, last_error_class = $3, last_error = $3,
			last_error_at = CASE WHEN $3 = '' THEN last_error_at ELSE $4 END, next_retry_at = NULL, updated_at = $4
		WHERE id = (SELECT connection_id FROM slack)`,
		workspaceID, status, lastError, now)
}

// DeleteSlackIntegration disconnects Slack, and the OAuth connection its
// token came from, if any (next statement).
func (t *Tx) DeleteSlackIntegration(ctx context.Context, workspaceID uuid.UUID) {
	t.tx.Defer(`WITH slack AS (DELETE FROM slack_integrations WHERE workspace_id = $1 RETURNING connection_id)
		DELETE FROM integration_connections WHERE id = (SELECT connection_id FROM slack)`, workspaceID)
}

const slackColumns = `workspace_id, channels, status, team_id, team, last_error, connected_at, updated_at, token, connection_id`

func scanSlack(row pgx.Row) (helpdeskflow.SlackIntegration, []byte, error) {
	var in helpdeskflow.SlackIntegration
	var channels, token []byte
	var connectionID *uuid.UUID
	err := row.Scan(&in.WorkspaceID, &channels, &in.Status, &in.TeamID, &in.Team, &in.LastError, &in.ConnectedAt, &in.UpdatedAt, &token, &connectionID)
	if connectionID != nil {
		in.ConnectionID = *connectionID
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return in, nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "Slack is not connected to this workspace")
	}
	if err != nil {
		return in, nil, pg.Internal("read Slack integration", err)
	}
	if err := json.Unmarshal(channels, &in.Channels); err != nil {
		return in, nil, pg.Internal("decode Slack channels", err)
	}
	in.ConnectedAt, in.UpdatedAt = in.ConnectedAt.UTC(), in.UpdatedAt.UTC()
	return in, token, nil
}

// SlackIntegration returns the workspace's Slack connection and its sealed
// token; ENotFound when not connected.
func (s *Store) SlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error) {
	return scanSlack(s.pool.QueryRow(ctx, `SELECT `+slackColumns+` FROM slack_integrations WHERE workspace_id = $1`, workspaceID))
}

// SlackIntegrations returns the Slack connection of each of workspaceIDs
// that has one, without tokens, in one query (workspaces without one are
// left out of the map). Errors are EInternal.
func (s *Store) SlackIntegrations(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID]helpdeskflow.SlackIntegration, error) {
	out := map[uuid.UUID]helpdeskflow.SlackIntegration{}
	if len(workspaceIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+slackColumns+` FROM slack_integrations WHERE workspace_id = ANY($1)`, workspaceIDs)
	if err != nil {
		return nil, pg.Internal("read Slack integrations", err)
	}
	defer rows.Close()
	for rows.Next() {
		in, _, err := scanSlack(rows)
		if err != nil {
			return nil, err
		}
		out[in.WorkspaceID] = in
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("read Slack integrations", err)
	}
	return out, nil
}

// SlackNotified reports whether the event's notification of that kind was
// already decided (posted, skipped or failed).
func (s *Store) SlackNotified(ctx context.Context, eventID uuid.UUID, kind string) (bool, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM slack_notifications WHERE event_id = $1 AND kind = $2`, eventID, kind).Scan(&n); err != nil {
		return false, pg.Internal("read Slack notifications", err)
	}
	return n > 0, nil
}

// RecordSlackNotification logs a decision (once per event and kind).
func (s *Store) RecordSlackNotification(ctx context.Context, n helpdeskflow.SlackNotification) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO slack_notifications (event_id, kind, workspace_id, ticket_id, channel, status, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id, kind) DO NOTHING`,
		n.EventID, n.Kind, n.WorkspaceID, n.TicketID, n.Channel, n.Status, n.Error)
	if err != nil {
		return pg.Internal("record Slack notification", err)
	}
	return nil
}

// SlackNotifications lists the workspace's notification log, newest
// first, optionally of one status.
func (s *Store) SlackNotifications(ctx context.Context, workspaceID uuid.UUID, status string, limit int) ([]helpdeskflow.SlackNotification, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, workspace_id, ticket_id, kind, channel, status, error, created_at
		FROM slack_notifications WHERE workspace_id = $1 AND ($2 = '' OR status = $2) ORDER BY created_at DESC LIMIT $3`, workspaceID, status, limit)
	if err != nil {
		return nil, pg.Internal("list Slack notifications", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.SlackNotification, error) {
		var n helpdeskflow.SlackNotification
		err := r.Scan(&n.EventID, &n.WorkspaceID, &n.TicketID, &n.Kind, &n.Channel, &n.Status, &n.Error, &n.CreatedAt)
		n.CreatedAt = n.CreatedAt.UTC()
		return n, err
	})
	if err != nil {
		return nil, pg.Internal("list Slack notifications", err)
	}
	return out, nil
}
