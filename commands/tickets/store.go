package tickets

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Tx is one ticket command's transaction.
type Tx interface {
	// Append adds events at expectedVersion (0 creates the stream) and
	// returns the new version; EVersionConflict when the stream moved.
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
	// ReserveCustomerEmail returns the customer holding a normalized email,
	// reserving it for candidate (created=true) when nobody holds it, and
	// the holder's stream from its snapshot when it already existed.
	ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (holder uuid.UUID, created bool, history helpdeskflow.StreamTail, err error)
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
	// RuleSetSince returns the rule set, without its rules when its
	// version is still known.
	RuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64) (helpdeskflow.RuleSet, error)
	// ScheduleSLA records when the SLA timer worker must next look at a
	// ticket (nil: only after it changes); UnscheduleSLA forgets it.
	ScheduleSLA(ctx context.Context, workspaceID, ticketID, policyID uuid.UUID, dueAt *time.Time)
	UnscheduleSLA(ctx context.Context, ticketID uuid.UUID)
	mailTx
}

// Store is the event store as ticket commands use it.
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
	// RuleSet returns every rule record of the workspace and the version.
	RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
	customerReads
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
	RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
	customerReads
}

// AdaptStore turns a store whose Transact passes its own transaction type
// (such as *eventstore.Store) into a Store.
func AdaptStore[T Tx](s concreteStore[T]) Store { return adapted[T]{s} }

type adapted[T Tx] struct{ concreteStore[T] }

func (a adapted[T]) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return a.concreteStore.Transact(ctx, func(tx T) error { return fn(tx) })
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
