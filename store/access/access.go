package access

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// CreateAPIKey stores the hash of secret as a key of workspace with role.
// The secret itself is never stored.
func (t *Tx) CreateAPIKey(ctx context.Context, key helpdeskflow.APIKey, secret string) error {
	hash := sha256.Sum256([]byte(secret))
	if _, err := t.tx.Exec(ctx, `INSERT INTO api_keys (id, workspace_id, hash, prefix, role, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		key.ID, key.WorkspaceID, hash[:], key.Prefix, key.Role, key.Name, key.CreatedAt); err != nil {
		return pg.Internal("create API key", err)
	}
	return nil
}

// RevokeAPIKey marks key id of workspace revoked and returns it. It returns
// ENotFound when the workspace has no such key or it is already revoked.
// Once the transaction commits, Transact returns only after every API
// process has dropped its cached access (see Cache), so the key's
// very next request is refused everywhere.
func (t *Tx) RevokeAPIKey(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.APIKey, error) {
	keys, err := scanAPIKeys(t.tx.Query(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL
		RETURNING `+apiKeyColumns, id, workspaceID))
	if err != nil {
		return helpdeskflow.APIKey{}, err
	}
	if len(keys) == 0 {
		return helpdeskflow.APIKey{}, helpdeskflow.Errorf(helpdeskflow.ENotFound, "API key %s not found", id)
	}
	t.accessChanged()
	return keys[0], nil
}

// ActiveAdminKeys counts the workspace's keys with role admin that are not
// revoked, as this transaction sees them.
func (t *Tx) ActiveAdminKeys(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE workspace_id = $1 AND role = 'admin' AND revoked_at IS NULL`, workspaceID).Scan(&n)
	if err != nil {
		return 0, pg.Internal("count admin keys", err)
	}
	return n, nil
}

// WorkspaceSettings returns the workspace's access settings as this
// transaction sees them.
func (t *Tx) WorkspaceSettings(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error) {
	return workspaceSettings(ctx, t.tx, workspaceID)
}

// SetWorkspaceSettings replaces the workspace's access settings. Like
// RevokeAPIKey, the Transact it runs in returns only once every API process
// has dropped its cached access.
func (t *Tx) SetWorkspaceSettings(ctx context.Context, workspaceID uuid.UUID, s helpdeskflow.WorkspaceSettings) error {
	blocklist := make([]string, len(s.IPBlocklist))
	for i, p := range s.IPBlocklist {
		blocklist[i] = p.String()
	}
	limits := map[string]helpdeskflow.RateLimitSetting{}
	for c, l := range s.RateLimits {
		limits[c] = helpdeskflow.RateLimitSetting{Limit: l.Limit, WindowSeconds: int(l.Window / time.Second)}
	}
	limitsJSON, err := json.Marshal(limits)
	if err != nil {
		return pg.Internal("encode rate limits", err)
	}
	var delayMs *int
	if s.SoftThrottleDelay != nil {
		ms := int(*s.SoftThrottleDelay / time.Millisecond)
		delayMs = &ms
	}
	t.tx.Defer(`INSERT INTO workspace_settings (workspace_id, ip_blocklist, rate_limits, soft_throttle_delay_ms) VALUES ($1, $2, $3, $4)
		ON CONFLICT (workspace_id) DO UPDATE SET ip_blocklist = $2, rate_limits = $3, soft_throttle_delay_ms = $4, updated_at = now()`,
		workspaceID, blocklist, string(limitsJSON), delayMs)
	t.accessChanged()
	return nil
}

// WorkspaceSettings returns the workspace's access settings: no blocklist
// and no overrides when it never set any.
func (s *Store) WorkspaceSettings(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error) {
	return workspaceSettings(ctx, s.pool, workspaceID)
}

func workspaceSettings(ctx context.Context, q pg.Querier, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error) {
	rows, err := q.Query(ctx, `SELECT ip_blocklist, rate_limits, soft_throttle_delay_ms FROM workspace_settings WHERE workspace_id = $1`, workspaceID)
	if err != nil {
		return helpdeskflow.WorkspaceSettings{}, pg.Internal("read workspace settings", err)
	}
	defer rows.Close()
	var settings helpdeskflow.WorkspaceSettings
	for rows.Next() {
		var blocklist []string
		var limits []byte
		var delayMs *int
		if err := rows.Scan(&blocklist, &limits, &delayMs); err != nil {
			return helpdeskflow.WorkspaceSettings{}, pg.Internal("scan workspace settings", err)
		}
		if settings, err = decodeSettings(blocklist, limits, delayMs); err != nil {
			return helpdeskflow.WorkspaceSettings{}, err
		}
	}
	if err := rows.Err(); err != nil {
		return helpdeskflow.WorkspaceSettings{}, pg.Internal("read workspace settings", err)
	}
	return settings, nil
}

// decodeSettings turns a workspace_settings row into its domain form.
func decodeSettings(blocklist []string, limitsJSON []byte, delayMs *int) (helpdeskflow.WorkspaceSettings, error) {
	var s helpdeskflow.WorkspaceSettings
	for _, c := range blocklist {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return s, pg.Internal("decode IP blocklist", err)
		}
		s.IPBlocklist = append(s.IPBlocklist, p)
	}
	if len(limitsJSON) > 0 {
		var limits map[string]helpdeskflow.RateLimitSetting
		if err := json.Unmarshal(limitsJSON, &limits); err != nil {
			return s, pg.Internal("decode rate limits", err)
		}
		for c, l := range limits {
			if s.RateLimits == nil {
				s.RateLimits = map[string]helpdeskflow.RateLimit{}
			}
			s.RateLimits[c] = helpdeskflow.RateLimit{Limit: l.Limit, Window: time.Duration(l.WindowSeconds) * time.Second}
		}
	}
	if delayMs != nil {
		d := time.Duration(*delayMs) * time.Millisecond
		s.SoftThrottleDelay = &d
	}
	return s, nil
}

// Authenticate returns what the API key secret grants: its principal and
// its workspace's access settings. It returns EUnauthorized for an unknown
// or revoked key; the caller has already checked the key's format.
func (s *Store) Authenticate(ctx context.Context, secret string) (helpdeskflow.Access, error) {
	hash := sha256.Sum256([]byte(secret))
	var a helpdeskflow.Access
	var blocklist []string
	var limits []byte
	var delayMs *int
	err := s.pool.QueryRow(ctx, `SELECT k.id, k.workspace_id, k.role, coalesce(s.ip_blocklist, '{}'), coalesce(s.rate_limits, '{}'), s.soft_throttle_delay_ms
		FROM api_keys k LEFT JOIN workspace_settings s ON s.workspace_id = k.workspace_id
		WHERE k.hash = $1 AND k.revoked_at IS NULL`, hash[:]).
		Scan(&a.KeyID, &a.WorkspaceID, &a.Role, &blocklist, &limits, &delayMs)
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.Access{}, helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "the API key is unknown or revoked")
	}
	if err != nil {
		return helpdeskflow.Access{}, pg.Internal("look up API key", err)
	}
	settings, err := decodeSettings(blocklist, limits, delayMs)
	if err != nil {
		return helpdeskflow.Access{}, err
	}
	a.IPBlocklist = settings.IPBlocklist
	a.RateLimits = settings.RateLimitPolicy()
	return a, nil
}

const apiKeyColumns = `id, workspace_id, role, name, prefix, created_at, last_used_at, revoked_at`

func scanAPIKeys(rows pgx.Rows, err error) ([]helpdeskflow.APIKey, error) {
	if err != nil {
		return nil, pg.Internal("read API keys", err)
	}
	defer rows.Close()
	var keys []helpdeskflow.APIKey
	for rows.Next() {
		var k helpdeskflow.APIKey
		if err := rows.Scan(&k.ID, &k.WorkspaceID, &k.Role, &k.Name, &k.Prefix, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt); err != nil {
			return nil, pg.Internal("scan API key", err)
		}
		k.CreatedAt = k.CreatedAt.UTC()
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("read API keys", err)
	}
	return keys, nil
}

// ListAPIKeys returns up to limit (1–100) of the workspace's active keys,
// oldest first, after cursor (empty for the first page). It returns
// EValidation for a cursor it did not make.
func (s *Store) ListAPIKeys(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) (helpdeskflow.APIKeyPage, error) {
	if limit < 1 || limit > 100 {
		return helpdeskflow.APIKeyPage{}, helpdeskflow.Errorf(helpdeskflow.EValidation, "limit must be between 1 and 100")
	}
	after := time.Time{}
	afterID := uuid.Nil
	if cursor != "" {
		var err error
		if after, afterID, err = decodeKeyCursor(cursor); err != nil {
			return helpdeskflow.APIKeyPage{}, err
		}
	}
	keys, err := scanAPIKeys(s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE workspace_id = $1 AND revoked_at IS NULL AND (created_at, id) > ($2, $3)
		ORDER BY created_at, id LIMIT $4`, workspaceID, after, afterID, limit+1))
	if err != nil {
		return helpdeskflow.APIKeyPage{}, err
	}
	page := helpdeskflow.APIKeyPage{Keys: keys}
	if len(keys) > limit {
		page.Keys = keys[:limit]
		last := page.Keys[limit-1]
		page.Next = fmt.Sprintf("%d_%s", last.CreatedAt.UnixMicro(), last.ID)
	}
	return page, nil
}

