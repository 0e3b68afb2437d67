package handlers

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
)

// WebhookQueue is the webhooks and their delivery queue in Postgres
// (store/outbound and store/queues) as the webhook handler uses them.
type WebhookQueue interface {
	LiveWebhooks(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID][]helpdeskflow.Webhook, error)
	EnqueueDeliveries(ctx context.Context, ds []helpdeskflow.Delivery) error
}

// Webhooks is the dispatcher handler that records a delivery for
// every webhook subscribed to an event, before any attempt, so a
// redelivered event never sends twice (deliveries are unique per webhook
// and event). A paused webhook's deliveries are recorded too: claims hold
// them until it is resumed (up to helpdeskflow.MaxHeldDeliveries, see
// queues.Store.EnqueueDeliveries). Internal notes are never sent. It is a
// dispatch.BatchHandler: a batch reads the webhooks of all its workspaces
// in one query and records its deliveries together.
type Webhooks struct {
	Store       WebhookQueue
	MaxAttempts int              // default 3
	Now         func() time.Time // default time.Now
}

// Name implements dispatch.Handler.
func (h Webhooks) Name() string { return "webhooks" }

// Handle implements dispatch.Handler: e as a batch of its own.
func (h Webhooks) Handle(ctx context.Context, e helpdeskflow.Event) error {
	return handleAlone(ctx, h, e)
}

// Begin implements dispatch.BatchHandler: it reads the webhooks (active
// or paused) of the workspaces of events that are not internal notes.
func (h Webhooks) Begin(ctx context.Context, events []helpdeskflow.Event) (dispatch.HandlerBatch, error) {
	hooks, err := h.Store.LiveWebhooks(ctx, workspacesOf(events, func(e helpdeskflow.Event) bool { return !helpdeskflow.IsInternalNote(e) }))
	if err != nil {
		return nil, err
	}
	return &webhookBatch{h: h, hooks: hooks}, nil
}

// webhookBatch is the webhooks of one batch's workspaces and the
// deliveries its events asked for, recorded at Commit.
type webhookBatch struct {
	h     Webhooks
	hooks map[uuid.UUID][]helpdeskflow.Webhook
	ds    []helpdeskflow.Delivery
}

func (b *webhookBatch) Handle(ctx context.Context, e helpdeskflow.Event) error {
	hooks := b.hooks[e.WorkspaceID]
	if helpdeskflow.IsInternalNote(e) || len(hooks) == 0 {
		return nil
	}
	body, err := helpdeskflow.WebhookBody(e)
	if err != nil {
		return err
	}
	now := time.Now
	if b.h.Now != nil {
		now = b.h.Now
	}
	maxAttempts := b.h.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 3
	}
	at := now()
	for _, w := range hooks {
		if !w.Subscribes(e.Type) {
			continue
		}
		b.ds = append(b.ds, helpdeskflow.Delivery{ID: uuid.New(), WebhookID: w.ID, WorkspaceID: e.WorkspaceID, EventID: e.ID,
			EventType: e.Type, StreamID: e.StreamID, StreamVersion: e.Version, Payload: body, MaxAttempts: maxAttempts, NextAttemptAt: &at,
			Held: !w.Active})
	}
	return nil
}

func (b *webhookBatch) Commit(ctx context.Context) error {
	if err := b.h.Store.EnqueueDeliveries(ctx, b.ds); err != nil {
		return err
	}
	b.ds = nil
	return nil
}
