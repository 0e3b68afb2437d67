package access

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Tx is one access command's transaction.
type Tx interface {
	// Append adds events at expectedVersion (0 creates the stream) and
	// returns the new version; EVersionConflict when the stream moved.
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
	// LockStream locks a stream row until commit and returns its version;
	// ENotFound when it is not a stream of that workspace and type.
	LockStream(ctx context.Context, ref helpdeskflow.StreamRef) (int64, error)
	// CreateWorkspace records a workspace.
	CreateWorkspace(ctx context.Context, id uuid.UUID, name string) error
	// CreateAPIKey stores a key's hash.
	CreateAPIKey(ctx context.Context, key helpdeskflow.APIKey, secret string) error
	// RevokeAPIKey revokes an active key of the workspace; ENotFound
	// otherwise. The transaction returns only once no API process still
	// accepts the key.
	RevokeAPIKey(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.APIKey, error)
	// ActiveAdminKeys counts the workspace's active admin keys.
	ActiveAdminKeys(ctx context.Context, workspaceID uuid.UUID) (int, error)
	// WorkspaceSettings reads the workspace's access settings.
	WorkspaceSettings(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error)
	// SetWorkspaceSettings replaces them; like RevokeAPIKey, effective on
	// every API process when the transaction returns.
	SetWorkspaceSettings(ctx context.Context, workspaceID uuid.UUID, s helpdeskflow.WorkspaceSettings) error
}

// Store is storage as access commands use it (see commands/postgres).
type Store interface {
	// Transact runs fn in one transaction, committing when it returns nil.
	Transact(ctx context.Context, fn func(tx Tx) error) error
}

// fieldNamingStore gives every transaction an Append whose size refusal
// names the request field (commands.NameTooLarge).
type fieldNamingStore struct{ Store }

func (s fieldNamingStore) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return s.Store.Transact(ctx, func(tx Tx) error { return fn(fieldNamingTx{tx}) })
}

type fieldNamingTx struct{ Tx }

func (t fieldNamingTx) Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error) {
	return commands.NameTooLarge(t.Tx.Append(ctx, ref, expectedVersion, md, events))
}
