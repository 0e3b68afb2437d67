package eventstore

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/lookups"
	"github.com/helpdeskflow/helpdeskflow/store/mail"
	"github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
	"github.com/helpdeskflow/helpdeskflow/store/rules"
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

// CreateWebhook is outbound.Tx.CreateWebhook.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) CreateWebhook(ctx context.Context, w helpdeskflow.Webhook, sealedSecret []byte) {
	outbound.In(t.tx).CreateWebhook(ctx, w, sealedSecret)
}

// LockWebhook is outbound.Tx.LockWebhook.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) LockWebhook(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Webhook, helpdeskflow.WebhookSecrets, error) {
	return outbound.In(t.tx).LockWebhook(ctx, workspaceID, id)
}

// RotateWebhookSecret is outbound.Tx.RotateWebhookSecret.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) RotateWebhookSecret(ctx context.Context, id uuid.UUID, sealed []byte, until, now time.Time) {
	outbound.In(t.tx).RotateWebhookSecret(ctx, id, sealed, until, now)
}

// UpdateWebhook is outbound.Tx.UpdateWebhook.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) UpdateWebhook(ctx context.Context, w helpdeskflow.Webhook) {
	outbound.In(t.tx).UpdateWebhook(ctx, w)
}

// DeleteWebhook is outbound.Tx.DeleteWebhook.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) DeleteWebhook(ctx context.Context, id uuid.UUID, now time.Time) {
	outbound.In(t.tx).DeleteWebhook(ctx, id, now)
}

// CountWebhooks is outbound.Tx.CountWebhooks.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) CountWebhooks(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	return outbound.In(t.tx).CountWebhooks(ctx, workspaceID)
}

// PutSlackIntegration is outbound.Tx.PutSlackIntegration.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) PutSlackIntegration(ctx context.Context, in helpdeskflow.SlackIntegration, sealedToken []byte) error {
	return outbound.In(t.tx).PutSlackIntegration(ctx, in, sealedToken)
}

// LockSlackIntegration is outbound.Tx.LockSlackIntegration.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) LockSlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error) {
	return outbound.In(t.tx).LockSlackIntegration(ctx, workspaceID)
}

// SetSlackStatus is outbound.Tx.SetSlackStatus.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) SetSlackStatus(ctx context.Context, workspaceID uuid.UUID, status, lastError string, now time.Time) {
	outbound.In(t.tx).SetSlackStatus(ctx, workspaceID, status, lastError, now)
}

// DeleteSlackIntegration is outbound.Tx.DeleteSlackIntegration.
// Moves to store/outbound once commands/ is split (issue 14).
func (t *Tx) DeleteSlackIntegration(ctx context.Context, workspaceID uuid.UUID) {
	outbound.In(t.tx).DeleteSlackIntegration(ctx, workspaceID)
}

// SlackIntegration is outbound.Store.SlackIntegration.
// Moves to store/outbound once commands/ is split (issue 14).
func (s *Store) SlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error) {
	return s.outbound.SlackIntegration(ctx, workspaceID)
}

// LockRuleSet is rules.Tx.LockRuleSet.
// Moves to store/rules once commands/ is split (issue 14).
func (t *Tx) LockRuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error) {
	return rules.In(t.tx).LockRuleSet(ctx, workspaceID)
}

// PutRule is rules.Tx.PutRule.
// Moves to store/rules once commands/ is split (issue 14).
func (t *Tx) PutRule(ctx context.Context, r helpdeskflow.RuleRecord) {
	rules.In(t.tx).PutRule(ctx, r)
}

// DeleteRule is rules.Tx.DeleteRule.
// Moves to store/rules once commands/ is split (issue 14).
func (t *Tx) DeleteRule(ctx context.Context, id uuid.UUID) {
	rules.In(t.tx).DeleteRule(ctx, id)
}

// RuleSetSince is rules.Tx.RuleSetSince.
// Moves to store/rules once commands/ is split (issue 14).
func (t *Tx) RuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64) (helpdeskflow.RuleSet, error) {
	return rules.In(t.tx).RuleSetSince(ctx, workspaceID, known)
}

