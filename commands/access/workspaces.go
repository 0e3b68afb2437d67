package access

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// MaxWorkspaceNameLen bounds workspace names, in characters.
const MaxWorkspaceNameLen = 200

// NewKey is a freshly created API key: Secret is shown once and never
// stored.
type NewKey struct {
	helpdeskflow.APIKey
	Secret string
}

// CreateWorkspace creates a workspace and its first admin API key, appending
// workspace.created and api_key.created to the workspace's stream (whose id
// is the workspace id). It returns EValidation for an empty or too long name.
func (s *Service) CreateWorkspace(ctx context.Context, md helpdeskflow.Metadata, name string) (uuid.UUID, NewKey, error) {
	name = strings.TrimSpace(name)
	var p commands.Problems
	p.Text("name", name, true, MaxWorkspaceNameLen)
	if err := p.Err(); err != nil {
		return uuid.Nil, NewKey{}, err
	}
	workspaceID := uuid.New()
	key, keyEvent, err := newAPIKey(workspaceID, helpdeskflow.RoleAdmin, "")
	if err != nil {
		return uuid.Nil, NewKey{}, err
	}
	created, err := helpdeskflow.NewEventOf(helpdeskflow.EventWorkspaceCreated, helpdeskflow.WorkspaceCreated{Name: name})
	if err != nil {
		return uuid.Nil, NewKey{}, err
	}
	err = s.store.Transact(ctx, func(tx Tx) error {
		if err := tx.CreateWorkspace(ctx, workspaceID, name); err != nil {
			return err
		}
		if err := tx.CreateAPIKey(ctx, key.APIKey, key.Secret); err != nil {
			return err
		}
		ref := helpdeskflow.StreamRef{ID: workspaceID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamWorkspace}
		_, err := tx.Append(ctx, ref, 0, md, []helpdeskflow.NewEvent{created, keyEvent})
		return err
	})
	if err != nil {
		return uuid.Nil, NewKey{}, err
	}
	return workspaceID, key, nil
}

// newAPIKey makes a key for workspace with role and the event recording it.
func newAPIKey(workspaceID uuid.UUID, role, name string) (NewKey, helpdeskflow.NewEvent, error) {
	secret, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		return NewKey{}, helpdeskflow.NewEvent{}, err
	}
	key := NewKey{
		APIKey: helpdeskflow.APIKey{
			ID: uuid.New(), WorkspaceID: workspaceID, Role: role, Name: name,
			Prefix: helpdeskflow.APIKeyDisplayPrefix(secret), CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		},
		Secret: secret,
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventAPIKeyCreated, helpdeskflow.APIKeyCreated{
		KeyID: key.ID, Role: key.Role, Prefix: key.Prefix, Name: key.Name,
	})
	return key, e, err
}
