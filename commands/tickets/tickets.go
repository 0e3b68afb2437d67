package tickets

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

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
	// mailbox is the connected mailbox a mail import comes from.
	mailbox *uuid.UUID
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

// Validate checks every field, returning all problems at once as
// EValidation, and fills in defaults and normalized forms: plain-text
// fields cleaned (subject and customer name with CleanLine and trimmed,
// tags as tags, custom field string values with CleanText). The message
// body is checked here and sanitized as HTML when the ticket is created.
func (c *CreateTicket) Validate() error {
	var p commands.Problems
	c.Subject = p.Line("subject", c.Subject, true, commands.MaxSubjectLen)
	c.Customer.Email = p.Email("customer.email", c.Customer.Email)
	c.Customer.Name = p.Line("customer.name", c.Customer.Name, false, commands.MaxNameLen)
	p.Text("message.body", c.Message.Body, true, commands.MaxMessageBodyLen)
	if c.Message.AuthorType == "" {
		c.Message.AuthorType = helpdeskflow.AuthorCustomer
	}
	p.OneOf("message.author_type", c.Message.AuthorType, helpdeskflow.AuthorCustomer, helpdeskflow.AuthorAgent)
	if c.Priority == "" {
		c.Priority = helpdeskflow.PriorityNormal
	}
	p.OneOf("priority", c.Priority, helpdeskflow.PriorityLow, helpdeskflow.PriorityNormal, helpdeskflow.PriorityHigh, helpdeskflow.PriorityUrgent)
	if c.Status == "" {
		c.Status = helpdeskflow.StatusNew
	}
	p.OneOf("status", c.Status, helpdeskflow.StatusNew, helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved)
	c.Tags = p.Tags("tags", c.Tags)
	p.CustomFields("custom_fields", c.CustomFields)
	if c.ExternalID != nil {
		p.Text("external_id", *c.ExternalID, true, commands.MaxExternalIDLen)
		p.Plain("external_id", *c.ExternalID, "an external id")
	}
	return p.Err()
}

// created is the data of the ticket.created event of a validated cmd with
// its sanitized body.
func (c *CreateTicket) created(customerID uuid.UUID, channel, body string) helpdeskflow.TicketCreated {
	return helpdeskflow.TicketCreated{
		Subject: c.Subject, Status: c.Status, Priority: c.Priority, Type: "question",
		Channel: channel, Tags: c.Tags, CustomerID: customerID, ExternalID: c.ExternalID,
		CustomFields: c.CustomFields, MailboxID: c.mailbox,
		Message: helpdeskflow.MessageAdded{
			ID: uuid.New(), AuthorType: c.Message.AuthorType, Body: body, BodyText: commands.PlainText(body),
		},
	}
}

// CreateTicket validates and sanitizes cmd, upserts its customer by
// normalized email and creates the ticket, all in one transaction. It
// returns the ticket as GetTicket would (with internal notes), or
// EValidation listing every invalid field, or EConflict when another
// ticket of the workspace has cmd's external id (the error's ExistingID
// names it; see helpdeskflow.ErrorExistingID). Of two concurrent creates
// with one external id, one creates and the other gets EConflict.
func (s *Service) CreateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd CreateTicket) (helpdeskflow.Ticket, error) {
	return s.createTicket(ctx, workspaceID, md, cmd, nil)
}

// CreateTicketKept is CreateTicket for a request that holds an
// Idempotency-Key: respond renders the answer from the created ticket, and
// the answer is kept with held in the transaction that creates the ticket
// (as CreateTickets keeps a batch's), so a retry after a crash replays it
// instead of creating the ticket twice. It returns the answer. Errors:
// CreateTicket's, respond's, and EIdempotencyKeyInUse when the claim on
// the key was lost (then nothing is stored).
func (s *Service) CreateTicketKept(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd CreateTicket,
	held helpdeskflow.HeldIdempotencyKey, respond func(helpdeskflow.Ticket) (helpdeskflow.IdempotentResponse, error)) (helpdeskflow.IdempotentResponse, error) {
	var resp helpdeskflow.IdempotentResponse
	_, err := s.createTicket(ctx, workspaceID, md, cmd, func(ctx context.Context, tx Tx, t helpdeskflow.Ticket) error {
		var err error
		if resp, err = respond(t); err != nil {
			return err
		}
		return tx.Responses.Complete(ctx, held, resp)
	})
	return resp, err
}

