package client

import (
	"encoding/json"
	"time"
)

// Ticket is a ticket as GET /v1/tickets/{id} shows it (schema Ticket). A
// listed ticket has no messages.
type Ticket struct {
	ID           string           `json:"id"`
	Subject      string           `json:"subject"`
	Status       string           `json:"status"`
	Priority     string           `json:"priority"`
	Type         string           `json:"type"`
	Channel      string           `json:"channel"`
	Tags         []string         `json:"tags"`
	AssigneeID   *string          `json:"assignee_id"`
	Team         *string          `json:"team"`
	ExternalID   *string          `json:"external_id"`
	CustomFields map[string]any   `json:"custom_fields"`
	CustomerID   string           `json:"customer_id"`
	Customer     *CustomerSummary `json:"customer"`
	Messages     []Message        `json:"messages"`
	SLA          *TicketSLA       `json:"sla"`
	Version      int64            `json:"version"`
	CreatedAt    time.Time        `json:"created_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
}

// TicketSLA is a ticket's SLA status (schema TicketSLA); its targets are
// kept as the API sends them.
type TicketSLA struct {
	PolicyID      string            `json:"policy_id"`
	PolicyVersion int64             `json:"policy_version"`
	PolicyName    string            `json:"policy_name"`
	Targets       []json.RawMessage `json:"targets"`
}

// Message is one message of a ticket (schema Message).
type Message struct {
	ID         string    `json:"id"`
	AuthorType string    `json:"author_type"`
	Body       string    `json:"body"`
	BodyText   string    `json:"body_text"`
	Internal   bool      `json:"internal"`
	CreatedAt  time.Time `json:"created_at"`
}

// TicketCreate is the body of POST /v1/tickets (schema TicketCreate).
type TicketCreate struct {
	Subject      string         `json:"subject"`
	Customer     TicketCustomer `json:"customer"`
	Message      TicketMessage  `json:"message"`
	Priority     string         `json:"priority,omitempty"`
	Status       string         `json:"status,omitempty"`
	Tags         []string       `json:"tags,omitempty"`
	CustomFields map[string]any `json:"custom_fields,omitempty"`
	ExternalID   *string        `json:"external_id,omitempty"`
}

// TicketCustomer names a new ticket's customer by email.
type TicketCustomer struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// TicketMessage is a new ticket's first message.
type TicketMessage struct {
	Body       string `json:"body"`
	AuthorType string `json:"author_type,omitempty"`
}

// TicketUpdate is the body of PATCH /v1/tickets/{id} (schema
// TicketUpdate): nil and empty fields are left out, so they do not change.
// Clear the assignee or team with ClearAssignee or ClearTeam.
type TicketUpdate struct {
	Subject      *string        `json:"subject,omitempty"`
	Status       *string        `json:"status,omitempty"`
	Priority     *string        `json:"priority,omitempty"`
	AssigneeID   *string        `json:"assignee_id,omitempty"`
	Team         *string        `json:"team,omitempty"`
	TagsAdd      []string       `json:"tags_add,omitempty"`
	TagsRemove   []string       `json:"tags_remove,omitempty"`
	CustomFields map[string]any `json:"custom_fields,omitempty"`
	// ClearAssignee and ClearTeam send null for the field.
	ClearAssignee bool `json:"-"`
	ClearTeam     bool `json:"-"`
}

// MarshalJSON sends the update's fields, with null for a cleared assignee
// or team.
func (u TicketUpdate) MarshalJSON() ([]byte, error) {
	type plain TicketUpdate
	b, err := json.Marshal(plain(u))
	if err != nil || (!u.ClearAssignee && !u.ClearTeam) {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if u.ClearAssignee {
		m["assignee_id"] = json.RawMessage("null")
	}
	if u.ClearTeam {
		m["team"] = json.RawMessage("null")
	}
	return json.Marshal(m)
}

// MessageCreate is the body of POST /v1/tickets/{id}/messages (schema
// MessageCreate).
type MessageCreate struct {
	Body       string `json:"body"`
	AuthorType string `json:"author_type,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
}

