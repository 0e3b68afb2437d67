package testenv

import (
	"testing"

	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/connections"
	"github.com/helpdeskflow/helpdeskflow/store/mail"
	"github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// The rooms' stores under names of their own, so that Rooms can embed
// them all.
type (
	EventStore      = eventstore.Store
	QueueStore      = queues.Store
	ConnectionStore = connections.Store
	MailStore       = mail.Store
	AccessStore     = access.Store
	OutboundStore   = outbound.Store
)

// Rooms is every Postgres room of one test database in one value, so a
// test reaches any room's method through it (and passes it wherever a
// room's reader is wanted); DB is the database itself, for statements of
// the test's own.
type Rooms struct {
	*EventStore
	StoreRooms
	DB *pg.DB
}

// StoreRooms are the rooms under store/, one level below the event store
// in Rooms, so the event store's methods win where names repeat
// (Transact).
type StoreRooms struct {
	*QueueStore
	*ConnectionStore
	*MailStore
	*AccessStore
	*OutboundStore
}

// NewRooms returns the rooms of a new migrated database.
func NewRooms(t testing.TB) Rooms {
	t.Helper()
	db := Postgres(t)
	events := StoreOn(t, db)
	return Rooms{EventStore: events, DB: db, StoreRooms: StoreRooms{
		QueueStore:      queues.New(db),
		ConnectionStore: connections.New(db, events),
		MailStore:       mail.New(db),
		AccessStore:     access.New(db),
		OutboundStore:   outbound.New(db),
	}}
}
