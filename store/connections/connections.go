package connections

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
	t.tx.Defer(`INSERT INTO integration_connections (id, workspace_id, provider, status, account, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, c.ID, c.WorkspaceID, c.Provider, c.Status, c.Account, c.CreatedAt)
}

// tokenColumns are a connection's tokens with their version and refresh
// lease, read by scanConnectionTokens.
const tokenColumns = `access_token, refresh_token, token_version, refresh_lease_token, refresh_lease_until`

// scanConnectionTokens scans connectionColumns followed by tokenColumns.
func scanConnectionTokens(row pgx.Row) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error) {
	var tokens helpdeskflow.ConnectionTokens
	var leaseToken *uuid.UUID
	var leaseUntil *time.Time
	c, err := scanConnection(row, &tokens.Access, &tokens.Refresh, &tokens.Version, &leaseToken, &leaseUntil)
	if err != nil {
		return c, tokens, err
	}
	if leaseToken != nil && leaseUntil != nil {
		tokens.Lease = helpdeskflow.RefreshLease{Token: *leaseToken, Until: leaseUntil.UTC()}
	}
	return c, tokens, nil
}

// LockConnection locks a connection of the workspace until commit and
// returns it with its sealed tokens, their version and refresh lease;
// ENotFound otherwise. Keep the transaction short: nothing that waits on
// the network belongs in it (a token refresh takes TakeRefreshLease
// instead, and writes its outcome in a transaction of its own).
func (t *Tx) LockConnection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error) {
	c, tokens, err := scanConnectionTokens(t.tx.QueryRow(ctx, `SELECT `+connectionColumns+`, `+tokenColumns+` FROM integration_connections
		WHERE id = $1 AND workspace_id = $2 FOR UPDATE`, id, workspaceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, tokens, helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %s not found", id)
	}
	if err != nil {
		return c, tokens, pg.Internal("lock connection", err)
	}
	return c, tokens, nil
}

// StoreTokens stores a connection's new tokens and what came with them,
// making it active, clearing its last error and counting a new token
// version (next statement). A nil refresh token keeps the stored one, so
// a rotated refresh token is replaced in the same statement as the access
// token, or not at all.
func (t *Tx) StoreTokens(ctx context.Context, c helpdeskflow.Connection, tokens helpdeskflow.ConnectionTokens, now time.Time) error {
	details, err := json.Marshal(c.Details)
	if err != nil {
		return pg.Internal("encode connection details", err)
	}
	t.tx.Defer(`UPDATE integration_connections SET status = 'active', account = $2, access_token = $3,
			refresh_token = coalesce($4, refresh_token), token_expiry = $5, scopes = $6, details = $7,
			last_error = '', last_error_class = '', next_retry_at = NULL, updated_at = $8,
			token_version = token_version + 1
		WHERE id = $1`, c.ID, c.Account, tokens.Access, tokens.Refresh, c.TokenExpiry, c.Scopes, details, now)
	return nil
}

// EndRefreshLease ends a connection's refresh lease if it is still the
// one whose token is given (next statement); a lease another process took
// over stays.
func (t *Tx) EndRefreshLease(ctx context.Context, id, leaseToken uuid.UUID) {
	t.tx.Defer(`UPDATE integration_connections SET refresh_lease_token = NULL, refresh_lease_until = NULL
		WHERE id = $1 AND refresh_lease_token = $2`, id, leaseToken)
}

// ConnectionTokens returns a connection of the workspace with its sealed
// tokens, their version and refresh lease, as one read outside any
// transaction (nothing is locked); ENotFound otherwise.
func (s *Store) ConnectionTokens(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error) {
	c, tokens, err := scanConnectionTokens(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+`, `+tokenColumns+` FROM integration_connections
		WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, tokens, helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %s not found", id)
	}
	if err != nil {
		return c, tokens, pg.Internal("read connection tokens", err)
	}
	return c, tokens, nil
}

// TakeRefreshLease claims the refresh of active connection id with lease,
// in one statement (no transaction stays open), if its tokens are still
// at version and no lease is live at now (none, or one that ran out: its
// process died or stalled). It reports whether the lease was taken; false
// means another process holds it, or the tokens or the status changed
// since they were read. Leases are kept to the microsecond, as Postgres
// keeps them.
func (s *Store) TakeRefreshLease(ctx context.Context, id uuid.UUID, version int64, lease helpdeskflow.RefreshLease, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE integration_connections SET refresh_lease_token = $3, refresh_lease_until = $4
		WHERE id = $1 AND token_version = $2 AND status = 'active' AND coalesce(refresh_lease_until, '-infinity') <= $5`,
		id, version, lease.Token, lease.Until.Truncate(time.Microsecond), now)
	if err != nil {
		return false, pg.Internal("take a refresh lease", err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetConnectionStatus records a connection's status and last error, and
// when to try again after a temporary failure (next statement).
func (t *Tx) SetConnectionStatus(ctx context.Context, id uuid.UUID, status, errorClass, message string, nextRetry *time.Time, now time.Time) {
	t.tx.Defer(`UPDATE integration_connections SET status = $2, last_error_class = $3, last_error = $4,
			last_error_at = CASE WHEN $4 = '' THEN last_error_at ELSE $6 END, next_retry_at = $5, updated_at = $6
		WHERE id = $1`, id, status, errorClass, message, nextRetry, now)
}

// ResumeSync makes a connection's mailbox due now, with no failures
// counted, after a reconnect (next statement). Its cursor is kept, so the
// sync resumes where it stopped.
func (t *Tx) ResumeSync(ctx context.Context, id uuid.UUID) {
	t.tx.Defer(`UPDATE integration_connections SET next_sync_at = NULL, sync_failures = 0 WHERE id = $1`, id)
}

// DeleteConnection forgets a connection and its tokens (next statement).
func (t *Tx) DeleteConnection(ctx context.Context, id uuid.UUID) {
	t.tx.Defer(`DELETE FROM integration_connections WHERE id = $1`, id)
}

// Connection returns a connection of the workspace; ENotFound otherwise.
func (s *Store) Connection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM integration_connections
		WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %s not found", id)
	}
	if err != nil {
		return c, pg.Internal("read connection", err)
	}
	return c, nil
}

// Connections lists the workspace's connections, oldest first.
func (s *Store) Connections(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Connection, error) {
	all, err := s.ConnectionsIn(ctx, []uuid.UUID{workspaceID})
	if err != nil {
		return nil, err
	}
	if all[workspaceID] == nil {
		return []helpdeskflow.Connection{}, nil
	}
	return all[workspaceID], nil
}

// ConnectionsIn lists the connections of each of workspaceIDs that has
// any, oldest first, in one query (workspaces without one are left out of
// the map). Errors are EInternal.
func (s *Store) ConnectionsIn(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID][]helpdeskflow.Connection, error) {
	out := map[uuid.UUID][]helpdeskflow.Connection{}
	if len(workspaceIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+connectionColumns+` FROM integration_connections
		WHERE workspace_id = ANY($1) ORDER BY created_at, id`, workspaceIDs)
	if err != nil {
		return nil, pg.Internal("list connections", err)
	}
	conns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.Connection, error) { return scanConnection(r) })
	if err != nil {
		return nil, pg.Internal("list connections", err)
	}
	for _, c := range conns {
		out[c.WorkspaceID] = append(out[c.WorkspaceID], c)
	}
	return out, nil
}
