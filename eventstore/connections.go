package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
)

const connectionColumns = `id, workspace_id, provider, status, account, token_expiry, scopes, details, last_sync_at,
	next_sync_at, sync_state, sync_failures, last_error, last_error_class, last_error_at, next_retry_at, created_at, updated_at`

func scanConnection(row pgx.Row, extra ...any) (helpdeskflow.Connection, error) {
	var c helpdeskflow.Connection
	var details []byte
	dest := append([]any{&c.ID, &c.WorkspaceID, &c.Provider, &c.Status, &c.Account, &c.TokenExpiry, &c.Scopes, &details, &c.LastSyncAt,
		&c.NextSyncAt, &c.SyncState, &c.SyncFailures, &c.LastError, &c.LastErrorClass, &c.LastErrorAt, &c.NextRetryAt, &c.CreatedAt, &c.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return c, err
	}
	if err := json.Unmarshal(details, &c.Details); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if string(c.SyncState) == "{}" {
		c.SyncState = nil
	}
	for _, t := range []**time.Time{&c.TokenExpiry, &c.LastSyncAt, &c.NextSyncAt, &c.LastErrorAt, &c.NextRetryAt} {
		if *t != nil {
			u := (**t).UTC()
			*t = &u
		}
	}
	return c, nil
}

// CreateConnection records a new connection, pending until its OAuth
// callback (next statement).
func (t *Tx) CreateConnection(ctx context.Context, c helpdeskflow.Connection) {
	t.defer_(`INSERT INTO integration_connections (id, workspace_id, provider, status, account, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, c.ID, c.WorkspaceID, c.Provider, c.Status, c.Account, c.CreatedAt)
}

// LockConnection locks a connection of the workspace until commit and
// returns it with its sealed tokens; ENotFound otherwise. Refreshes take
// this lock, so at most one runs per connection at a time.
func (t *Tx) LockConnection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error) {
	var tokens helpdeskflow.ConnectionTokens
	c, err := scanConnection(t.queryRow(ctx, `SELECT `+connectionColumns+`, access_token, refresh_token FROM integration_connections
		WHERE id = $1 AND workspace_id = $2 FOR UPDATE`, id, workspaceID), &tokens.Access, &tokens.Refresh)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, tokens, helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %s not found", id)
	}
	if err != nil {
		return c, tokens, internal("lock connection", err)
	}
	return c, tokens, nil
}

// StoreTokens stores a connection's new tokens and what came with them,
// making it active and clearing its last error (next statement). A nil
// refresh token keeps the stored one, so a rotated refresh token is
// replaced in the same statement as the access token, or not at all.
func (t *Tx) StoreTokens(ctx context.Context, c helpdeskflow.Connection, tokens helpdeskflow.ConnectionTokens, now time.Time) error {
	details, err := json.Marshal(c.Details)
	if err != nil {
		return internal("encode connection details", err)
	}
	t.defer_(`UPDATE integration_connections SET status = 'active', account = $2, access_token = $3,
			refresh_token = coalesce($4, refresh_token), token_expiry = $5, scopes = $6, details = $7,
			last_error = '', last_error_class = '', next_retry_at = NULL, updated_at = $8
		WHERE id = $1`, c.ID, c.Account, tokens.Access, tokens.Refresh, c.TokenExpiry, c.Scopes, details, now)
	return nil
}

// SetConnectionStatus records a connection's status and last error, and
// when to try again after a temporary failure (next statement).
func (t *Tx) SetConnectionStatus(ctx context.Context, id uuid.UUID, status, errorClass, message string, nextRetry *time.Time, now time.Time) {
	t.defer_(`UPDATE integration_connections SET status = $2, last_error_class = $3, last_error = $4,
			last_error_at = CASE WHEN $4 = '' THEN last_error_at ELSE $6 END, next_retry_at = $5, updated_at = $6
		WHERE id = $1`, id, status, errorClass, message, nextRetry, now)
}

// ResumeSync makes a connection's mailbox due now, with no failures
// counted, after a reconnect (next statement). Its cursor is kept, so the
// sync resumes where it stopped.
func (t *Tx) ResumeSync(ctx context.Context, id uuid.UUID) {
	t.defer_(`UPDATE integration_connections SET next_sync_at = NULL, sync_failures = 0 WHERE id = $1`, id)
}

// DeleteConnection forgets a connection and its tokens (next statement).
func (t *Tx) DeleteConnection(ctx context.Context, id uuid.UUID) {
	t.defer_(`DELETE FROM integration_connections WHERE id = $1`, id)
}

// Connection returns a connection of the workspace; ENotFound otherwise.
func (s *Store) Connection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM integration_connections
		WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %s not found", id)
	}
	if err != nil {
		return c, internal("read connection", err)
	}
	return c, nil
}

// Connections lists the workspace's connections, oldest first.
func (s *Store) Connections(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Connection, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+connectionColumns+` FROM integration_connections
		WHERE workspace_id = $1 ORDER BY created_at, id`, workspaceID)
	if err != nil {
		return nil, internal("list connections", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.Connection, error) { return scanConnection(r) })
	if err != nil {
		return nil, internal("list connections", err)
	}
	return out, nil
}
