package helpdeskflow

import (
	"time"

	"github.com/google/uuid"
)

// Slack integration statuses, events and notification kinds.
const (
	IntegrationActive            = "active"
	IntegrationNeedsRevalidation = "needs_revalidation"

	EventIntegrationConnected         = "integration.connected"
	EventIntegrationDisconnected      = "integration.disconnected"
	EventIntegrationNeedsRevalidation = "integration.needs_revalidation"
	EventIntegrationRevalidated       = "integration.revalidated"
)

// SlackChannels names the channel for each kind of notification; an empty
// one sends none of that kind.
type SlackChannels struct {
	NewTicket  string `json:"new_ticket"`
	Escalation string `json:"escalation"`
	SLAWarning string `json:"sla_warning"`
	SLABreach  string `json:"sla_breach"`
}

// SlackIntegration is a workspace's Slack connection (never its token):
// the one a workspace has, whether its bot token was pasted or installed
// through OAuth.
type SlackIntegration struct {
	WorkspaceID uuid.UUID
	Channels    SlackChannels
	Status      string
	TeamID      string
	Team        string
	LastError   string
	// ConnectionID is the OAuth connection the bot token came from
	// (SlackSourceOAuth); uuid.Nil for a pasted token (SlackSourceToken).
	ConnectionID uuid.UUID
	ConnectedAt  time.Time
	UpdatedAt    time.Time
}

// Where a Slack integration's bot token came from.
const (
	// SlackSourceToken: pasted (PUT /v1/integrations/slack), as for a
	// self-hosted Slack app.
	SlackSourceToken = "token"
	// SlackSourceOAuth: installed through OAuth v2
	// (POST /v1/integrations/slack/connect and its callback).
	SlackSourceOAuth = "oauth"
)

// Source says where the bot token came from: SlackSourceOAuth or
// SlackSourceToken.
func (in SlackIntegration) Source() string {
	if in.ConnectionID != uuid.Nil {
		return SlackSourceOAuth
	}
	return SlackSourceToken
}

// IntegrationChanged is the data of the integration.* events.
type IntegrationChanged struct {
	Provider string `json:"provider"`
	Team     string `json:"team,omitempty"`
	Error    string `json:"error,omitempty"`
}

// SlackTokenAAD is the additional data a workspace's Slack token is sealed
// with.
func SlackTokenAAD(workspaceID uuid.UUID) []byte {
	return []byte("slack-token:" + workspaceID.String())
}

// Slack notification decisions.
const (
	SlackPosted  = "posted"
	SlackSkipped = "skipped"
	SlackFailed  = "failed"
)

// SlackNotification is one notification the dispatcher decided on: posted,
// skipped (the integration needs revalidation) or failed, with why.
type SlackNotification struct {
	EventID, WorkspaceID, TicketID uuid.UUID
	Kind, Channel, Status, Error   string
	CreatedAt                      time.Time
}

// Connection statuses.
const (
	ConnectionPending           = "pending"
	ConnectionActive            = "active"
	ConnectionTokenExpired      = "token_expired"
	ConnectionNeedsRevalidation = "needs_revalidation"
	ConnectionDisabled          = "disabled"

	EventIntegrationTokenExpired = "integration.token_expired"
)

// Connection is a workspace's connection to an outside service through
// OAuth (Google for Gmail, Slack, Shopify, Stripe). Its tokens never leave
// the write side; Account names the connected account (a mailbox, a shop,
// a Stripe account); Details holds what the provider said about it.
type Connection struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Provider    string
	Status      string
	Account     string
	TokenExpiry *time.Time
	Scopes      string
	Details     map[string]any
	LastSyncAt  *time.Time
	// NextSyncAt is when a mailbox is synced next; SyncState is the
	// sync's cursor (JSON, the sync's own format; empty before the first).
	NextSyncAt *time.Time
	SyncState  []byte
	// SyncFailures counts the sync runs that failed since the last good
	// one.
	SyncFailures   int
	LastError      string
	LastErrorClass string
	LastErrorAt    *time.Time
	NextRetryAt    *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ConnectionTokens are a connection's sealed tokens as the store keeps
