package helpdeskflow

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Webhook event and stream names.
const (
	EventWebhookCreated       = "webhook.created"
	EventWebhookUpdated       = "webhook.updated"
	EventWebhookSecretRotated = "webhook.secret_rotated"
	EventWebhookDeleted       = "webhook.deleted"
	StreamWebhook             = "webhook"
)

// Delivery statuses. A cancelled delivery belonged to a webhook deleted
// before it was sent; it is never attempted. A held delivery is a pending
// one of a paused webhook (the log shows it so; it is stored pending and
// sent once the webhook is resumed). A dropped delivery was held beyond
// MaxHeldDeliveries and pushed out by newer ones; it is never attempted,
// and a replay recovers its event.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
	DeliveryHeld      = "held"
	DeliveryDropped   = "dropped"
)

// MaxHeldDeliveries is how many pending deliveries a paused webhook
// collects; past it the oldest are dropped.
const MaxHeldDeliveries = 10_000

// Webhook is a subscription: events of EventTypes ("*" for all) are
// POSTed to URL, signed with the subscription's secret. The secret itself
// never leaves the write side except in the answer that creates or
// rotates it; PreviousSecretUntil says until when the previous secret's
// signature is sent too after a rotation.
type Webhook struct {
	ID                  uuid.UUID
	WorkspaceID         uuid.UUID
	URL                 string
	EventTypes          []string
	Active              bool
	PreviousSecretUntil *time.Time
	// DroppedDeliveries counts the deliveries dropped while it was paused
	// (see DeliveryDropped).
	DroppedDeliveries int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Matches reports whether the webhook wants events of type eventType now:
// it is active and subscribes to them.
func (w Webhook) Matches(eventType string) bool {
	return w.Active && w.Subscribes(eventType)
}

// Subscribes reports whether the webhook's event types include eventType
// ("*" includes every type), active or paused.
func (w Webhook) Subscribes(eventType string) bool {
	for _, t := range w.EventTypes {
		if t == "*" || t == eventType {
			return true
		}
	}
	return false
}

// WebhookData is the data of webhook.created and webhook.updated events
// (never the secret).
type WebhookData struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Active     bool     `json:"active"`
}

// WebhookSecretRotated is the data of webhook.secret_rotated.
type WebhookSecretRotated struct {
	PreviousSecretUntil time.Time `json:"previous_secret_until"`
}

// WebhookSecrets are a webhook's sealed secrets as the store keeps them.
type WebhookSecrets struct {
	Current             []byte
	Previous            []byte
	PreviousSecretUntil *time.Time
}

// Delivery is one event for one webhook: recorded before the first
// attempt, unique per (webhook, event), retried until it succeeds or runs
// out of attempts.
type Delivery struct {
	ID            uuid.UUID
	WebhookID     uuid.UUID
	WorkspaceID   uuid.UUID
	EventID       uuid.UUID
	EventType     string
	StreamID      uuid.UUID
	StreamVersion int64
	Payload       []byte
	Status        string
	Attempts      int
	MaxAttempts   int
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Log           []DeliveryAttempt
	// Held marks a delivery being recorded for a paused webhook: recording
	// it checks the webhook's held cap (MaxHeldDeliveries).
	Held bool
	// ReplayID is the replay that made the delivery (uuid.Nil for a live
	// one); its attempts carry X-HDF-Replay: true.
	ReplayID uuid.UUID
}

// MaxReplayEvents is how many events one webhook replay may re-send.
const MaxReplayEvents = 100_000

// EventRange selects a workspace's events in commit order: those after
// After (the zero Position: from the first) up to Upto, inclusive, whose
// occurred_at is at or after From and before To (nil: unbounded), of
// Types (nil: every type). Internal notes are never part of a range
// (webhooks never send them).
type EventRange struct {
	WorkspaceID uuid.UUID
	After, Upto Position
	From, To    *time.Time
	Types       []string
}

// WebhookReplay is a range of events re-sent to a webhook as new
// deliveries (ReplayID set). From, To and EventTypes are as requested;
// Range is what they select, fixed at creation (Total events). Enqueued
// counts the deliveries recorded so far, Cursor is the last event they
// reached; the other counts are of its deliveries by status.
type WebhookReplay struct {
	ID, WebhookID, WorkspaceID uuid.UUID
	From, To                   string
	EventTypes                 []string
	Range                      EventRange
	Total, Enqueued            int
	Cursor                     Position
	Done                       bool // every delivery recorded
	Delivered, Failed, Pending int
	Dropped, Cancelled         int
	CreatedAt                  time.Time
	EnqueuedAt                 *time.Time
}

// DeliveryAttempt is one try of a delivery, for the failure log.
type DeliveryAttempt struct {
	Attempt      int
	URL          string
	StatusCode   int
	ResponseBody string
	ErrorClass   string
	Error        string
	StartedAt    time.Time
	Duration     time.Duration
}

// WebhookSecretAAD is the additional data a webhook's secret is sealed
// with, so a sealed secret copied to another webhook does not open.
func WebhookSecretAAD(workspaceID, webhookID uuid.UUID) []byte {
	return []byte("webhook-secret:" + workspaceID.String() + ":" + webhookID.String())
}

// webhookBody is the body of a delivery.
type webhookBody struct {
	ID            uuid.UUID       `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	WorkspaceID   uuid.UUID       `json:"workspace_id"`
	OccurredAt    string          `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
}

// WebhookBody returns the body a webhook delivery of e POSTs (schema
// <Type>Event of the OpenAPI document's webhooks section):
// {"id", "type", "schema_version", "workspace_id", "occurred_at", "data"}.
func WebhookBody(e Event) ([]byte, error) {
	return MarshalJSON(webhookBody{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, WorkspaceID: e.WorkspaceID,
		OccurredAt: e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Data: e.Data})
}