// RuleSet is rules.Store.RuleSet.
// Moves to store/rules once commands/ is split (issue 14).
func (s *Store) RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error) {
	return s.rules.RuleSet(ctx, workspaceID)
}

// LinkTicket is lookups.Tx.LinkTicket.
// Moves to store/lookups once commands/ is split (issue 14).
func (t *Tx) LinkTicket(ctx context.Context, workspaceID, customerID, ticketID uuid.UUID) {
	lookups.In(t.tx).LinkTicket(ctx, workspaceID, customerID, ticketID)
}

// MoveTickets is lookups.Tx.MoveTickets.
// Moves to store/lookups once commands/ is split (issue 14).
func (t *Tx) MoveTickets(ctx context.Context, from, to uuid.UUID) ([]uuid.UUID, error) {
	return lookups.In(t.tx).MoveTickets(ctx, from, to)
}

// ClaimProfiles is lookups.Tx.ClaimProfiles.
// Moves to store/lookups once commands/ is split (issue 14).
func (t *Tx) ClaimProfiles(ctx context.Context, workspaceID, customerID uuid.UUID, profiles []helpdeskflow.LinkedProfile) error {
	return lookups.In(t.tx).ClaimProfiles(ctx, workspaceID, customerID, profiles)
}

// MoveCustomerLookups is lookups.Tx.MoveCustomerLookups.
// Moves to store/lookups once commands/ is split (issue 14).
func (t *Tx) MoveCustomerLookups(ctx context.Context, from, to uuid.UUID) {
	lookups.In(t.tx).MoveCustomerLookups(ctx, from, to)
}

// ChangeCustomerEmail is lookups.Tx.ChangeCustomerEmail.
// Moves to store/lookups once commands/ is split (issue 14).
func (t *Tx) ChangeCustomerEmail(ctx context.Context, workspaceID, customerID uuid.UUID, old, new string) (uuid.UUID, error) {
	return lookups.In(t.tx).ChangeCustomerEmail(ctx, workspaceID, customerID, old, new)
}

// CustomerTickets is lookups.Store.CustomerTickets.
// Moves to store/lookups once commands/ is split (issue 14).
func (s *Store) CustomerTickets(ctx context.Context, customerID uuid.UUID) ([]uuid.UUID, error) {
	return s.lookups.CustomerTickets(ctx, customerID)
}

// CustomerByEmail is lookups.Store.CustomerByEmail.
// Moves to store/lookups once commands/ is split (issue 14).
func (s *Store) CustomerByEmail(ctx context.Context, workspaceID uuid.UUID, email string) (uuid.UUID, error) {
	return s.lookups.CustomerByEmail(ctx, workspaceID, email)
}

// CustomerByProfile is lookups.Store.CustomerByProfile.
// Moves to store/lookups once commands/ is split (issue 14).
func (s *Store) CustomerByProfile(ctx context.Context, workspaceID uuid.UUID, provider, externalID string) (uuid.UUID, error) {
	return s.lookups.CustomerByProfile(ctx, workspaceID, provider, externalID)
}

// ScheduleSLA is queues.Tx.ScheduleSLA.
// Moves to store/queues once commands/ is split (issue 14).
func (t *Tx) ScheduleSLA(ctx context.Context, workspaceID, ticketID, policyID uuid.UUID, dueAt *time.Time) {
	queues.In(t.tx).ScheduleSLA(ctx, workspaceID, ticketID, policyID, dueAt)
}

// UnscheduleSLA is queues.Tx.UnscheduleSLA.
// Moves to store/queues once commands/ is split (issue 14).
func (t *Tx) UnscheduleSLA(ctx context.Context, ticketID uuid.UUID) {
	queues.In(t.tx).UnscheduleSLA(ctx, ticketID)
}

// RecheckSLAPolicy is queues.Tx.RecheckSLAPolicy.
// Moves to store/queues once commands/ is split (issue 14).
func (t *Tx) RecheckSLAPolicy(ctx context.Context, workspaceID, policyID uuid.UUID, now time.Time) {
	queues.In(t.tx).RecheckSLAPolicy(ctx, workspaceID, policyID, now)
}
