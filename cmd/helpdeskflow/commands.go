package main

import (
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
)

// commandServices are the write side's areas on Postgres: what the
// API, the mail workers, the linker and the dispatcher's handlers call.
type commandServices struct {
	tickets  *tickets.Service
	rules    *rules.Service
	access   *access.Service
	outbound *outbound.Service
}

// newCommandServices returns every area's service on Postgres
// (commands/postgres), every room opened on store's database.
func newCommandServices(store *eventstore.Store, ticketOpts []tickets.Option, outboundOpts []outbound.Option) commandServices {
	return commandServices{
		tickets:  tickets.New(postgres.Tickets(store), ticketOpts...),
		rules:    rules.New(postgres.Rules(store)),
		access:   access.New(postgres.Access(store)),
		outbound: outbound.New(postgres.Outbound(store), outboundOpts...),
	}
}
