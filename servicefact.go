package helpdeskflow

import (
	"net/url"
	"time"

	"github.com/google/uuid"
)

// Service facts: what the dispatcher's workers did that no event records
// (the outcome of each webhook delivery attempt, the result of each mailbox
// sync run). Their JSON encodings are the values of the records on the
// service facts topic (kafka.TopicServiceFacts, the kind in the record's
// hdf-fact header) and become rows of ClickHouse's webhook_attempts and
// mail_syncs tables.
const (
	// FactWebhookAttempt is the kind of a WebhookAttemptFact.
	FactWebhookAttempt = "webhook_attempt"
	// FactMailSync is the kind of a MailSyncFact.
	FactMailSync = "mail_sync"
)

// Outcomes of a WebhookAttemptFact.
const (
	// AttemptSucceeded: the receiver answered 2xx.
	AttemptSucceeded = "succeeded"
	// AttemptRetrying: the attempt failed and the delivery will be tried
	// again.
	AttemptRetrying = "retrying"
	// AttemptFailed: the attempt failed and it was the delivery's last.
	AttemptFailed = "failed"
)

// WebhookAttemptFact is one webhook delivery attempt as it ended.
type WebhookAttemptFact struct {
	// Time is when the attempt started, UTC.
	Time        time.Time `json:"time"`
	WorkspaceID uuid.UUID `json:"workspace_id"`
	WebhookID   uuid.UUID `json:"webhook_id"`
	DeliveryID  uuid.UUID `json:"delivery_id"`
	EventID     uuid.UUID `json:"event_id"`
	EventType   string    `json:"event_type"`
	// Endpoint is the webhook's URL without user information, query and
	// fragment (WebhookEndpoint), which may hold credentials.
	Endpoint string `json:"endpoint"`
	// Attempt is the delivery's attempt number, from 1.
	Attempt int `json:"attempt"`
	// Outcome is AttemptSucceeded, AttemptRetrying or AttemptFailed.
	Outcome string `json:"outcome"`
	// ErrorClass names why the attempt failed (the sender's classes:
	// timeout, http_status, …), empty on success.
	ErrorClass string `json:"error_class,omitempty"`
	// StatusCode is the receiver's HTTP status, 0 when none arrived.
	StatusCode int           `json:"status_code"`
	Duration   time.Duration `json:"duration_ns"`
}

// WebhookEndpoint is rawURL without user information, query and fragment:
// what a fact or a metric may name of a webhook's URL. A URL that does not
// parse gives "".
func WebhookEndpoint(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// Outcomes of a MailSyncFact.
const (
	// SyncSucceeded: the run read everything new.
	SyncSucceeded = "succeeded"
	// SyncPartial: the run reached its deadline after importing something;
	// the next run continues at once.
	SyncPartial = "partial"
	// SyncFailed: the run failed (ErrorClass says why); the sync retries
	// with backoff.
	SyncFailed = "failed"
)

// MailSyncFact is one mailbox sync run as it ended.
type MailSyncFact struct {
	// Time is when the run ended, UTC.
	Time time.Time `json:"time"`
	// RunID identifies the run (a redelivered record has the same).
	RunID        uuid.UUID `json:"run_id"`
	WorkspaceID  uuid.UUID `json:"workspace_id"`
	ConnectionID uuid.UUID `json:"connection_id"`
	// Provider is the connection's ("google", "outlook").
	Provider string `json:"provider"`
	// Imported counts the messages that made or joined a ticket, Skipped
	// those recorded without a ticket (auto-replies, too large, refused),
	// Duplicates those read again that were already recorded, and Failed
	// those whose import failed (which ends the run).
	Imported   int `json:"imported"`
	Skipped    int `json:"skipped"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
	// Outcome is SyncSucceeded, SyncPartial or SyncFailed; ErrorClass the
	// failure's class (mailsync's classes: timeout, rate_limited, …),
	// empty unless failed.
	Outcome    string        `json:"outcome"`
	ErrorClass string        `json:"error_class,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}
