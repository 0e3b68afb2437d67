package tickets

import (
	"cmp"
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// MaxBatchItems is the most items one batch command takes.
const MaxBatchItems = 100

// Item is one item of a batch command: its command, or Err when the
// request could not even decode it (its result is then that error).
type Item[C any] struct {
	Cmd C
	Err error
}

// TicketResult is the outcome of one item of CreateTickets: the ticket as
// CreateTicket answers it, or Err, the error that item alone would get.
type TicketResult struct {
	Ticket helpdeskflow.Ticket
	Err    error
}

// CustomerResult is the outcome of one item of UpsertCustomers: the
// customer as UpsertCustomer answers it and whether it was created, or
// Err, the error that item alone would get.
type CustomerResult struct {
	Customer helpdeskflow.Customer
	Created  bool
	Err      error
}

// Respond makes a batch's response from its results, in item order. It
// runs inside the batch's transaction, once every item is decided, so that
// the response can be kept with the request's Idempotency-Key in the same
// commit; its error rolls the batch back.
type Respond[R any] func(results []R) (helpdeskflow.IdempotentResponse, error)

// CreateTickets creates each ticket of items as CreateTicket would, all in
// one transaction: every item is validated and decided on its own, as a
// part of the transaction (a savepoint) that is undone alone when the item
// fails, so one bad item (invalid, an automation conflict, an event over
// its size or past the transaction's MaxAppendBytes) never fails the
// others, and the valid ones commit together. Items are decided in the
// order of their customers' normalized emails (stable), so concurrent
// batches take the email reservations in one order and cannot deadlock;
// two items with the same new email create one customer.
//
// Once every item is decided, respond makes the response from the results
// (in item order); when held is not nil the response is kept with that
// Idempotency-Key in the same transaction, so it is kept exactly when the
// tickets are. It returns the response. Errors: the transaction's, for the
// batch as a whole (EInternal, EUnavailable, EVersionConflict, and
// EIdempotencyKeyInUse when the claim was lost), and respond's; then
// nothing is stored.
func (s *Service) CreateTickets(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, items []Item[CreateTicket],
	held *helpdeskflow.HeldIdempotencyKey, respond Respond[TicketResult]) (helpdeskflow.IdempotentResponse, error) {
	results := make([]TicketResult, len(items))
	bodies := make([]string, len(items))
	var valid []int
	for i := range items {
		err := items[i].Err
		if err == nil {
			if err = items[i].Cmd.Validate(); err == nil {
				bodies[i], err = commands.SanitizedBody("message.body", items[i].Cmd.Message.Body)
			}
		}
		if err != nil {
			results[i].Err = err
			continue
		}
		valid = append(valid, i)
	}
	slices.SortStableFunc(valid, func(a, b int) int { return cmp.Compare(items[a].Cmd.Customer.Email, items[b].Cmd.Customer.Email) })

	var resp helpdeskflow.IdempotentResponse
	err := s.store.Transact(ctx, func(tx Tx) error {
		ruleSet, err := s.rules.Of(ctx, tx.Rules, workspaceID)
		if err != nil {
			return err
		}
		// The customers that already exist are read at once; only the
		// new emails cost an item a round trip (its reservation).
		emails := make([]string, 0, len(valid))
		for _, i := range valid {
			if email := items[i].Cmd.Customer.Email; len(emails) == 0 || emails[len(emails)-1] != email {
				emails = append(emails, email)
			}
		}
		known, err := tx.Customers.CustomersHolding(ctx, workspaceID, emails)
		if err != nil {
			return err
		}
		tx.Customers = knownCustomers{tx.Customers, known}
		for _, i := range valid {
			err := inPart(ctx, tx, func() error {
				events, customer, err := s.createTicketIn(ctx, tx, ruleSet, workspaceID, md, &items[i].Cmd, bodies[i])
				if err != nil {
					return err
				}
				t, err := foldTicket(events)
				results[i].Ticket = withCustomer(t, customer, true)
				return err
			})
			if !itemOutcome(err) {
				return err
			}
			results[i].Err = err
		}
		resp, err = finish(ctx, tx, held, respond, results)
		return err
	})
	return resp, err
}

// UpsertCustomers upserts each customer of items as UpsertCustomer would,
// all in one transaction, each item decided on its own as a part of it
// (see CreateTickets: validation, linked-profile conflicts and totals are
// that item's result), in the order of their normalized emails. An email
// that appears twice is created by its first item and changed by the
// next, as two requests one after the other would. The results show each
// customer as its item left it, with its ticket ids as the transaction
// ends. respond, held and the errors are as for CreateTickets.
func (s *Service) UpsertCustomers(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, items []Item[UpsertCustomer],
	held *helpdeskflow.HeldIdempotencyKey, respond Respond[CustomerResult]) (helpdeskflow.IdempotentResponse, error) {
	results := make([]CustomerResult, len(items))
	emails := make([]string, len(items))
	changes := make([]customerChanges, len(items))
	var valid []int
	for i := range items {
		err := items[i].Err
		if err == nil {
			emails[i], changes[i], err = items[i].Cmd.validated()
		}
		if err != nil {
			results[i].Err = err
			continue
		}
		valid = append(valid, i)
	}
	slices.SortStableFunc(valid, func(a, b int) int { return cmp.Compare(emails[a], emails[b]) })

	var resp helpdeskflow.IdempotentResponse
	err := s.store.Transact(ctx, func(tx Tx) error {
		var customers []uuid.UUID
		for _, i := range valid {
			err := inPart(ctx, tx, func() error {
				c, created, err := upsertCustomerIn(ctx, tx, workspaceID, md, emails[i], changes[i])
				results[i].Customer, results[i].Created = c, created
				return err
			})
			if !itemOutcome(err) {
				return err
			}
			if results[i].Err = err; err == nil {
				customers = append(customers, results[i].Customer.ID)
			}
		}
		tickets, err := tx.Customers.CustomersTickets(ctx, customers)
		if err != nil {
			return err
		}
		for i := range results {
			if results[i].Err == nil {
				results[i].Customer.TicketIDs = tickets[results[i].Customer.ID]
			}
		}
		resp, err = finish(ctx, tx, held, respond, results)
		return err
	})
	return resp, err
}

// inPart runs one batch item as a part of tx: kept when it succeeds,
// undone when it fails with its own outcome (see itemOutcome). It returns
// the item's error.
func inPart(ctx context.Context, tx Tx, item func() error) error {
	tx.Parts.Savepoint()
	err := item()
	if err == nil {
		tx.Parts.ReleaseSavepoint()
		return nil
	}
	if itemOutcome(err) {
		if rbErr := tx.Parts.RollbackToSavepoint(ctx); rbErr != nil {
			return rbErr
		}
	}
	return err
}

// itemOutcome reports whether err (nil included) is a batch item's own
// outcome, what that item alone would be answered: an error the command
// decided itself. The database's errors (EInternal, EUnavailable) and a
// concurrent writer's (EVersionConflict) are the whole transaction's: a
// deferred statement of one item surfaces with the next item's statement,
// so they cannot be told apart, and they fail the batch.
func itemOutcome(err error) bool {
	switch helpdeskflow.ErrorCode(err) {
	case "", helpdeskflow.EValidation, helpdeskflow.EInvalidJSON, helpdeskflow.EPayloadTooLarge, helpdeskflow.ELimitExceeded,
		helpdeskflow.EAutomationConflict, helpdeskflow.EConflict, helpdeskflow.ENotFound, helpdeskflow.EPreconditionFailed:
		return true
	}
	return false
}

// finish makes a batch's response from its results and, with a held
// Idempotency-Key, keeps it in the transaction.
func finish[R any](ctx context.Context, tx Tx, held *helpdeskflow.HeldIdempotencyKey, respond Respond[R], results []R) (helpdeskflow.IdempotentResponse, error) {
	resp, err := respond(results)
	if err != nil || held == nil {
		return resp, err
	}
	return resp, tx.Responses.Complete(ctx, *held, resp)
}

// knownCustomers is a batch's customer index with the customers that
// existed before it read up front: reserving one of their emails answers
// from what was read, as ReserveCustomerEmail would (it neither locks nor
// reserves an existing holder), without a round trip.
type knownCustomers struct {
	CustomerIndexTx
	known map[string]helpdeskflow.StreamTail
}

func (k knownCustomers) ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (uuid.UUID, bool, helpdeskflow.StreamTail, error) {
	if history, ok := k.known[email]; ok {
		return history.StreamID(), false, history, nil
	}
	return k.CustomerIndexTx.ReserveCustomerEmail(ctx, workspaceID, email, candidate)
}