// Customer is a customer as GET /v1/customers/{id} shows it (schema
// Customer): its summary and its tickets.
type Customer struct {
	CustomerSummary
	// TicketIDs are the customer's tickets, oldest first.
	TicketIDs []string `json:"ticket_ids"`
}

// CustomerSummary is a customer without its tickets, as a ticket embeds
// it and as lists show it (schema CustomerSummary).
type CustomerSummary struct {
	ID             string          `json:"id"`
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	ExternalID     *string         `json:"external_id"`
	Tags           []string        `json:"tags"`
	CustomFields   map[string]any  `json:"custom_fields"`
	Metadata       map[string]any  `json:"metadata"`
	LinkedProfiles []LinkedProfile `json:"linked_profiles"`
	Version        int64           `json:"version"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// LinkedProfile is a customer's profile in another system (schema
// LinkedProfile).
type LinkedProfile struct {
	Provider   string         `json:"provider"`
	ExternalID string         `json:"external_id"`
	URL        string         `json:"url,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
}

// CustomerUpsert is the body of POST /v1/customers (schema
// CustomerUpsert).
type CustomerUpsert struct {
	Email          string          `json:"email"`
	Name           *string         `json:"name,omitempty"`
	ExternalID     *string         `json:"external_id,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	CustomFields   map[string]any  `json:"custom_fields,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`
	LinkedProfiles []LinkedProfile `json:"linked_profiles,omitempty"`
}

// CustomerUpdate is the body of PATCH /v1/customers/{id} (schema
// CustomerUpdate).
type CustomerUpdate struct {
	Email          *string         `json:"email,omitempty"`
	Name           *string         `json:"name,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	CustomFields   map[string]any  `json:"custom_fields,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`
	LinkedProfiles []LinkedProfile `json:"linked_profiles,omitempty"`
}

// Webhook is a webhook subscription (schema Webhook). Secret is set only
// in the answer of CreateWebhook.
type Webhook struct {
	ID                  string     `json:"id"`
	URL                 string     `json:"url"`
	EventTypes          []string   `json:"event_types"`
	Active              bool       `json:"active"`
	Secret              string     `json:"secret,omitempty"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// WebhookCreate is the body of POST /v1/webhooks (schema WebhookCreate).
type WebhookCreate struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Active     *bool    `json:"active,omitempty"`
}

// WebhookUpdate is the body of PATCH /v1/webhooks/{id} (schema
// WebhookUpdate).
type WebhookUpdate struct {
	URL        *string  `json:"url,omitempty"`
	EventTypes []string `json:"event_types,omitempty"`
	Active     *bool    `json:"active,omitempty"`
}

// Delivery is one event's delivery to a webhook (schema Delivery); its
// attempt log is kept as the API sends it.
type Delivery struct {
	ID            string            `json:"id"`
	WebhookID     string            `json:"webhook_id"`
	EventID       string            `json:"event_id"`
	EventType     string            `json:"event_type"`
	Status        string            `json:"status"`
	Attempts      int               `json:"attempts"`
	MaxAttempts   int               `json:"max_attempts"`
	NextAttemptAt *time.Time        `json:"next_attempt_at"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	AttemptLog    []json.RawMessage `json:"attempt_log"`
}

// Event is one event of the change feed (schema Event). Data is the
// event type's body (see the OpenAPI document's webhooks section for each
// type's schema), as stored.
type Event struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	StreamID      string          `json:"stream_id"`
	StreamType    string          `json:"stream_type"`
	Version       int64           `json:"version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
	Metadata      EventMetadata   `json:"metadata"`
}

// EventMetadata says who caused an event, through which channel, in which
// request (schema EventMetadata).
type EventMetadata struct {
	Actor         Actor  `json:"actor"`
	Channel       string `json:"channel"`
	RequestID     string `json:"request_id,omitempty"`
	RuleID        string `json:"rule_id,omitempty"`
	RuleVersion   int64  `json:"rule_version,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// Actor is who caused an event (schema Actor).
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// list is a page of a list answer.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// eventPage is a page of the change feed (schema EventPage).
type eventPage struct {
	Events     []Event `json:"events"`
	NextCursor string  `json:"next_cursor"`
}
