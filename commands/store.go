// Package commands is the write side: it validates and sanitizes commands,
// decides which events they cause and appends them under the stream locks,
// and composes consistent single-entity reads from the event store. It knows
// storage only through the interfaces declared here.
package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Tx is one command transaction in the event store.
type Tx interface {
	// Append adds events at expectedVersion (0 creates the stream) and
	// returns the new version; EVersionConflict when the stream moved.
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
	// ReserveCustomerEmail returns the customer holding a normalized email,
	// reserving it for candidate (created=true) when nobody holds it, and
	// the holder's stream from its snapshot when it already existed.
	ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (holder uuid.UUID, created bool, history helpdeskflow.StreamTail, err error)
	// CreateWorkspace records a workspace.
	CreateWorkspace(ctx context.Context, id uuid.UUID, name string) error
	// CreateAPIKey stores a key's hash.
	CreateAPIKey(ctx context.Context, key helpdeskflow.APIKey, secret string) error
	// Load returns a stream's events as the transaction sees them.
	Load(ctx context.Context, id uuid.UUID) ([]helpdeskflow.Event, error)
	// LoadTail returns a stream's snapshot of the current format (nil when
	// it has none) and the events after it, as the transaction sees them.
	LoadTail(ctx context.Context, id uuid.UUID) (helpdeskflow.StreamTail, error)
	// PutSnapshot stores a stream's snapshot with the transaction (next
	// statement); the caller holds the stream's lock.
	PutSnapshot(ctx context.Context, snap helpdeskflow.Snapshot)
	// LockStream locks a stream row until commit and returns its version;
	// ENotFound when it is not a stream of that workspace and type.
	LockStream(ctx context.Context, ref helpdeskflow.StreamRef) (int64, error)
	// RevokeAPIKey revokes an active key of the workspace; ENotFound
	// otherwise. The transaction returns only once no API process still
	// accepts the key.
	RevokeAPIKey(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.APIKey, error)
	// ActiveAdminKeys counts the workspace's active admin keys.
	ActiveAdminKeys(ctx context.Context, workspaceID uuid.UUID) (int, error)
	// LinkTicket records a ticket's customer (sent with the next statement).
	LinkTicket(ctx context.Context, workspaceID, customerID, ticketID uuid.UUID)
	// MoveTickets moves a customer's tickets to another and returns them.
	MoveTickets(ctx context.Context, from, to uuid.UUID) ([]uuid.UUID, error)
	// ClaimProfiles links profiles to a customer; EConflict when another
	// customer holds one.
	ClaimProfiles(ctx context.Context, workspaceID, customerID uuid.UUID, profiles []helpdeskflow.LinkedProfile) error
	// MoveCustomerLookups points a customer's emails and profiles at another.
	MoveCustomerLookups(ctx context.Context, from, to uuid.UUID)
	// ChangeCustomerEmail moves an email reservation; EConflict (with the
	// holder) when another customer has the new email.
	ChangeCustomerEmail(ctx context.Context, workspaceID, customerID uuid.UUID, old, new string) (uuid.UUID, error)
	// WorkspaceSettings reads the workspace's access settings.
	WorkspaceSettings(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error)
	// SetWorkspaceSettings replaces them; like RevokeAPIKey, effective on
	// every API process when the transaction returns.
	SetWorkspaceSettings(ctx context.Context, workspaceID uuid.UUID, s helpdeskflow.WorkspaceSettings) error
	// LockRuleSet moves the workspace's rule-set version forward, locks
	// the rule set until commit and returns it.
	LockRuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
	// PutRule and DeleteRule change a rule record (sent with the next
	// statement).
	PutRule(ctx context.Context, r helpdeskflow.RuleRecord)
	DeleteRule(ctx context.Context, id uuid.UUID)
	// RuleSetSince returns the rule set, without its rules when its
	// version is still known.
	RuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64) (helpdeskflow.RuleSet, error)
	// ScheduleSLA records when the SLA timer worker must next look at a
	// ticket (nil: only after it changes); UnscheduleSLA forgets it.
	ScheduleSLA(ctx context.Context, workspaceID, ticketID, policyID uuid.UUID, dueAt *time.Time)
	UnscheduleSLA(ctx context.Context, ticketID uuid.UUID)
	// RecheckSLAPolicy makes the tickets under a policy due at now.
	RecheckSLAPolicy(ctx context.Context, workspaceID, policyID uuid.UUID, now time.Time)
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
	mailTx
}

// Store is the event store as commands use it.
type Store interface {
	// Transact runs fn in one transaction, committing when it returns nil.
	Transact(ctx context.Context, fn func(tx Tx) error) error
	// Load returns a stream's events; ENotFound when it has none in the
	// workspace.
	Load(ctx context.Context, workspaceID, id uuid.UUID) ([]helpdeskflow.Event, error)
	// LoadTail returns a stream's snapshot of the current format (nil when
	// it has none) and the events after it, read together; ENotFound when
	// the stream is not in the workspace.
	LoadTail(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.StreamTail, error)
	customerReads
	ruleReads
}

// ruleReads read a workspace's rules and policies, and its Slack
// connection.
type ruleReads interface {
	// RuleSet returns every rule record of the workspace and the version.
	RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
	// SlackIntegration returns the Slack connection and its sealed token.
	SlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error)
}

// customerReads are the lookups customer reads need.
type customerReads interface {
	// CustomerTickets lists a customer's ticket ids, oldest first.
	CustomerTickets(ctx context.Context, customerID uuid.UUID) ([]uuid.UUID, error)
	// CustomerByEmail and CustomerByProfile find a customer; ENotFound
	// when none matches.
	CustomerByEmail(ctx context.Context, workspaceID uuid.UUID, email string) (uuid.UUID, error)
	CustomerByProfile(ctx context.Context, workspaceID uuid.UUID, provider, externalID string) (uuid.UUID, error)
}

// concreteStore is an event store whose transactions have a concrete type.
type concreteStore[T Tx] interface {
	Transact(ctx context.Context, fn func(tx T) error) error
	Load(ctx context.Context, workspaceID, id uuid.UUID) ([]helpdeskflow.Event, error)
	LoadTail(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.StreamTail, error)
	customerReads
	ruleReads
}

// AdaptStore turns a store whose Transact passes its own transaction type
// (such as *eventstore.Store) into a Store.
func AdaptStore[T Tx](s concreteStore[T]) Store { return adapted[T]{s, s, s} }

type adapted[T Tx] struct {
	s concreteStore[T]
	customerReads
	ruleReads
}

func (a adapted[T]) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return a.s.Transact(ctx, func(tx T) error { return fn(tx) })
}

func (a adapted[T]) Load(ctx context.Context, workspaceID, id uuid.UUID) ([]helpdeskflow.Event, error) {
	return a.s.Load(ctx, workspaceID, id)
}

func (a adapted[T]) LoadTail(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	return a.s.LoadTail(ctx, workspaceID, id)
}
