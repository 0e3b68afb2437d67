package helpdeskflow

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Ticket statuses, priorities and message author types.
const (
	StatusNew     = "new"
	StatusOpen    = "open"
	StatusPending = "pending"
	StatusOnHold  = "on_hold"
	StatusSolved  = "solved"
	StatusClosed  = "closed"

	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
	PriorityUrgent = "urgent"

	AuthorCustomer = "customer"
	AuthorAgent    = "agent"
)

// Ticket is the whole state of one ticket. Its JSON shape on the API is
// the http package's to decide.
type Ticket struct {
	ID           uuid.UUID
	WorkspaceID  uuid.UUID
	Subject      string
	Status       string
	Priority     string
	Type         string
	Channel      string
	Tags         []string
	AssigneeID   *string
	Team         *string
	ExternalID   *string
	CustomFields map[string]any
	CustomerID   uuid.UUID
	Customer     *Customer
	Messages     []Message
	SLA          any
	Version      int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Message is one entry of a ticket's conversation. Body is sanitized HTML,
// BodyText its plain-text rendering.
type Message struct {
	ID         uuid.UUID
	AuthorType string
	Body       string
	BodyText   string
	Internal   bool
	CreatedAt  time.Time
}

// TicketCreated is the data of a ticket.created event.
type TicketCreated struct {
	Subject      string         `json:"subject"`
	Status       string         `json:"status"`
	Priority     string         `json:"priority"`
	Type         string         `json:"type"`
	Channel      string         `json:"channel"`
	Tags         []string       `json:"tags"`
	CustomerID   uuid.UUID      `json:"customer_id"`
	AssigneeID   *string        `json:"assignee_id,omitempty"`
	Team         *string        `json:"team,omitempty"`
	ExternalID   *string        `json:"external_id,omitempty"`
	CustomFields map[string]any `json:"custom_fields,omitempty"`
	Message      MessageAdded   `json:"message"`
}

// MessageAdded is the data of a ticket.message_added event, and the first
// message inside ticket.created.
type MessageAdded struct {
	ID         uuid.UUID `json:"id"`
	AuthorType string    `json:"author_type"`
	Body       string    `json:"body"`
	BodyText   string    `json:"body_text"`
	Internal   bool      `json:"internal"`
}

// ApplyTicket folds one event of a ticket's stream into t. It returns an
// EInternal error for an event type it does not know or data it cannot
// decode, because that means the stream and the code disagree.
func ApplyTicket(t *Ticket, e Event) error {
	switch e.Type {
	case EventTicketCreated:
		var d TicketCreated
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return &Error{Code: EInternal, Message: "decode ticket.created", Err: err}
		}
		*t = Ticket{
			ID: e.StreamID, WorkspaceID: e.WorkspaceID,
			Subject: d.Subject, Status: d.Status, Priority: d.Priority, Type: d.Type, Channel: d.Channel,
			Tags: nonNil(d.Tags), AssigneeID: d.AssigneeID, Team: d.Team, ExternalID: d.ExternalID,
			CustomFields: d.CustomFields, CustomerID: d.CustomerID,
			Messages:  []Message{d.Message.toMessage(e.OccurredAt)},
			CreatedAt: e.OccurredAt,
		}
		if t.CustomFields == nil {
			t.CustomFields = map[string]any{}
		}
	case EventTicketMessageAdded:
		var d MessageAdded
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return &Error{Code: EInternal, Message: "decode ticket.message_added", Err: err}
		}
		t.Messages = append(t.Messages, d.toMessage(e.OccurredAt))
	default:
		return &Error{Code: EInternal, Message: fmt.Sprintf("ticket stream has unknown event type %q", e.Type), Err: ErrUnknownEventType}
	}
	t.Version = e.Version
	t.UpdatedAt = e.OccurredAt
	return nil
}

func (m MessageAdded) toMessage(at time.Time) Message {
	return Message{ID: m.ID, AuthorType: m.AuthorType, Body: m.Body, BodyText: m.BodyText, Internal: m.Internal, CreatedAt: at}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TicketFilter selects tickets of a list. Empty fields do not filter. Limit
// is 1 to 100 (default 25); Cursor is the NextCursor of the previous page.
type TicketFilter struct {
	Status       string
	Priority     string
	Tag          string
	CustomerID   uuid.UUID
	Team         string
	UpdatedAfter time.Time
	Limit        int
	Cursor       string
}

// TicketPage is one page of a ticket list, newest first. NextCursor is
// empty on the last page.
type TicketPage struct {
	Tickets    []Ticket
	NextCursor string
}
