package eventstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// eventsChannel is the LISTEN/NOTIFY channel that wakes the relay.
const eventsChannel = "helpdeskflow_events"

// notifier wakes relays after commits, coalescing bursts.
//
// A NOTIFY inside the appending transaction would be simplest, but Postgres
// serialises the commits of all notifying transactions on one lock (held
// through the WAL flush), which caps a busy store at a few hundred commits
// per second. So the store sends the NOTIFY after the commit, from its own
// statement, at most once per interval: the first commit of a quiet period
// notifies at once, later ones within the interval get one trailing
// notification when it ends. Every commit is thus followed by a
// notification within one interval; the relay's polling covers the rest.
type notifier struct {
	pool     *pgxpool.Pool
	interval time.Duration

	mu        sync.Mutex
	scheduled bool
	last      time.Time
}

// poke asks for a notification after a commit; it never blocks.
func (n *notifier) poke() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.scheduled {
		return
	}
	n.scheduled = true
	time.AfterFunc(time.Until(n.last.Add(n.interval)), n.fire)
}

func (n *notifier) fire() {
	n.mu.Lock()
	n.scheduled = false
	n.last = time.Now()
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A lost notification only delays the relay until its next poll.
	n.pool.Exec(ctx, `SELECT pg_notify('`+eventsChannel+`', '')`) //nolint:errcheck // see above
}
