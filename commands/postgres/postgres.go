// Package postgres is the command areas on Postgres: the one place that
// knows both the areas' storage interfaces (commands/tickets, rules,
// access, outbound) and the rooms that serve them (eventstore/, store/...).
// Each function gives an area its Store: reads go to the rooms' Stores,
// and every transaction opens each room the area uses on the ONE *pg.Tx
// of that transaction, so an append commits together with the rows it
// goes with. The compiler checks that each room serves what the area
// declares; nothing is asserted at run time.
//
// Every room is opened on the event store's database (eventstore.Store.DB),
// so one transaction can span them.
package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	accessrooms "github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
	"github.com/helpdeskflow/helpdeskflow/store/lookups"
	"github.com/helpdeskflow/helpdeskflow/store/mail"
	outboundrooms "github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
	rulerooms "github.com/helpdeskflow/helpdeskflow/store/rules"
)

// Tickets returns the ticket commands' store: a transaction is the event
// store, the customer lookups, the SLA timers, the rule set and the mail
// outbox on one *pg.Tx; reads go to the event store, the rule sets and the
// customer lookups.
func Tickets(events *eventstore.Store) tickets.Store {
	db := events.DB()
	return ticketStore{events: events, rules: rulerooms.New(db), lookups: lookups.New(db),
		transactor: transactor[tickets.Tx]{events, func(tx *pg.Tx) tickets.Tx {
			return tickets.Tx{Events: events.In(tx), Customers: lookups.In(tx), Timers: queues.In(tx),
				Rules: rulerooms.In(tx), Mail: mail.In(tx), Parts: tx, Responses: idempotency.In(tx)}
		}}}
}

type ticketStore struct {
	transactor[tickets.Tx]
	events  *eventstore.Store
	rules   *rulerooms.Store
	lookups *lookups.Store
}

func (s ticketStore) Load(ctx context.Context, workspaceID, id uuid.UUID) ([]helpdeskflow.Event, error) {
	return s.events.Load(ctx, workspaceID, id)
}

func (s ticketStore) LoadTail(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	return s.events.LoadTail(ctx, workspaceID, id)
}

func (s ticketStore) LoadTailAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf) (helpdeskflow.StreamTail, error) {
	return s.events.LoadTailAsOf(ctx, workspaceID, id, asOf)
}

func (s ticketStore) LoadRange(ctx context.Context, ref helpdeskflow.StreamRef, from, to int64) ([]helpdeskflow.Event, error) {
	return s.events.LoadRange(ctx, ref, from, to)
}

func (s ticketStore) LatestEventsOfTypes(ctx context.Context, workspaceID uuid.UUID, streamIDs []uuid.UUID, types []string, until time.Time) ([]helpdeskflow.Event, error) {
	return s.events.LatestEventsOfTypes(ctx, workspaceID, streamIDs, types, until)
}

func (s ticketStore) StreamVersions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	return s.events.StreamVersions(ctx, ids)
}

func (s ticketStore) LoadAfter(ctx context.Context, workspaceID, id uuid.UUID, version int64) ([]helpdeskflow.Event, error) {
	return s.events.LoadAfter(ctx, workspaceID, id, version)
}

func (s ticketStore) RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error) {
	return s.rules.RuleSet(ctx, workspaceID)
}

func (s ticketStore) CustomerTickets(ctx context.Context, customerID uuid.UUID) ([]uuid.UUID, error) {
	return s.lookups.CustomerTickets(ctx, customerID)
}

func (s ticketStore) CustomerByEmail(ctx context.Context, workspaceID uuid.UUID, email string) (uuid.UUID, error) {
	return s.lookups.CustomerByEmail(ctx, workspaceID, email)
}

func (s ticketStore) CustomerByProfile(ctx context.Context, workspaceID uuid.UUID, provider, externalID string) (uuid.UUID, error) {
	return s.lookups.CustomerByProfile(ctx, workspaceID, provider, externalID)
}

func (s ticketStore) ByExternalID(ctx context.Context, workspaceID uuid.UUID, streamType, externalID string) (uuid.UUID, error) {
	return s.lookups.ByExternalID(ctx, workspaceID, streamType, externalID)
}

// Rules returns the rule commands' store: a transaction is the event
// store, the rule sets and the SLA timers on one *pg.Tx; RuleSet reads the
// rule sets.
func Rules(events *eventstore.Store) rules.Store {
	return ruleStore{Store: rulerooms.New(events.DB()), transactor: transactor[rules.Tx]{events, func(tx *pg.Tx) rules.Tx {
		return ruleTx{events.In(tx), rulerooms.In(tx), queues.In(tx)}
	}}}
}

type ruleStore struct {
	transactor[rules.Tx]
	*rulerooms.Store
}

// ruleTx is a rule command's rooms on one transaction.
type ruleTx struct {
	*eventTx
	*ruleSetTx
	*timerTx
}

// Access returns the access commands' store: a transaction is the event
// store and the workspaces, API keys and settings on one *pg.Tx (whose
// commit drops every API process's cached access, see store/access).
func Access(events *eventstore.Store) access.Store {
	return transactor[access.Tx]{events, func(tx *pg.Tx) access.Tx {
		return accessTx{events.In(tx), accessrooms.In(tx)}
	}}
}

// accessTx is an access command's rooms on one transaction.
type accessTx struct {
	*eventTx
	*accessRoomTx
}

// Outbound returns the outbound commands' store: a transaction is the
// event store and the webhooks and Slack connection on one *pg.Tx;
// SlackIntegration reads the Slack connection.
func Outbound(events *eventstore.Store) outbound.Store {
	return outboundStore{Store: outboundrooms.New(events.DB()), transactor: transactor[outbound.Tx]{events, func(tx *pg.Tx) outbound.Tx {
		return outboundTx{events.In(tx), outboundrooms.In(tx)}
	}}}
}

type outboundStore struct {
	transactor[outbound.Tx]
	*outboundrooms.Store
}

// outboundTx is an outbound command's rooms on one transaction.
type outboundTx struct {
	*eventTx
	*outboundRoomTx
}

// transactor runs an area's transactions on the event store's database:
// rooms opens the area's rooms on the transaction's one *pg.Tx, the event
// store's view first (see Tickets).
type transactor[T any] struct {
	events *eventstore.Store
	rooms  func(tx *pg.Tx) T
}

// Transact runs fn on the rooms of one transaction (see
// eventstore.Store.Transact for its errors) and commits if fn returns
// nil; otherwise it rolls back and returns fn's error unchanged.
func (t transactor[T]) Transact(ctx context.Context, fn func(tx T) error) error {
	return t.events.DB().Transact(ctx, func(tx *pg.Tx) error { return fn(t.rooms(tx)) })
}

// TransactGrouped is Transact through pg.DB.TransactGrouped: fn may share
// its round trips and commit with concurrent transactions of other keys,
// and may run more than once.
func (t transactor[T]) TransactGrouped(ctx context.Context, key string, fn func(tx T) error) error {
	return t.events.DB().TransactGrouped(ctx, key, func(tx *pg.Tx) error { return fn(t.rooms(tx)) })
}

// The rooms' transaction views under names of their own, so that one
// struct can embed several: the struct then has each room's methods, and
// the compiler checks it has every method an area's Tx lists.
type (
	eventTx        = eventstore.Tx
	ruleSetTx      = rulerooms.Tx
	timerTx        = queues.Tx
	accessRoomTx   = accessrooms.Tx
	outboundRoomTx = outboundrooms.Tx
)
