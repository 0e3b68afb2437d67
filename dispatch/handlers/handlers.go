// Package handlers holds the dispatcher's handlers of Kafka events, and
// All, the one list of them. A handler reacts to an event and only writes
// Postgres: it records what is to be done (a webhook delivery, a Slack
// notification job, a customer lookup job) in a queue that a poller of
// package dispatch/pollers works through, so no call to the outside world
// ever runs inside the dispatcher's consume loop. Handlers are called at
// least once per event (see dispatch.Handler), so every write is
// idempotent.
//
// The handlers: Log (every event, at debug level), Webhooks (a delivery
// per matching webhook), Slack (a notification job) and LinkedProfiles (a
// lookup job per Shopify or Stripe connection of a new customer). The
// last three are dispatch.BatchHandlers: for a polled batch they read the
// webhooks, Slack connections or lookup connections of all its workspaces
// in one query each, and write what its events ask for together, so a
// batch costs a fixed number of statements however many events it holds.
package handlers

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
)

// Config is what the handlers need. Logger is Log's (default
// slog.Default()). Outbound are the dependencies of the handlers that
// queue outbound work; nil (a process without HDF_SECRET_KEYS, which
// cannot open the secrets that work needs) leaves Log alone.
type Config struct {
	Logger   *slog.Logger
	Outbound *Outbound
}

// Outbound are the queues and stores the outbound handlers use (Postgres
// rooms: store/outbound, store/queues) and the linker choosing the
// connections a customer is looked up in. All are required.
type Outbound struct {
	Webhooks WebhookQueue
	Slack    SlackConnections
	Jobs     JobQueue
	Linker   ProfileConnections
}

// All returns the dispatcher's handlers, in the order it calls them: Log,
// then, with cfg.Outbound, Webhooks, Slack and LinkedProfiles.
func All(cfg Config) []dispatch.Handler {
	handlers := []dispatch.Handler{Log{Logger: cfg.Logger}}
	if o := cfg.Outbound; o != nil {
		handlers = append(handlers, Webhooks{Store: o.Webhooks}, Slack{Store: o.Slack, Jobs: o.Jobs},
			&LinkedProfiles{Linker: o.Linker, Jobs: o.Jobs})
	}
	return handlers
}

// handleAlone handles e as a batch of its own: the Handle of a
// dispatch.BatchHandler called outside a dispatcher's batch.
func handleAlone(ctx context.Context, h dispatch.BatchHandler, e helpdeskflow.Event) error {
	b, err := h.Begin(ctx, []helpdeskflow.Event{e})
	if err != nil {
		return err
	}
	if err := b.Handle(ctx, e); err != nil {
		return err
	}
	return b.Commit(ctx)
}

// workspacesOf returns the workspaces of the events that want says need
// theirs, each once.
func workspacesOf(events []helpdeskflow.Event, want func(helpdeskflow.Event) bool) []uuid.UUID {
	var out []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, e := range events {
		if !seen[e.WorkspaceID] && want(e) {
			seen[e.WorkspaceID] = true
			out = append(out, e.WorkspaceID)
		}
	}
	return out
}

// jobBatch is the integration jobs a batch's events asked for, queued at
// Commit.
type jobBatch struct {
	queue JobQueue
	jobs  []helpdeskflow.IntegrationJob
}

func (b *jobBatch) Commit(ctx context.Context) error {
	if err := b.queue.EnqueueJobs(ctx, b.jobs); err != nil {
		return err
	}
	b.jobs = nil
	return nil
}
