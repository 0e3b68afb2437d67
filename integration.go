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

// SlackIntegration is a workspace's Slack connection (never its token).
type SlackIntegration struct {
	WorkspaceID uuid.UUID
	Channels    SlackChannels
	Status      string
	TeamID      string
	Team        string
	LastError   string
	ConnectedAt time.Time
	UpdatedAt   time.Time
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
