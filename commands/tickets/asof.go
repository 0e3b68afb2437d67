package tickets

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// pastReads are the loads point-in-time reads and the audit need.
type pastReads interface {
	// LoadTailAsOf returns a stream as of asOf, from its snapshot when
	// that is not after asOf; ENotFound when the stream had no event by
	// then or is not in the workspace.
	LoadTailAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf) (helpdeskflow.StreamTail, error)
	// LoadRange returns the events from version from to version to (0:
	// the last) of stream ref; ENotFound when it is not a stream of that
	// workspace and type.
	LoadRange(ctx context.Context, ref helpdeskflow.StreamRef, from, to int64) ([]helpdeskflow.Event, error)
	// LatestEventsOfTypes returns each named stream's newest event of one
	// of types that occurred at or before until (none for streams without
	// one).
	LatestEventsOfTypes(ctx context.Context, workspaceID uuid.UUID, streamIDs []uuid.UUID, types []string, until time.Time) ([]helpdeskflow.Event, error)
}

// asOfSource loads streams of one workspace as they were at asOf.
type asOfSource struct {
	store       Store
	workspaceID uuid.UUID
	asOf        helpdeskflow.AsOf
}

func (s asOfSource) loadTail(ctx context.Context, id uuid.UUID) (helpdeskflow.StreamTail, error) {
	return s.store.LoadTailAsOf(ctx, s.workspaceID, id, s.asOf)
}

func (s asOfSource) loadAll(ctx context.Context, id uuid.UUID) ([]helpdeskflow.Event, error) {
	events, err := s.store.Load(ctx, s.workspaceID, id)
	return s.asOf.Cut(events), err
}

// GetTicketAsOf returns ticket id of the workspace as it was at asOf,
// composed from the event store like GetTicket: the ticket after the
// events asOf includes (from its snapshot when that is not after asOf),
// with its customer as of the same time (see customerAt) and internal
// notes only when includeInternal. It also returns that time, asOf.Time or,
// for a version, the time of that version's event, at which the SLA status
// is to be judged. Errors: ENotFound when id is not a ticket of this
// workspace or did not exist yet at asOf; EValidation naming "as_of" for a
// version beyond the ticket's current one.
func (s *Service) GetTicketAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf, includeInternal bool) (helpdeskflow.Ticket, time.Time, error) {
	t, _, err := loadTicket(ctx, asOfSource{s.store, workspaceID, asOf}, id)
	if err != nil {
		return helpdeskflow.Ticket{}, time.Time{}, err
	}
	at, err := shownAt(asOf, t.Version, t.UpdatedAt, "ticket")
	if err != nil {
		return helpdeskflow.Ticket{}, time.Time{}, err
	}
	c, err := s.customerAt(ctx, workspaceID, t.CustomerID, at)
	if err != nil {
		return helpdeskflow.Ticket{}, time.Time{}, err
	}
	return withCustomer(t, c, includeInternal), at, nil
}

// GetCustomerAsOf returns customer id of the workspace as it was at asOf,
// composed from the event store like GetCustomer, with the ids of the
// tickets it had then (oldest first, as GetCustomer orders them). A
// customer merged by then resolves to the customer it was merged into, as
// of the same time (asOf.Time or, for a version, the time of that
// version's event); before its merge it is shown as it was. Errors:
// ENotFound when id is not a customer of this workspace or did not exist
// yet at asOf; EValidation naming "as_of" for a version beyond the
// customer's current one.
func (s *Service) GetCustomerAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf) (helpdeskflow.Customer, error) {
	c, _, err := loadCustomer(ctx, asOfSource{s.store, workspaceID, asOf}, id)
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	at, err := shownAt(asOf, c.Version, c.UpdatedAt, "customer")
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	if c.MergedInto != nil {
		if c, err = s.customerAt(ctx, workspaceID, *c.MergedInto, at); err != nil {
			return helpdeskflow.Customer{}, err
		}
	}
	if c.TicketIDs, err = s.ticketsAt(ctx, workspaceID, c.ID, at); err != nil {
		return helpdeskflow.Customer{}, err
	}
	return c, nil
}

// shownAt is the time a read as of asOf shows, given the stream's state
// there (its version and the time of its last event): asOf.Time, or that
// event's time for a version. EValidation naming "as_of" when asOf names a
// version the stream has not reached.
func shownAt(asOf helpdeskflow.AsOf, version int64, lastEventAt time.Time, what string) (time.Time, error) {
	if !asOf.ByVersion() {
		return asOf.Time, nil
	}
	if version < asOf.Version {
		return time.Time{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the query has invalid parameters; see details",
			Details: []helpdeskflow.FieldProblem{{Field: "as_of",
				Problem: fmt.Sprintf("the %s is at version %d: a version must be from 1 to %d", what, version, version)}}}
	}
	return lastEventAt, nil
}

// customerAt returns customer id as it was at time at, following the
// merges it had by then (as GetCustomer follows them). A customer whose
// first event is stamped after at (a ticket's customer created by another
// process, whose clock was behind) is shown as it was created.
func (s *Service) customerAt(ctx context.Context, workspaceID, id uuid.UUID, at time.Time) (helpdeskflow.Customer, error) {
	for range maxMergeHops {
		c, _, err := loadCustomer(ctx, asOfSource{s.store, workspaceID, helpdeskflow.AsOf{Time: at}}, id)
		if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
			c, _, err = loadCustomer(ctx, asOfSource{s.store, workspaceID, helpdeskflow.AsOf{Version: 1}}, id)
		}
		if err != nil {
			return helpdeskflow.Customer{}, err
		}
		if c.MergedInto == nil {
			return c, nil
		}
		id = *c.MergedInto
	}
	return helpdeskflow.Customer{}, helpdeskflow.Errorf(helpdeskflow.EInternal, "customer %s: more than %d merges to follow", id, maxMergeHops)
}

// ownerEvents are the ticket events that name the ticket's customer.
var ownerEvents = []string{helpdeskflow.EventTicketCreated, helpdeskflow.EventTicketCustomerChanged}

// ticketsAt returns the ids of the tickets customer id had at time at,
// oldest first. Tickets move only when their customer is merged into
// another, so every ticket it had then belongs now to the customer it
// resolves to: those are the candidates, each kept when its last event
// naming a customer by then names id.
func (s *Service) ticketsAt(ctx context.Context, workspaceID, id uuid.UUID, at time.Time) ([]uuid.UUID, error) {
	now, err := s.GetCustomer(ctx, workspaceID, id)
	if err != nil || len(now.TicketIDs) == 0 {
		return nil, err
	}
	events, err := s.store.LatestEventsOfTypes(ctx, workspaceID, now.TicketIDs, ownerEvents, at)
	if err != nil {
		return nil, err
	}
	owners := make(map[uuid.UUID]uuid.UUID, len(events))
	for _, e := range events {
		var t helpdeskflow.Ticket
		if err := helpdeskflow.ApplyTicket(&t, e); err != nil {
			return nil, err
		}
		owners[e.StreamID] = t.CustomerID
	}
	var ids []uuid.UUID
	for _, ticketID := range now.TicketIDs {
		if owners[ticketID] == id {
			ids = append(ids, ticketID)
		}
	}
	return ids, nil
}
