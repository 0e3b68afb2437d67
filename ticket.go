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
	// MailboxID is the connected mailbox a mail ticket came from (its
	// agents' public replies are sent through it); nil for other tickets.
	MailboxID *uuid.UUID
	Customer  *Customer
	Messages  []Message
	SLA       *TicketSLA // nil when no SLA policy applies
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
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
	MailboxID    *uuid.UUID     `json:"mailbox_id,omitempty"`
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

// Change is a field's value before and after an update.
type Change[T any] struct {
	Old T `json:"old"`
	New T `json:"new"`
}

// TicketUpdated is the data of a ticket.updated event: the fields an update
// changed, each with its old and new value. CustomFields holds only the
// custom fields that changed; a nil New removes the field.
type TicketUpdated struct {
	Subject      *Change[string]        `json:"subject,omitempty"`
	Status       *Change[string]        `json:"status,omitempty"`
	Priority     *Change[string]        `json:"priority,omitempty"`
	AssigneeID   *Change[*string]       `json:"assignee_id,omitempty"`
	Team         *Change[*string]       `json:"team,omitempty"`
	Tags         *Change[[]string]      `json:"tags,omitempty"`
	CustomFields map[string]Change[any] `json:"custom_fields,omitempty"`
}

// Empty reports whether u changes nothing.
func (u TicketUpdated) Empty() bool {
	return u.Subject == nil && u.Status == nil && u.Priority == nil && u.AssigneeID == nil &&
		u.Team == nil && u.Tags == nil && len(u.CustomFields) == 0
}

// ticketTransitions lists, for each status, the statuses a ticket may move
// to. A closed ticket is final; only a solved one can be closed; nothing
// goes back to new.
var ticketTransitions = map[string][]string{
	StatusNew:     {StatusOpen, StatusPending, StatusOnHold, StatusSolved},
	StatusOpen:    {StatusPending, StatusOnHold, StatusSolved},
	StatusPending: {StatusOpen, StatusOnHold, StatusSolved},
	StatusOnHold:  {StatusOpen, StatusPending, StatusSolved},
	StatusSolved:  {StatusOpen, StatusClosed},
	StatusClosed:  {},
}

// TicketTransitionAllowed reports whether a ticket may go from status from
// to status to, and the statuses it may go to.
func TicketTransitionAllowed(from, to string) (bool, []string) {
	allowed := ticketTransitions[from]
	for _, s := range allowed {
		if s == to {
			return true, allowed
		}
	}
	return false, allowed
}

// ApplyTicket folds one event of a ticket's stream into t. It returns an
// EInternal error for an event type it does not know or data it cannot
// decode, because that means the stream and the code disagree.
//
// It keeps t.SLA by the clock rules the sla package documents, taking each
// event's OccurredAt as the time: ticket.sla_policy_applied starts,
// re-targets or removes the clocks; a status change in ticket.updated
// pauses, resumes, fulfils or (solved to open) reopens them; a public
// agent message in ticket.message_added fulfils the first response;
// ticket.sla_warning and ticket.sla_breached record their point (a point
// for a target the ticket has no clock for changes nothing). It replaces
// t.SLA rather than modifying the TicketSLA it points to.
func ApplyTicket(t *Ticket, e Event) error {
	switch e.Type {
	case EventTicketCreated:
		d, err := dataOf[TicketCreated](e)
		if err != nil {
			return err
		}
		*t = Ticket{
			ID: e.StreamID, WorkspaceID: e.WorkspaceID,
			Subject: d.Subject, Status: d.Status, Priority: d.Priority, Type: d.Type, Channel: d.Channel,
			Tags: nonNil(d.Tags), AssigneeID: d.AssigneeID, Team: d.Team, ExternalID: d.ExternalID,
			CustomFields: d.CustomFields, CustomerID: d.CustomerID, MailboxID: d.MailboxID,
			Messages:  []Message{d.Message.toMessage(e.OccurredAt)},
			CreatedAt: e.OccurredAt,
		}
		if t.CustomFields == nil {
			t.CustomFields = map[string]any{}
		}
	case EventTicketMessageAdded:
		d, err := dataOf[MessageAdded](e)
		if err != nil {
			return err
		}
		t.Messages = append(t.Messages, d.toMessage(e.OccurredAt))
		applySLAMessage(t, d, e.OccurredAt)
	case EventTicketUpdated:
		d, err := dataOf[TicketUpdated](e)
		if err != nil {
			return err
		}
		d.applyTo(t)
		if d.Status != nil {
			applySLAStatus(t, d.Status.Old, d.Status.New, e.OccurredAt)
		}
	case EventTicketCustomerChanged:
		d, err := dataOf[TicketCustomerChanged](e)
		if err != nil {
			return err
		}
		t.CustomerID = d.New
	case EventTicketSLAPolicyApplied:
		if err := applySLAPolicy(t, e.Data, e.OccurredAt); err != nil {
			return err
		}
	case EventTicketSLAWarning, EventTicketSLABreached:
		if err := applySLAPoint(t, e.Type, e.Data, e.OccurredAt); err != nil {
			return err
		}
	case EventTicketNotificationRequested:
		// A request to the dispatcher: the ticket's fields stay as they are.
	default:
		return &Error{Code: EInternal, Message: fmt.Sprintf("ticket stream has unknown event type %q", e.Type), Err: ErrUnknownEventType}
	}
	t.Version = e.Version
	t.UpdatedAt = e.OccurredAt
	return nil
}

func (u TicketUpdated) applyTo(t *Ticket) {
	if u.Subject != nil {
		t.Subject = u.Subject.New
	}
	if u.Status != nil {
		t.Status = u.Status.New
	}
	if u.Priority != nil {
		t.Priority = u.Priority.New
	}
	if u.AssigneeID != nil {
		t.AssigneeID = u.AssigneeID.New
	}
	if u.Team != nil {
		t.Team = u.Team.New
	}
	if u.Tags != nil {
		t.Tags = nonNil(u.Tags.New)
	}
	if len(u.CustomFields) > 0 {
		t.CustomFields = applyKeyChanges(t.CustomFields, u.CustomFields)
	}
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

// IsInternalNote reports whether e adds an internal note to a ticket: such
// events are shown only to admin keys that ask for internal notes.
func IsInternalNote(e Event) bool {
	if e.Type != EventTicketMessageAdded {
		return false
	}
	var m struct {
		Internal bool `json:"internal"`
	}
	return json.Unmarshal(e.Data, &m) == nil && m.Internal
}
