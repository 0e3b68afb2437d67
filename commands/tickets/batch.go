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
// others, and the valid ones commit together. The new emails of all items
// are reserved, and their existing customers read, in one round trip up
// front, in email order, so concurrent batches take the reservations in one
// order and cannot deadlock over them; a reservation no item used is given
// back. Items are decided in the same order (stable); two items with the
// same new email create one customer.
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
		// Every email is reserved or read at once (one round trip), in
		// email order; the items then answer from that.
		emails := make([]string, 0, len(valid))
		for _, i := range valid {
			if email := items[i].Cmd.Customer.Email; len(emails) == 0 || emails[len(emails)-1] != email {
				emails = append(emails, email)
			}
		}
		customers, err := reserveCustomers(ctx, tx, workspaceID, emails)
		if err != nil {
			return err
		}
		tx.Customers = customers
		for _, i := range valid {
			err := inPart(ctx, tx, func() error {
				events, customer, err := s.createTicketIn(ctx, tx, knownRules{ruleSet}, workspaceID, md, &items[i].Cmd, bodies[i])
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
			if err == nil {
				customers.created(items[i].Cmd.Customer.Email)
			}
			results[i].Err = err
		}
		customers.release(ctx, workspaceID)
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

// batchCustomers is a batch's customer index, with the emails of all its
// items reserved or read up front (reserveCustomers): reserving one of
// them answers from that, as ReserveCustomerEmail would have, without a
// round trip. An email reserved up front is new until an item that
// creates its customer succeeds (created); after that, and for emails not
// settled up front, the index is asked.
type batchCustomers struct {
	CustomerIndexTx
	reserved map[string]uuid.UUID // reserved by the batch; customer not created yet
	existing map[string]helpdeskflow.StreamTail
}

// reserveCustomers reserves the new ones among emails (sorted) and reads
// the customers holding the others, in one round trip.
func reserveCustomers(ctx context.Context, tx Tx, workspaceID uuid.UUID, emails []string) (*batchCustomers, error) {
	candidates := make([]uuid.UUID, len(emails))
	for i := range candidates {
		candidates[i] = uuid.New()
	}
	reserved, existing, err := tx.Customers.ReserveCustomerEmails(ctx, workspaceID, emails, candidates)
	if err != nil {
		return nil, err
	}
	return &batchCustomers{CustomerIndexTx: tx.Customers, reserved: reserved, existing: existing}, nil
}

func (c *batchCustomers) ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (uuid.UUID, bool, helpdeskflow.StreamTail, error) {
	if holder, ok := c.reserved[email]; ok {
		return holder, true, helpdeskflow.StreamTail{}, nil
	}
	if history, ok := c.existing[email]; ok {
		return history.StreamID(), false, history, nil
	}
	return c.CustomerIndexTx.ReserveCustomerEmail(ctx, workspaceID, email, candidate)
}

// created notes that an item created the customer of email (when the
// batch reserved it): later items of the email find it in the index.
func (c *batchCustomers) created(email string) { delete(c.reserved, email) }

// release gives back the reservations whose customers no item created.
func (c *batchCustomers) release(ctx context.Context, workspaceID uuid.UUID) {
	emails := make([]string, 0, len(c.reserved))
	holders := make([]uuid.UUID, 0, len(c.reserved))
	for email, holder := range c.reserved {
		emails, holders = append(emails, email), append(holders, holder)
	}
	c.CustomerIndexTx.ReleaseCustomerEmails(ctx, workspaceID, emails, holders)
}
