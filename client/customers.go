package client

import (
	"context"
	"iter"
	"net/url"
	"time"
)

// UpsertCustomer finds the customer by normalized email, or creates it,
// and gives it c's other fields (POST /v1/customers); Written.Created
// says which. An ExternalID another customer holds is an *Error with code
// "conflict" whose ExistingID names that customer.
func (c *Client) UpsertCustomer(ctx context.Context, cu CustomerUpsert) (Customer, Written, error) {
	return c.upsertCustomer(ctx, cu, nil)
}

// UpsertCustomerByExternalID is UpsertCustomer with ?upsert=true: the
// customer holding cu.ExternalID, if any, takes the other fields (not the
// email).
func (c *Client) UpsertCustomerByExternalID(ctx context.Context, cu CustomerUpsert) (Customer, Written, error) {
	return c.upsertCustomer(ctx, cu, url.Values{"upsert": {"true"}})
}

func (c *Client) upsertCustomer(ctx context.Context, cu CustomerUpsert, q url.Values) (Customer, Written, error) {
	var out Customer
	r, err := c.do(ctx, rUpsertCustomer.call(q, cu, &out))
	return out, written(r), err
}

// GetCustomer returns customer id (GET /v1/customers/{id}); a merged
// customer's id answers with the customer it was merged into.
func (c *Client) GetCustomer(ctx context.Context, id string) (Customer, error) {
	var out Customer
	_, err := c.do(ctx, rGetCustomer.call(nil, nil, &out, id))
	return out, err
}

// UpdateCustomer changes customer id (PATCH /v1/customers/{id}).
func (c *Client) UpdateCustomer(ctx context.Context, id string, u CustomerUpdate) (Customer, Written, error) {
	var out Customer
	r, err := c.do(ctx, rUpdateCustomer.call(nil, u, &out, id))
	return out, written(r), err
}

// FindCustomerByEmail returns the customer with the email (normalized by
// the server), and false when none has it.
func (c *Client) FindCustomerByEmail(ctx context.Context, email string) (Customer, bool, error) {
	return c.findCustomer(ctx, url.Values{"email": {email}})
}

// FindCustomerByExternalID returns the customer holding the integrator's
// external id (exact match), and false when none does.
func (c *Client) FindCustomerByExternalID(ctx context.Context, externalID string) (Customer, bool, error) {
	return c.findCustomer(ctx, url.Values{"external_id": {externalID}})
}

func (c *Client) findCustomer(ctx context.Context, q url.Values) (Customer, bool, error) {
	var out list[Customer]
	if _, err := c.do(ctx, rFindCustomers.call(q, nil, &out)); err != nil || len(out.Data) == 0 {
		return Customer{}, false, err
	}
	return out.Data[0], true, nil
}

// CustomerFilter selects the customers of ListCustomers.
type CustomerFilter struct {
	Tag         string
	PageSize    int
	MinPosition string
	MaxWait     time.Duration
}

// ListCustomers lists customers from the read model, newest first, page by
// page as the iteration goes (GET /v1/customers), without their tickets.
// An error ends it.
func (c *Client) ListCustomers(ctx context.Context, f CustomerFilter) iter.Seq2[CustomerSummary, error] {
	q := url.Values{}
	set(q, "tag", f.Tag)
	setPaging(q, f.PageSize, f.MinPosition, f.MaxWait)
	return pages[CustomerSummary](ctx, c, rListCustomers, q)
}