// createTicket is CreateTicket; keep, when not nil, runs in the
// transaction with the created ticket.
func (s *Service) createTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd CreateTicket,
	keep func(ctx context.Context, tx Tx, t helpdeskflow.Ticket) error) (helpdeskflow.Ticket, error) {
	if err := cmd.Validate(); err != nil {
		return helpdeskflow.Ticket{}, err
	}
	body, err := commands.SanitizedBody("message.body", cmd.Message.Body)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	var t helpdeskflow.Ticket
	// Keyed by the customer's email: creates for one customer run in
	// arrival order, each seeing the customer the one before created.
	err = s.store.TransactGrouped(ctx, "customer-email:"+workspaceID.String()+":"+cmd.Customer.Email, func(tx Tx) error {
		ticketEvents, customer, err := s.createTicketIn(ctx, tx, s.rules.Request(ctx, tx.Rules, workspaceID), workspaceID, md, &cmd, body)
		if err != nil {
			return err
		}
		folded, err := foldTicket(ticketEvents)
		if err != nil {
			return err
		}
		t = withCustomer(folded, customer, true)
		if keep != nil {
			return keep(ctx, tx, t)
		}
		return nil
	})
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return t, nil
}

// UpsertChanges is the update that a create with an external id that
// already exists asks of the existing ticket (POST /v1/tickets?upsert=true):
// the subject, status, priority and custom fields it gives, and its tags
// added. Its customer and message are not used.
func (c CreateTicket) UpsertChanges() UpdateTicket {
	u := UpdateTicket{TagsAdd: c.Tags, CustomFields: c.CustomFields}
	if c.Subject != "" {
		u.Subject = &c.Subject
	}
	if c.Status != "" {
		u.Status = &c.Status
	}
	if c.Priority != "" {
		u.Priority = &c.Priority
	}
	return u
}

// claimExternalID makes stream id of streamType the holder of externalID
// in tx; EConflict naming the holder (ExistingID) when another stream
// holds it.
func claimExternalID(ctx context.Context, tx Tx, workspaceID uuid.UUID, streamType, externalID string, id uuid.UUID) error {
	holder, err := tx.Customers.ClaimExternalID(ctx, workspaceID, streamType, externalID, id)
	if err != nil {
		return err
	}
	if holder != id {
		return externalIDTaken(streamType, externalID, holder)
	}
	return nil
}

// externalIDTaken is the EConflict of a create whose external id stream
// holder of streamType holds.
func externalIDTaken(streamType, externalID string, holder uuid.UUID) error {
	return &helpdeskflow.Error{Code: helpdeskflow.EConflict, ExistingID: holder,
		Message: fmt.Sprintf("%s %s already has external_id %q", streamType, holder, externalID),
		Details: []helpdeskflow.FieldProblem{{Field: "external_id", Problem: "already used by " + streamType + " " + holder.String()}}}
}

// FindTicket returns the ticket of the workspace that holds the
// integrator's external id, as GetTicket does (consistent: from the write
// side's index and the event store); ENotFound when none does.
func (s *Service) FindTicket(ctx context.Context, workspaceID uuid.UUID, externalID string, includeInternal bool) (helpdeskflow.Ticket, error) {
	id, err := s.store.ByExternalID(ctx, workspaceID, helpdeskflow.StreamTicket, externalID)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return s.GetTicket(ctx, workspaceID, id, includeInternal)
}

