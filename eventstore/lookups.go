package eventstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
)

// ReserveCustomerEmail makes candidate the customer of the normalized email
// in workspace, unless another customer already holds it. It returns the
// customer id that holds the email and whether the reservation is new (so
// the caller must create that customer's stream in this transaction). A
// concurrent transaction reserving the same email makes this one wait for
// it to end, so exactly one customer is ever created per email.
func (t *Tx) ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (uuid.UUID, bool, error) {
	// The common cases take one round trip: the reservation is new, or an
	// earlier committed one is visible to this statement's snapshot.
	var holder uuid.UUID
	var created bool
	err := t.queryRow(ctx, `WITH reserved AS (
			INSERT INTO customer_emails (workspace_id, email, customer_id) VALUES ($1, $2, $3)
			ON CONFLICT (workspace_id, email) DO NOTHING RETURNING customer_id)
		SELECT customer_id, true FROM reserved
		UNION ALL
		SELECT customer_id, false FROM customer_emails WHERE workspace_id = $1 AND email = $2
		LIMIT 1`, workspaceID, email, candidate).Scan(&holder, &created)
	if err == nil {
		return holder, created, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, internal("reserve customer email", err)
	}
	// A concurrent transaction committed the reservation after this
	// statement's snapshot was taken; a new statement sees it.
	err = t.queryRow(ctx, `SELECT customer_id FROM customer_emails WHERE workspace_id = $1 AND email = $2`,
		workspaceID, email).Scan(&holder)
	if err != nil {
		return uuid.Nil, false, internal("read customer email", err)
	}
	return holder, false, nil
}

// CreateWorkspace records a new workspace row.
func (t *Tx) CreateWorkspace(ctx context.Context, id uuid.UUID, name string) error {
	if _, err := t.exec(ctx, `INSERT INTO workspaces (id, name) VALUES ($1, $2)`, id, name); err != nil {
		return internal("create workspace", err)
	}
	return nil
}

// CreateAPIKey stores the hash of secret as a key of workspace with role.
// The secret itself is never stored.
func (t *Tx) CreateAPIKey(ctx context.Context, key helpdeskflow.APIKey, secret string) error {
	hash := sha256.Sum256([]byte(secret))
	if _, err := t.exec(ctx, `INSERT INTO api_keys (id, workspace_id, hash, prefix, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		key.ID, key.WorkspaceID, hash[:], key.Prefix, key.Role, key.CreatedAt); err != nil {
		return internal("create API key", err)
	}
	return nil
}

// Authenticate returns the principal of the API key secret. It returns
// EUnauthorized for an unknown or revoked key; the caller has already
// checked the key's format.
func (s *Store) Authenticate(ctx context.Context, secret string) (helpdeskflow.Principal, error) {
	hash := sha256.Sum256([]byte(secret))
	var p helpdeskflow.Principal
	err := s.pool.QueryRow(ctx, `SELECT id, workspace_id, role FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash[:]).
		Scan(&p.KeyID, &p.WorkspaceID, &p.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.Principal{}, helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "the API key is unknown or revoked")
	}
	if err != nil {
		return helpdeskflow.Principal{}, internal("look up API key", err)
	}
	return p, nil
}

// TouchAPIKeys records that the given keys were used at time at. It is
// called in batches, off the request path.
func (s *Store) TouchAPIKeys(ctx context.Context, keyIDs []uuid.UUID, at time.Time) error {
	if len(keyIDs) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = ANY($1) AND (last_used_at IS NULL OR last_used_at < $2)`,
		keyIDs, at); err != nil {
		return internal("record API key use", err)
	}
	return nil
}
