package tickets

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

// Tx is one ticket command's transaction, which spans several rooms of
// storage: the events of the ticket and customer streams, the customer
// lookups, the SLA timers, the rule set and the mail outbox. Each field is
// that room's view of the same transaction.
type Tx struct {
	Events    EventTx
	Customers CustomerIndexTx
	Timers    SLATimerTx
	Rules     rules.SetTx
	Mail      MailTx
	// Parts and Responses serve batch commands: their items are parts of
	// the transaction, undone alone, and their response is kept with its
	// Idempotency-Key in the same commit.
	Parts     PartTx
	Responses ResponseTx
}

// PartTx undoes one part of a transaction (a batch item) alone. Parts do
// not nest; their statements travel with the next statement.
type PartTx interface {
	// Savepoint begins a part; ReleaseSavepoint keeps it.
	Savepoint()
	ReleaseSavepoint()
	// RollbackToSavepoint undoes the part (also the event store's notes of
	// its appends); EInternal when Postgres refused.
	RollbackToSavepoint(ctx context.Context) error
}

// ResponseTx keeps a request's response with its Idempotency-Key in the
// transaction.
type ResponseTx interface {
	// Complete stores resp for replay under the held key;
	// EIdempotencyKeyInUse when the claim was lost (roll back then).
	Complete(ctx context.Context, held helpdeskflow.HeldIdempotencyKey, resp helpdeskflow.IdempotentResponse) error
}

// EventTx is the event store in a transaction.
type EventTx interface {
	// Append adds events at expectedVersion (0 creates the stream) and
	// returns the new version; EVersionConflict when the stream moved.
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
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
	// LockTail is LockStream and LoadTail in one round trip.
	LockTail(ctx context.Context, ref helpdeskflow.StreamRef) (int64, helpdeskflow.StreamTail, error)
}

// CustomerIndexTx is what finds customers, in a transaction: their
// emails, linked profiles and tickets.
type CustomerIndexTx interface {
	// ReserveCustomerEmail returns the customer holding a normalized email,
	// reserving it for candidate (created=true) when nobody holds it, and
	// the holder's stream from its snapshot when it already existed.
	ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (holder uuid.UUID, created bool, history helpdeskflow.StreamTail, err error)
	// ReserveCustomerEmails is ReserveCustomerEmail for many emails in
	// one round trip, in their order: the emails reserved for their
	// candidates, and the streams (from snapshots) of existing holders.
	ReserveCustomerEmails(ctx context.Context, workspaceID uuid.UUID, emails []string, candidates []uuid.UUID) (
		reserved map[string]uuid.UUID, existing map[string]helpdeskflow.StreamTail, err error)
	// ReleaseCustomerEmails gives back reservations whose customers were
	// not created (sent with the next statement).
	ReleaseCustomerEmails(ctx context.Context, workspaceID uuid.UUID, emails []string, holders []uuid.UUID)
	// LinkTicket records a ticket's customer (sent with the next statement).
	LinkTicket(ctx context.Context, workspaceID, customerID, ticketID uuid.UUID)
	// CustomersTickets lists each customer's ticket ids, oldest first, as
	// the transaction sees them (customers without tickets are absent).
	CustomersTickets(ctx context.Context, customerIDs []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error)
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
	// ClaimExternalID makes a ticket or customer (by stream type) the
	// holder of an integrator's external id unless another holds it; it
	// returns the holder. Concurrent claims of one id: one wins.
	ClaimExternalID(ctx context.Context, workspaceID uuid.UUID, streamType, externalID string, id uuid.UUID) (uuid.UUID, error)
}

// SLATimerTx is the SLA timer queue in a transaction.
type SLATimerTx interface {
	// ScheduleSLA records when the SLA timer worker must next look at a
	// ticket (nil: only after it changes); UnscheduleSLA forgets it.
	ScheduleSLA(ctx context.Context, workspaceID, ticketID, policyID uuid.UUID, dueAt *time.Time)
	UnscheduleSLA(ctx context.Context, ticketID uuid.UUID)
}

// Store is storage as ticket commands use it (see commands/postgres).
type Store interface {
	// Transact runs fn in one transaction, committing when it returns nil.
	Transact(ctx context.Context, fn func(tx Tx) error) error
	// TransactGrouped is Transact for a frequent, short command on the
	// rows named by key: it may share its round trips and commit with
	// concurrent commands of other keys, with the outcome fn would have
	// alone; one key's commands run in arrival order. fn may run more
	// than once: it must only assign its results besides its statements.
	TransactGrouped(ctx context.Context, key string, fn func(tx Tx) error) error
	// Load returns a stream's events; ENotFound when it has none in the
	// workspace.
	Load(ctx context.Context, workspaceID, id uuid.UUID) ([]helpdeskflow.Event, error)
	// LoadTail returns a stream's snapshot of the current format (nil when
	// it has none) and the events after it, read together; ENotFound when
	// the stream is not in the workspace.
	LoadTail(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.StreamTail, error)
	// StreamVersions returns the current version of each existing stream
	// of ids in one statement (absent ids are no streams); EInternal when
	// it fails. The read cache checks its entries with it.
	StreamVersions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error)
	// LoadAfter returns a stream's events after version, in order (none
	// when there are no later ones); ENotFound when they belong to another
	// workspace. The read cache repairs a stale entry with it.
	LoadAfter(ctx context.Context, workspaceID, id uuid.UUID, version int64) ([]helpdeskflow.Event, error)
	// RuleSet returns every rule record of the workspace and the version.
	RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
	customerReads
	pastReads
}

// customerReads are the lookups customer reads need.
type customerReads interface {
	// CustomerTickets lists a customer's ticket ids, oldest first.
	CustomerTickets(ctx context.Context, customerID uuid.UUID) ([]uuid.UUID, error)
	// CustomerByEmail and CustomerByProfile find a customer; ENotFound
	// when none matches.
	CustomerByEmail(ctx context.Context, workspaceID uuid.UUID, email string) (uuid.UUID, error)
	CustomerByProfile(ctx context.Context, workspaceID uuid.UUID, provider, externalID string) (uuid.UUID, error)
	// ByExternalID finds the ticket or customer (by stream type) holding
	// an integrator's external id; ENotFound when none does.
	ByExternalID(ctx context.Context, workspaceID uuid.UUID, streamType, externalID string) (uuid.UUID, error)
}

// fieldNamingStore gives every transaction an Append whose size refusal
// names the request field (commands.NameTooLarge).
type fieldNamingStore struct{ Store }

func (s fieldNamingStore) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return s.Store.Transact(ctx, func(tx Tx) error {
		tx.Events = fieldNamingEvents{tx.Events}
		return fn(tx)
	})
}

func (s fieldNamingStore) TransactGrouped(ctx context.Context, key string, fn func(tx Tx) error) error {
	return s.Store.TransactGrouped(ctx, key, func(tx Tx) error {
		tx.Events = fieldNamingEvents{tx.Events}
		return fn(tx)
	})
}

type fieldNamingEvents struct{ EventTx }

func (t fieldNamingEvents) Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error) {
	return commands.NameTooLarge(t.EventTx.Append(ctx, ref, expectedVersion, md, events))
}