// ruleSource gives a command the workspace's rules: a *rules.Pending
// (requested with the command's first statement) or rules already read.
type ruleSource interface {
	Get(ctx context.Context) (*rules.Set, error)
}

// knownRules is rules already read.
type knownRules struct{ set *rules.Set }

func (k knownRules) Get(context.Context) (*rules.Set, error) { return k.set, nil }

// createTicketIn creates the ticket of a validated cmd with its sanitized
// body inside tx: it upserts the customer, runs rules on the new ticket,
// chooses its SLA policy and appends. It returns the ticket's events and
// the customer. An existing customer is left as it is (the ticket's
// customer name does not change it). The rules are read after the
// customer's reservation, so a pending request rides with it.
func (s *Service) createTicketIn(ctx context.Context, tx Tx, rulesOf ruleSource, workspaceID uuid.UUID, md helpdeskflow.Metadata,
	cmd *CreateTicket, body string) (ticketEvents []helpdeskflow.Event, customer helpdeskflow.Customer, err error) {
	ticketID := uuid.New()
	err = func() error {
		if cmd.ExternalID != nil {
			if err := claimExternalID(ctx, tx, workspaceID, helpdeskflow.StreamTicket, *cmd.ExternalID, ticketID); err != nil {
				return err
			}
		}
		customerID, created, history, err := tx.Customers.ReserveCustomerEmail(ctx, workspaceID, cmd.Customer.Email, uuid.New())
		if err != nil {
			return err
		}
		ruleSet, err := rulesOf.Get(ctx)
		if err != nil {
			return err
		}
		now := s.now()
		customerRef := helpdeskflow.StreamRef{ID: customerID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamCustomer}
		if created {
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventCustomerCreated, helpdeskflow.CustomerCreated{
				Email: cmd.Customer.Email, Name: cmd.Customer.Name,
			})
			if err != nil {
				return err
			}
			e.OccurredAt = now
			if _, err := tx.Events.Append(ctx, customerRef, 0, md, []helpdeskflow.NewEvent{e}); err != nil {
				return err
			}
			if customer, err = foldCustomer([]helpdeskflow.Event{e.Stored(customerRef, 1, md)}); err != nil {
				return err
			}
		} else if customer, _, err = foldTail(ctx, txSource{tx}, customerID, history, helpdeskflow.ApplyCustomer); err != nil {
			return err
		}
		channel := md.Channel
		if cmd.mailbox != nil {
			channel = helpdeskflow.TicketChannelEmail
		}
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketCreated, cmd.created(customerID, channel, body))
		if err != nil {
			return err
		}
		e.OccurredAt = now
		ticketRef := helpdeskflow.StreamRef{ID: ticketID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
		t, err := foldTicket([]helpdeskflow.Event{e.Stored(ticketRef, 1, md)})
		if err != nil {
			return err
		}
		effects, err := s.runAutomations(ruleSet, automation.Input{Trigger: e.Type, Ticket: t, Customer: customer}, md, e.ID)
		if err != nil {
			return err
		}
		events := append(tagged(md, e), stamped(effects, now)...)
		if len(ruleSet.Policies()) > 0 {
			after, err := applied(helpdeskflow.Ticket{}, ticketRef, 0, events)
			if err != nil {
				return err
			}
			choice, err := slaChoice(ruleSet, after, customer, md, e.ID, now)
			if err != nil {
				return err
			}
			events = append(events, choice...)
		}
		tx.Customers.LinkTicket(ctx, workspaceID, customerID, ticketID)
		if ticketEvents, err = s.appendTagged(ctx, tx, ticketRef, 0, events); err != nil {
			return err
		}
		if len(ruleSet.Policies()) > 0 {
			t, err := foldTicket(ticketEvents)
			if err != nil {
				return err
			}
			scheduleSLA(ctx, tx, false, t)
		}
		return nil
	}()
	return ticketEvents, customer, err
}

