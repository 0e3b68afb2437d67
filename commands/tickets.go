package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Service handles commands and consistent single-entity reads. It is safe
// for concurrent use.
type Service struct {
	store Store
}

// New returns a Service on store.
func New(store Store) *Service { return &Service{store: store} }

// CreateTicket is the body of POST /v1/tickets.
type CreateTicket struct {
	Subject      string           `json:"subject"`
	Customer     CustomerRef      `json:"customer"`
	Message      NewTicketMessage `json:"message"`
	Priority     string           `json:"priority"`
	Status       string           `json:"status"`
	Tags         []string         `json:"tags"`
	CustomFields map[string]any   `json:"custom_fields"`
	ExternalID   *string          `json:"external_id"`
}

// CustomerRef names the customer a ticket is for, by email.
type CustomerRef struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// NewTicketMessage is the first message of a new ticket.
type NewTicketMessage struct {
	Body       string `json:"body"`
	AuthorType string `json:"author_type"`
}

// validate checks every field, returning all problems at once as
// EValidation, and fills in defaults and normalized forms.
func (c *CreateTicket) validate() error {
	var p problems
	p.text("subject", c.Subject, true, MaxSubjectLen)
	c.Customer.Email = p.email("customer.email", c.Customer.Email)
	p.text("customer.name", c.Customer.Name, false, MaxNameLen)
	p.text("message.body", c.Message.Body, true, MaxMessageBodyLen)
	if c.Message.AuthorType == "" {
		c.Message.AuthorType = helpdeskflow.AuthorCustomer
	}
	p.oneOf("message.author_type", c.Message.AuthorType, helpdeskflow.AuthorCustomer, helpdeskflow.AuthorAgent)
	if c.Priority == "" {
		c.Priority = helpdeskflow.PriorityNormal
	}
	p.oneOf("priority", c.Priority, helpdeskflow.PriorityLow, helpdeskflow.PriorityNormal, helpdeskflow.PriorityHigh, helpdeskflow.PriorityUrgent)
	if c.Status == "" {
		c.Status = helpdeskflow.StatusNew
	}
	p.oneOf("status", c.Status, helpdeskflow.StatusNew, helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved)
	c.Tags = p.tags("tags", c.Tags)
	p.customFields("custom_fields", c.CustomFields)
	if c.ExternalID != nil {
		p.text("external_id", *c.ExternalID, true, MaxExternalIDLen)
	}
	return p.err()
}

// CreateTicket validates and sanitizes cmd, upserts its customer by
// normalized email and creates the ticket, all in one transaction. It
// returns the ticket as GetTicket would (with internal notes), or
// EValidation listing every invalid field.
func (s *Service) CreateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd CreateTicket) (helpdeskflow.Ticket, error) {
	if err := cmd.validate(); err != nil {
		return helpdeskflow.Ticket{}, err
	}
	body, err := sanitizedBody("message.body", cmd.Message.Body)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	ticketID := uuid.New()
	var ticketEvents, customerEvents []helpdeskflow.Event
	err = s.store.Transact(ctx, func(tx Tx) error {
		customerID, created, history, err := tx.ReserveCustomerEmail(ctx, workspaceID, cmd.Customer.Email, uuid.New())
		if err != nil {
			return err
		}
		customerRef := helpdeskflow.StreamRef{ID: customerID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamCustomer}
		if created {
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventCustomerCreated, helpdeskflow.CustomerCreated{
				Email: cmd.Customer.Email, Name: cmd.Customer.Name,
			})
			if err != nil {
				return err
			}
			if _, err := tx.Append(ctx, customerRef, 0, md, []helpdeskflow.NewEvent{e}); err != nil {
				return err
			}
			customerEvents = []helpdeskflow.Event{stored(e, customerRef, 1, md)}
		} else {
			customerEvents = history
		}
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketCreated, helpdeskflow.TicketCreated{
			Subject: cmd.Subject, Status: cmd.Status, Priority: cmd.Priority, Type: "question",
			Channel: md.Channel, Tags: cmd.Tags, CustomerID: customerID, ExternalID: cmd.ExternalID,
			CustomFields: cmd.CustomFields,
			Message: helpdeskflow.MessageAdded{
				ID: uuid.New(), AuthorType: cmd.Message.AuthorType, Body: body, BodyText: PlainText(body),
			},
		})
		if err != nil {
			return err
		}
		tx.LinkTicket(ctx, workspaceID, customerID, ticketID)
		ticketRef := helpdeskflow.StreamRef{ID: ticketID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
		if _, err := tx.Append(ctx, ticketRef, 0, md, []helpdeskflow.NewEvent{e}); err != nil {
			return err
		}
		ticketEvents = []helpdeskflow.Event{stored(e, ticketRef, 1, md)}
		return nil
	})
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	t, err := foldTicket(ticketEvents)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return withCustomer(t, customerEvents, true)
}

// stored is the event as the store keeps it, for answering without reading
// it back.
func stored(e helpdeskflow.NewEvent, ref helpdeskflow.StreamRef, version int64, md helpdeskflow.Metadata) helpdeskflow.Event {
	return helpdeskflow.Event{
		ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, StreamID: ref.ID, StreamType: ref.Type,
		Version: version, WorkspaceID: ref.WorkspaceID, OccurredAt: e.OccurredAt, Data: e.Data, Metadata: md,
	}
}

// GetTicket returns ticket id of the workspace composed from the event
// store, so it reflects every acknowledged write. Internal notes are left
// out unless includeInternal. It returns ENotFound for an id that is not a
// ticket of this workspace.
func (s *Service) GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error) {
	ticketEvents, err := s.store.Load(ctx, workspaceID, id)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	if ticketEvents[0].StreamType != helpdeskflow.StreamTicket {
		return helpdeskflow.Ticket{}, helpdeskflow.Errorf(helpdeskflow.ENotFound, "ticket %s not found", id)
	}
	t, err := foldTicket(ticketEvents)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	customerEvents, err := s.store.Load(ctx, workspaceID, t.CustomerID)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return withCustomer(t, customerEvents, includeInternal)
}

func foldTicket(events []helpdeskflow.Event) (helpdeskflow.Ticket, error) {
	var t helpdeskflow.Ticket
	for _, e := range events {
		if err := helpdeskflow.ApplyTicket(&t, e); err != nil {
			return helpdeskflow.Ticket{}, err
		}
	}
	return t, nil
}

// withCustomer completes a ticket with its customer's details and drops
// internal notes unless includeInternal.
func withCustomer(t helpdeskflow.Ticket, customerEvents []helpdeskflow.Event, includeInternal bool) (helpdeskflow.Ticket, error) {
	var c helpdeskflow.Customer
	for _, e := range customerEvents {
		if err := helpdeskflow.ApplyCustomer(&c, e); err != nil {
			return helpdeskflow.Ticket{}, err
		}
	}
	t.Customer = &c
	if !includeInternal {
		public := t.Messages[:0:0]
		for _, m := range t.Messages {
			if !m.Internal {
				public = append(public, m)
			}
		}
		t.Messages = public
	}
	return t, nil
}