func decodeKeyCursor(cursor string) (time.Time, uuid.UUID, error) {
	var micros int64
	var id string
	invalid := helpdeskflow.Errorf(helpdeskflow.EValidation, "cursor %q is not one this API returned", cursor)
	if n, err := fmt.Sscanf(cursor, "%d_%s", &micros, &id); err != nil || n != 2 {
		return time.Time{}, uuid.Nil, invalid
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return time.Time{}, uuid.Nil, invalid
	}
	return time.UnixMicro(micros).UTC(), u, nil
}

// APIKey returns key id, revoked or not, of any workspace (for the CLI,
// which names keys by id alone). It returns ENotFound for an unknown id.
func (s *Store) APIKey(ctx context.Context, id uuid.UUID) (helpdeskflow.APIKey, error) {
	keys, err := scanAPIKeys(s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`, id))
	if err != nil {
		return helpdeskflow.APIKey{}, err
	}
	if len(keys) == 0 {
		return helpdeskflow.APIKey{}, helpdeskflow.Errorf(helpdeskflow.ENotFound, "API key %s not found", id)
	}
	return keys[0], nil
}

// CreateWorkspace records a new workspace row.
func (t *Tx) CreateWorkspace(ctx context.Context, id uuid.UUID, name string) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO workspaces (id, name) VALUES ($1, $2)`, id, name); err != nil {
		return pg.Internal("create workspace", err)
	}
	return nil
}
