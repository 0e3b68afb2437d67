package testenv

import (
	"time"

	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
)

// Commands are the command areas' services on one event store, for tests
// that drive several areas (create a workspace, a rule and a ticket).
type Commands struct {
	Tickets  *tickets.Service
	Rules    *rules.Service
	Access   *access.Service
	Outbound *outbound.Service
}

// CommandOptions configure Commands; the zero value is the wall clock, no
// metrics, no secrets (webhook and Slack commands answer EUnavailable) and
// no Slack.
type CommandOptions struct {
	Clock         func() time.Time
	Metrics       *rules.Metrics
	Sealer        outbound.Sealer
	AllowLoopback bool
	Slack         outbound.SlackVerifier
}

// NewCommands returns every area's service on store; the tickets' consistent
// reads go through a read cache of the default bound, as in production.
func NewCommands(store *eventstore.Store, o CommandOptions) *Commands {
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	out := []outbound.Option{outbound.WithClock(clock)}
	if o.Sealer != nil {
		out = append(out, outbound.WithSecrets(o.Sealer, o.AllowLoopback))
	}
	if o.Slack != nil {
		out = append(out, outbound.WithSlack(o.Slack))
	}
	return &Commands{
		Tickets:  tickets.New(postgres.Tickets(store), tickets.WithClock(clock), tickets.WithMetrics(o.Metrics), tickets.WithReadCache(0)),
		Rules:    rules.New(postgres.Rules(store), rules.WithClock(clock)),
		Access:   access.New(postgres.Access(store)),
		Outbound: outbound.New(postgres.Outbound(store), out...),
	}
}