// GetTicket returns ticket id of the workspace composed from the event
// store (from its snapshot, or the read cache checked against the
// stream's version, see GetTicketRead), so it reflects every acknowledged
// write. Internal notes are left out unless includeInternal. It returns
// ENotFound for an id that is not a ticket of this workspace.
func (s *Service) GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error) {
	r, err := s.GetTicketRead(ctx, workspaceID, id, includeInternal)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	// The cache's slices are shared: the caller gets its own.
	t := r.Ticket
	t.Tags, t.Messages, t.CustomFields = slices.Clone(t.Tags), slices.Clone(t.Messages), maps.Clone(t.CustomFields)
	return t, nil
}

// TicketRead is a ticket as GetTicketRead answers it. Its Ticket shares
// memory with the read cache: read it, never change it.
type TicketRead struct {
	Ticket helpdeskflow.Ticket

	cache           *readCache
	entry           *cachedStream // the cached ticket; nil without a cache
	customerVersion int64
	includeInternal bool
}

// GetTicketRead is GetTicket for answering a read: with a read cache (see
// WithReadCache) the ticket and its customer come from it once a version
// check of both streams, started after this call and shared with the
// reads arriving meanwhile (one statement for them all), says they are
// current; a stale entry is brought up to date with the events after its
// version, a missing one loaded from its snapshot. Errors as GetTicket's;
// EInternal when the check fails.
func (s *Service) GetTicketRead(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (TicketRead, error) {
	if s.cache == nil {
		t, _, err := loadTicket(ctx, storeSource{s.store, workspaceID}, id)
		if err != nil {
			return TicketRead{}, err
		}
		t, err = s.withCustomerOf(ctx, t, includeInternal)
		return TicketRead{Ticket: t}, err
	}
	te, ce, err := s.cache.ticket(ctx, workspaceID, id)
	if err != nil {
		return TicketRead{}, err
	}
	t := te.ticket.state
	if !includeInternal {
		t.Messages = te.ticket.public
	}
	c := *ce.customer
	t.Customer = &c
	return TicketRead{Ticket: t, cache: s.cache, entry: te, customerVersion: c.Version, includeInternal: includeInternal}, nil
}

// Encoded returns encode(r.Ticket), kept with the cached ticket while the
// ticket, its customer and includeInternal stay as they are (its bytes
// count in the cache's bound), so reads of an unchanged ticket encode it
// once. encode must depend on nothing but the ticket: nothing that
// changes with time. Without a read cache it encodes every time.
func (r TicketRead) Encoded(encode func(helpdeskflow.Ticket) []byte) []byte {
	if r.entry == nil {
		return encode(r.Ticket)
	}
	slot := &r.entry.ticket.memos[boolIndex(r.includeInternal)]
	if m := slot.Load(); m != nil && m.customerID == r.Ticket.CustomerID && m.customerVersion == r.customerVersion {
		return m.body
	}
	body := encode(r.Ticket)
	old := slot.Swap(&memo{customerID: r.Ticket.CustomerID, customerVersion: r.customerVersion, body: body})
	grown := int64(len(body))
	if old != nil {
		grown -= int64(len(old.body))
	}
	r.cache.grow(r.entry, grown)
	return body
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

func foldTicket(events []helpdeskflow.Event) (helpdeskflow.Ticket, error) {
	return fold(events, helpdeskflow.ApplyTicket)
}

// stamped sets every event's time to now: one command's events share it.
func stamped(events []taggedEvent, now time.Time) []taggedEvent {
	for i := range events {
		events[i].OccurredAt = now
	}
	return events
}

// withCustomer completes a ticket with its customer's details and drops
// internal notes unless includeInternal.
func withCustomer(t helpdeskflow.Ticket, c helpdeskflow.Customer, includeInternal bool) helpdeskflow.Ticket {
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
	return t
}
