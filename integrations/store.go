// Package integrations manages a workspace's OAuth connections to outside
// services: starting a connection (the provider's authorization URL with a
// sealed state), finishing it (the callback's code exchanged for tokens,
// stored sealed), and handing out access tokens, refreshing them before
// they expire, one refresh per connection at a time across processes. A
// refresh holds no transaction across the network: it takes a lease on
// the connection, asks the provider, then writes the outcome in a short
// transaction, only over the tokens it started from. A refresh the
// provider refuses with invalid_grant marks the connection token_expired
// for good (the user reconnects); temporary failures are recorded and
// retried later. It knows storage only through the interfaces declared
// here.
package integrations

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Tx is one transaction in the event store.
type Tx interface {
	LockStream(ctx context.Context, ref helpdeskflow.StreamRef) (int64, error)
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
	CreateConnection(ctx context.Context, c helpdeskflow.Connection)
	// LockConnection locks a connection until commit; ENotFound otherwise.
	LockConnection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error)
	// StoreTokens makes the connection active with new tokens (a nil
	// refresh token keeps the stored one) and counts a new token version.
	StoreTokens(ctx context.Context, c helpdeskflow.Connection, tokens helpdeskflow.ConnectionTokens, now time.Time) error
	// EndRefreshLease ends the connection's refresh lease if it is still
	// the one with leaseToken.
	EndRefreshLease(ctx context.Context, id, leaseToken uuid.UUID)
	SetConnectionStatus(ctx context.Context, id uuid.UUID, status, errorClass, message string, nextRetry *time.Time, now time.Time)
	DeleteConnection(ctx context.Context, id uuid.UUID)
	// ResumeSync makes a connection's mailbox due now, with no failures
	// counted (next statement).
	ResumeSync(ctx context.Context, id uuid.UUID)
	// LockSlackIntegration locks the workspace's Slack integration (the
	// one notifications use) until commit; ENotFound when there is none.
	LockSlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error)
	// PutSlackIntegration stores the workspace's Slack integration with
	// its sealed bot token (next statement).
	PutSlackIntegration(ctx context.Context, in helpdeskflow.SlackIntegration, sealedToken []byte) error
}

// Store is the event store as this package uses it.
type Store interface {
	Transact(ctx context.Context, fn func(tx Tx) error) error
	storeReads
}

// storeReads are the Store's methods outside transactions.
type storeReads interface {
	Connection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, error)
	Connections(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Connection, error)
	// ConnectionTokens reads a connection with its sealed tokens, their
	// version and refresh lease, locking nothing; ENotFound otherwise.
	ConnectionTokens(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error)
	// TakeRefreshLease claims active connection id's refresh with lease
	// if its tokens are still at version and no lease is live at now; it
	// reports whether it did.
	TakeRefreshLease(ctx context.Context, id uuid.UUID, version int64, lease helpdeskflow.RefreshLease, now time.Time) (bool, error)
}

type concreteStore[T Tx] interface {
	Transact(ctx context.Context, fn func(tx T) error) error
	storeReads
}

// AdaptStore turns a store whose Transact passes its own transaction type
// (such as *connections.Store) into a Store.
func AdaptStore[T Tx](s concreteStore[T]) Store { return adapted[T]{s} }

type adapted[T Tx] struct{ concreteStore[T] }

func (a adapted[T]) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return a.concreteStore.Transact(ctx, func(tx T) error { return fn(tx) })
}
