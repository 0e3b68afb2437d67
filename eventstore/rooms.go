package eventstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
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
