package eventstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/mail"
)

// The methods below are the rooms' under store/ that commands/ reaches
// through the event store's transaction until it is split (issue 14):
// each passes this transaction to its room.

// LockMailbox is mail.Tx.LockMailbox.
// Moves to store/mail once commands/ is split (issue 14).
func (t *Tx) LockMailbox(ctx context.Context, connectionID uuid.UUID) error {
	return mail.In(t.tx).LockMailbox(ctx, connectionID)
}

// MailRecord is mail.Tx.MailRecord.
// Moves to store/mail once commands/ is split (issue 14).
func (t *Tx) MailRecord(ctx context.Context, connectionID uuid.UUID, externalID string) (helpdeskflow.MailRecord, bool, error) {
	return mail.In(t.tx).MailRecord(ctx, connectionID, externalID)
}

// MailThreadTicket is mail.Tx.MailThreadTicket.
// Moves to store/mail once commands/ is split (issue 14).
func (t *Tx) MailThreadTicket(ctx context.Context, workspaceID, connectionID uuid.UUID, keys []string, sender string) (ticketID uuid.UUID, found, allowed bool, err error) {
	return mail.In(t.tx).MailThreadTicket(ctx, workspaceID, connectionID, keys, sender)
}

// RecordMail is mail.Tx.RecordMail.
// Moves to store/mail once commands/ is split (issue 14).
func (t *Tx) RecordMail(ctx context.Context, r helpdeskflow.MailRecord) {
	mail.In(t.tx).RecordMail(ctx, r)
}

// QueueMailReply is mail.Tx.QueueMailReply.
// Moves to store/mail once commands/ is split (issue 14).
func (t *Tx) QueueMailReply(ctx context.Context, r helpdeskflow.MailReply) {
	mail.In(t.tx).QueueMailReply(ctx, r)
}

// CreateAPIKey is access.Tx.CreateAPIKey.
// Moves to store/access once commands/ is split (issue 14).
func (t *Tx) CreateAPIKey(ctx context.Context, key helpdeskflow.APIKey, secret string) error {
	return access.In(t.tx).CreateAPIKey(ctx, key, secret)
}

// RevokeAPIKey is access.Tx.RevokeAPIKey.
// Moves to store/access once commands/ is split (issue 14).
func (t *Tx) RevokeAPIKey(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.APIKey, error) {
	return access.In(t.tx).RevokeAPIKey(ctx, workspaceID, id)
}

// ActiveAdminKeys is access.Tx.ActiveAdminKeys.
// Moves to store/access once commands/ is split (issue 14).
func (t *Tx) ActiveAdminKeys(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	return access.In(t.tx).ActiveAdminKeys(ctx, workspaceID)
}

// WorkspaceSettings is access.Tx.WorkspaceSettings.
// Moves to store/access once commands/ is split (issue 14).
func (t *Tx) WorkspaceSettings(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error) {
	return access.In(t.tx).WorkspaceSettings(ctx, workspaceID)
}

// SetWorkspaceSettings is access.Tx.SetWorkspaceSettings.
// Moves to store/access once commands/ is split (issue 14).
func (t *Tx) SetWorkspaceSettings(ctx context.Context, workspaceID uuid.UUID, s helpdeskflow.WorkspaceSettings) error {
	return access.In(t.tx).SetWorkspaceSettings(ctx, workspaceID, s)
}

// CreateWorkspace is access.Tx.CreateWorkspace.
// Moves to store/access once commands/ is split (issue 14).
func (t *Tx) CreateWorkspace(ctx context.Context, id uuid.UUID, name string) error {
	return access.In(t.tx).CreateWorkspace(ctx, id, name)
}
