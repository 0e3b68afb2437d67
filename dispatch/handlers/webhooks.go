package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// WebhookQueue is the webhooks and their delivery queue in Postgres
// (store/outbound and store/queues) as the webhook handler uses them.
type WebhookQueue interface {
	ActiveWebhooks(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Webhook, error)
	EnqueueDeliveries(ctx context.Context, ds []helpdeskflow.Delivery) error
}

// Webhooks is the dispatcher handler that records a delivery for
// every active webhook an event matches, before any attempt, so a
// redelivered event never sends twice (deliveries are unique per webhook
// and event). Internal notes are never sent.
type Webhooks struct {
	Store       WebhookQueue
	MaxAttempts int              // default 3
	Now         func() time.Time // default time.Now
}

// Name implements dispatch.Handler.
func (h Webhooks) Name() string { return "webhooks" }

// payload is the body of a delivery.
type payload struct {
	ID          uuid.UUID       `json:"id"`
	Type        string          `json:"type"`
	WorkspaceID uuid.UUID       `json:"workspace_id"`
	OccurredAt  string          `json:"occurred_at"`
	Data        json.RawMessage `json:"data"`
}

// Handle implements dispatch.Handler.
func (h Webhooks) Handle(ctx context.Context, e helpdeskflow.Event) error {
	if helpdeskflow.IsInternalNote(e) {
		return nil
	}
	hooks, err := h.Store.ActiveWebhooks(ctx, e.WorkspaceID)
	if err != nil || len(hooks) == 0 {
		return err
	}
	body, err := helpdeskflow.MarshalJSON(payload{ID: e.ID, Type: e.Type, WorkspaceID: e.WorkspaceID,
		OccurredAt: e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Data: e.Data})
	if err != nil {
		return err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	maxAttempts := h.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 3
	}
	at := now()
	var ds []helpdeskflow.Delivery
	for _, w := range hooks {
		if !w.Matches(e.Type) {
			continue
		}
		ds = append(ds, helpdeskflow.Delivery{ID: uuid.New(), WebhookID: w.ID, WorkspaceID: e.WorkspaceID, EventID: e.ID,
			EventType: e.Type, StreamID: e.StreamID, StreamVersion: e.Version, Payload: body, MaxAttempts: maxAttempts, NextAttemptAt: &at})
	}
	return h.Store.EnqueueDeliveries(ctx, ds)
}
