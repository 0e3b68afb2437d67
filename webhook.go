package helpdeskflow

import (
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
// before it was sent; it is never attempted.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

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
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Matches reports whether the webhook wants events of type eventType.
func (w Webhook) Matches(eventType string) bool {
	if !w.Active {
		return false
	}
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
