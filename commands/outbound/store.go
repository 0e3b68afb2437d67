package outbound

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Tx is one outbound command's transaction.
type Tx interface {
	// Append adds events at expectedVersion (0 creates the stream) and
	// returns the new version; EVersionConflict when the stream moved.
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
	// LockStream locks a stream row until commit and returns its version;
	// ENotFound when it is not a stream of that workspace and type.
	LockStream(ctx context.Context, ref helpdeskflow.StreamRef) (int64, error)
	// CountWebhooks counts the workspace's live webhooks; CreateWebhook
	// stores one with its sealed secret (next statement).
	CountWebhooks(ctx context.Context, workspaceID uuid.UUID) (int, error)
	CreateWebhook(ctx context.Context, w helpdeskflow.Webhook, sealedSecret []byte)
	// LockWebhook locks a live webhook until commit; ENotFound otherwise.
	LockWebhook(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Webhook, helpdeskflow.WebhookSecrets, error)
	// UpdateWebhook, RotateWebhookSecret and DeleteWebhook change it (next
	// statement).
	UpdateWebhook(ctx context.Context, w helpdeskflow.Webhook)
	RotateWebhookSecret(ctx context.Context, id uuid.UUID, sealed []byte, until, now time.Time)
	DeleteWebhook(ctx context.Context, id uuid.UUID, now time.Time)
	// PutSlackIntegration, SetSlackStatus and DeleteSlackIntegration change
	// the workspace's Slack connection (next statement); LockSlackIntegration
	// locks and reads it (ENotFound when not connected).
	PutSlackIntegration(ctx context.Context, in helpdeskflow.SlackIntegration, sealedToken []byte) error
	LockSlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error)
	SetSlackStatus(ctx context.Context, workspaceID uuid.UUID, status, lastError string, now time.Time)
	DeleteSlackIntegration(ctx context.Context, workspaceID uuid.UUID)
}

// Store is storage as outbound commands use it (see commands/postgres).
type Store interface {
	// Transact runs fn in one transaction, committing when it returns nil.
	Transact(ctx context.Context, fn func(tx Tx) error) error
	// SlackIntegration returns the Slack connection and its sealed token.
	SlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error)
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
