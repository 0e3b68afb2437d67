package access

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// MaxAPIKeyNameLen bounds API key names, in characters.
const MaxAPIKeyNameLen = 200

// CreateAPIKey is the body of POST /v1/api-keys.
type CreateAPIKey struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

// Validate checks the role and name, returning all problems at once as
// EValidation, and cleans the name (CleanLine, trimmed).
func (cmd *CreateAPIKey) Validate() error {
	var p commands.Problems
	p.Text("role", cmd.Role, true, 20)
	if cmd.Role != "" {
		p.OneOf("role", cmd.Role, helpdeskflow.RoleAdmin, helpdeskflow.RoleAgent)
	}
	cmd.Name = p.Line("name", cmd.Name, false, MaxAPIKeyNameLen)
	return p.Err()
}

// CreateAPIKey creates a key of the workspace and records api_key.created on
// the workspace's stream. The returned Secret is shown once and never
// stored. It returns EValidation for a missing or unknown role or a too long
// name, ENotFound for an unknown workspace.
func (s *Service) CreateAPIKey(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID, cmd CreateAPIKey) (NewKey, error) {
	if err := cmd.Validate(); err != nil {
		return NewKey{}, err
	}
	key, event, err := newAPIKey(workspaceID, cmd.Role, cmd.Name)
	if err != nil {
		return NewKey{}, err
	}
	err = s.store.Transact(ctx, func(tx Tx) error {
		ref := commands.WorkspaceRef(workspaceID)
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		if err := tx.CreateAPIKey(ctx, key.APIKey, key.Secret); err != nil {
			return err
		}
		_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{event})
		return err
	})
	if err != nil {
		return NewKey{}, err
	}
	return key, nil
}

// RevokeAPIKey revokes key id of the workspace and records api_key.revoked.
// When it returns, no API process accepts the key any more. It returns
// ENotFound for an unknown or already revoked key, and EConflict for the
// workspace's last active admin key (create another admin key first, so
// the workspace is never locked out).
func (s *Service) RevokeAPIKey(ctx context.Context, md helpdeskflow.Metadata, workspaceID, id uuid.UUID) (helpdeskflow.APIKey, error) {
	var revoked helpdeskflow.APIKey
	err := s.store.Transact(ctx, func(tx Tx) error {
		ref := commands.WorkspaceRef(workspaceID)
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		if revoked, err = tx.RevokeAPIKey(ctx, workspaceID, id); err != nil {
			return err
		}
		if revoked.Role == helpdeskflow.RoleAdmin {
			n, err := tx.ActiveAdminKeys(ctx, workspaceID)
			if err != nil {
				return err
			}
			if n == 0 {
				return helpdeskflow.Errorf(helpdeskflow.EConflict,
					"API key %s is the workspace's last admin key; create another admin key before revoking it", id)
			}
		}
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventAPIKeyRevoked, helpdeskflow.APIKeyRevoked{
			KeyID: revoked.ID, Role: revoked.Role, Prefix: revoked.Prefix,
		})
		if err != nil {
			return err
		}
		_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e})
		return err
	})
	if err != nil {
		return helpdeskflow.APIKey{}, err
	}
	return revoked, nil
}
