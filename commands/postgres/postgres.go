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

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	accessrooms "github.com/helpdeskflow/helpdeskflow/store/access"
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
	return ticketStore{Store: events, rules: rulerooms.New(db), lookups: lookups.New(db)}
}

type ticketStore struct {
	*eventstore.Store
	rules   *rulerooms.Store
	lookups *lookups.Store
}

func (s ticketStore) Transact(ctx context.Context, fn func(tx tickets.Tx) error) error {
	return s.DB().Transact(ctx, func(tx *pg.Tx) error {
		return fn(tickets.Tx{Events: s.In(tx), Customers: lookups.In(tx), Timers: queues.In(tx),
			Rules: rulerooms.In(tx), Mail: mail.In(tx)})
	})
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

// Rules returns the rule commands' store: a transaction is the event
// store, the rule sets and the SLA timers on one *pg.Tx; RuleSet reads the
// rule sets.
func Rules(events *eventstore.Store) rules.Store {
	return ruleStore{events: events, Store: rulerooms.New(events.DB())}
}

type ruleStore struct {
	events *eventstore.Store
	*rulerooms.Store
}

// ruleTx is a rule command's rooms on one transaction.
type ruleTx struct {
	*eventTx
	*ruleSetTx
	*timerTx
}

func (s ruleStore) Transact(ctx context.Context, fn func(tx rules.Tx) error) error {
	return s.events.DB().Transact(ctx, func(tx *pg.Tx) error {
		return fn(ruleTx{s.events.In(tx), rulerooms.In(tx), queues.In(tx)})
	})
}

// Access returns the access commands' store: a transaction is the event
// store and the workspaces, API keys and settings on one *pg.Tx (whose
// commit drops every API process's cached access, see store/access).
func Access(events *eventstore.Store) access.Store {
	return accessStore{events}
}

type accessStore struct{ events *eventstore.Store }

// accessTx is an access command's rooms on one transaction.
type accessTx struct {
	*eventTx
	*accessRoomTx
}

func (s accessStore) Transact(ctx context.Context, fn func(tx access.Tx) error) error {
	return s.events.DB().Transact(ctx, func(tx *pg.Tx) error {
		return fn(accessTx{s.events.In(tx), accessrooms.In(tx)})
	})
}

// Outbound returns the outbound commands' store: a transaction is the
// event store and the webhooks and Slack connection on one *pg.Tx;
// SlackIntegration reads the Slack connection.
func Outbound(events *eventstore.Store) outbound.Store {
	return outboundStore{events: events, Store: outboundrooms.New(events.DB())}
}

type outboundStore struct {
	events *eventstore.Store
	*outboundrooms.Store
}

// outboundTx is an outbound command's rooms on one transaction.
type outboundTx struct {
	*eventTx
	*outboundRoomTx
}

func (s outboundStore) Transact(ctx context.Context, fn func(tx outbound.Tx) error) error {
	return s.events.DB().Transact(ctx, func(tx *pg.Tx) error {
		return fn(outboundTx{s.events.In(tx), outboundrooms.In(tx)})
	})
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
