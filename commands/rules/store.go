package rules

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Tx is one rule command's transaction.
type Tx interface {
	// Append adds events at expectedVersion (0 creates the stream) and
	// returns the new version; EVersionConflict when the stream moved.
	Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error)
	// LockRuleSet moves the workspace's rule-set version forward, locks
	// the rule set until commit and returns it.
	LockRuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
	// PutRule and DeleteRule change a rule record (sent with the next
	// statement).
	PutRule(ctx context.Context, r helpdeskflow.RuleRecord)
	DeleteRule(ctx context.Context, id uuid.UUID)
	// RecheckSLAPolicy makes the tickets under a policy due at now.
	RecheckSLAPolicy(ctx context.Context, workspaceID, policyID uuid.UUID, now time.Time)
}

// Store is storage as rule commands use it (see commands/postgres).
type Store interface {
	// Transact runs fn in one transaction, committing when it returns nil.
	Transact(ctx context.Context, fn func(tx Tx) error) error
	// RuleSet returns every rule record of the workspace and the version.
	RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error)
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