// them; Refresh is nil for providers that issue none.
type ConnectionTokens struct {
	Access, Refresh []byte
	// Version counts the times tokens were stored. A refresh stores its
	// outcome only over the version it started from, so tokens stored
	// meanwhile (by another refresh or a reconnect) are never overwritten.
	Version int64
	// Lease is the token refresh under way, if any.
	Lease RefreshLease
}

// RefreshLease is one process's claim on refreshing a connection's tokens:
// Token identifies the claim, Until is when it runs out (a process that
// dies mid-refresh holds it no longer). The zero value is no lease.
type RefreshLease struct {
	Token uuid.UUID
	Until time.Time
}

// ConnectionTokenAAD is the additional data a connection's token of kind
// ("access" or "refresh") is sealed with, so a ciphertext moved to another
// connection, workspace or kind does not open.
func ConnectionTokenAAD(workspaceID, connectionID uuid.UUID, kind string) []byte {
	return []byte("connection-token:" + kind + ":" + workspaceID.String() + ":" + connectionID.String())
}

// Integration job kinds and statuses.
const (
	// JobSlackNotification posts one Slack notification.
	JobSlackNotification = "slack_notification"
	// JobProfileLookup looks one customer up in one Shopify shop or
	// Stripe account.
	JobProfileLookup = "profile_lookup"

	JobPending = "pending"
	JobDone    = "done"
	JobFailed  = "failed"
)

// IntegrationJob is one call to an outside service that an event asked
// for (a Slack notification, a customer lookup in one connection), queued
// in Postgres by a dispatcher handler and run by the job worker, outside
// the Kafka consume loop. It is unique per (event, kind, connection), so a
// redelivered event queues nothing twice.
type IntegrationJob struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	// ConnectionID is the connection whose concurrency slots the job
	// takes: an OAuth connection's id, or for Slack the workspace id (a
	// workspace has one Slack integration).
	ConnectionID uuid.UUID
	Kind         string
	EventID      uuid.UUID
	// Payload is the kind's own JSON.
	Payload []byte
	// Attempt is the number of this run, from 1 (every claim counts);
	// MaxAttempts is the last run the worker makes before it fails the
	// job for good.
	Attempt, MaxAttempts int
	CreatedAt            time.Time
}

// LastAttempt reports whether a failure of this run fails the job for
// good.
func (j IntegrationJob) LastAttempt() bool { return j.Attempt >= j.MaxAttempts }

// JobResult is what one run of an IntegrationJob came to. Err nil: the job
// is done, with Outcome. Err set and Retry: a temporary failure, run again
// no sooner than RetryAfter (or the worker's backoff, whichever is later)
// unless it was the last attempt. Err set without Retry: failed for good.
type JobResult struct {
	// Outcome names a finished job's result with a word from a small fixed
	// set per kind ("posted", "skipped", "linked", "not_found"); it labels
	// metrics.
	Outcome string
	Err     error
	// ErrorClass is Err's class, from a small fixed set ("rate_limited",
	// "temporary", "channel_problem", "token_expired", …); it labels
	// metrics and is shown in the queue's last failure.
	ErrorClass string
	Retry      bool
	RetryAfter time.Duration
}

// IntegrationQueue is the state of one connection's jobs, as
// GET /v1/integrations/{id} shows it.
type IntegrationQueue struct {
	// Pending counts the jobs not finished yet (waiting, running or
	// waiting for a retry); OldestPendingAt is when the oldest was queued.
	Pending         int
	OldestPendingAt *time.Time
	// FailedLast24h counts the jobs that failed for good in the last 24
	// hours.
	FailedLast24h int
	LastFailure   *JobFailure
}

// JobFailure is the latest failed run of a connection's jobs.
type JobFailure struct {
	At         time.Time
	Kind       string
	ErrorClass string
	Error      string
	// Final is true when the job failed for good, false while it is
	// retried.
	Final bool
}
