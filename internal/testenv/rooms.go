package testenv

import (
	"testing"

	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// The rooms' stores under names of their own, so that Rooms can embed
// them all.
type (
	EventStore = eventstore.Store
	QueueStore = queues.Store
)

// Rooms is every Postgres room of one test database in one value, so a
// test reaches any room's method through it (and passes it wherever a
// room's reader is wanted); DB is the database itself, for statements of
// the test's own.
type Rooms struct {
	*EventStore
	*QueueStore
	DB *pg.DB
}

// NewRooms returns the rooms of a new migrated database.
func NewRooms(t testing.TB) Rooms {
	t.Helper()
	db := Postgres(t)
	return Rooms{EventStore: StoreOn(t, db), QueueStore: queues.New(db), DB: db}
}
