package main

import (
	"github.com/prometheus/client_golang/prometheus"

	commandsoutbound "github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/connections"
	"github.com/helpdeskflow/helpdeskflow/store/mail"
	"github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// stores are the Postgres rooms of one database: the event store and the
// rooms under store/, all over one pool.
type stores struct {
	db          *pg.DB
	events      *eventstore.Store
	queues      *queues.Store
	connections *connections.Store
	mail        *mail.Store
	access      *access.Store
	outbound    *outbound.Store
}

// newStores returns the rooms of db, registering the event store's
// metrics on reg (which may be nil).
func newStores(db *pg.DB, reg prometheus.Registerer) (stores, error) {
	events, err := eventstore.New(db, reg)
	if err != nil {
		return stores{}, err
	}
	return stores{db: db, events: events, queues: queues.New(db), connections: connections.New(db, events),
		mail: mail.New(db), access: access.New(db), outbound: outbound.New(db)}, nil
}

// webhookRooms are the webhooks and their delivery queue, which the
// webhook handler, the delivery worker and the API's delivery log read
// together.
type webhookRooms struct {
	*outboundStore
	*queueStore
}

// replayRooms are what a webhook replay reads and records: the webhook,
// the event store's range of events and the replay and its deliveries.
type replayRooms struct {
	*eventStore
	*outboundStore
	*queueStore
}

// webhookReplays are the API's webhook replays: started by the outbound
// command, their progress read from the queues.
type webhookReplays struct {
	*commandsoutbound.Replays
	*queueStore
}

// connectionRooms are the OAuth connections and their job queues, which
// the API's integration status reads together.
type connectionRooms struct {
	*connectionStore
	*queueStore
}

// mailRooms are the mailboxes (connections) and the mail records and
// replies, which the mail sync and reply workers read together.
type mailRooms struct {
	*connectionStore
	*mailStore
}

// The rooms' stores under names of their own, so that one struct can
// embed several.
type (
	queueStore      = queues.Store
	connectionStore = connections.Store
	mailStore       = mail.Store
	outboundStore   = outbound.Store
	eventStore      = eventstore.Store
)
