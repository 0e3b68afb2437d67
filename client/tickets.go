package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Written is what a write's answer says besides its body: the position
// token of its last event (X-HDF-Position), to read it back from lists
// with TicketFilter.MinPosition.
type Written struct {
	Position string
	// Created is false when an upsert found an existing ticket or
	// customer (200 instead of 201).
	Created bool
}

func written(r result) Written {
	return Written{Position: r.header.Get("X-HDF-Position"), Created: r.status == http.StatusCreated}
}

// CreateTicket creates a ticket (POST /v1/tickets) and returns it as
// GetTicket would. An ExternalID another ticket holds is an *Error with
// code "conflict" whose ExistingID names that ticket.
func (c *Client) CreateTicket(ctx context.Context, t TicketCreate) (Ticket, Written, error) {
	return c.createTicket(ctx, t, nil)
}

// UpsertTicket is CreateTicket with ?upsert=true: when another ticket
// holds t.ExternalID, that ticket is updated instead (its subject, status,
// priority, custom fields, and t's tags added) and returned with
// Written.Created false.
func (c *Client) UpsertTicket(ctx context.Context, t TicketCreate) (Ticket, Written, error) {
	return c.createTicket(ctx, t, url.Values{"upsert": {"true"}})
}

func (c *Client) createTicket(ctx context.Context, t TicketCreate, q url.Values) (Ticket, Written, error) {
	var out Ticket
	r, err := c.do(ctx, rCreateTicket.call(q, t, &out))
	return out, written(r), err
}

// GetTicket returns ticket id (GET /v1/tickets/{id}), consistent with
// every acknowledged write; internal notes only with includeInternal (an
// admin key). Unknown id: *Error with code "not_found".
func (c *Client) GetTicket(ctx context.Context, id string, includeInternal bool) (Ticket, error) {
	var out Ticket
	_, err := c.do(ctx, rGetTicket.call(internalQuery(includeInternal), nil, &out, id))
	return out, err
}

// UpdateTicket changes ticket id (PATCH /v1/tickets/{id}) and returns it.
func (c *Client) UpdateTicket(ctx context.Context, id string, u TicketUpdate) (Ticket, Written, error) {
	var out Ticket
	r, err := c.do(ctx, rUpdateTicket.call(nil, u, &out, id))
	return out, written(r), err
}

// AddMessage adds a message to ticket id (POST /v1/tickets/{id}/messages)
// and returns the ticket with it (internal notes shown to admin keys).
func (c *Client) AddMessage(ctx context.Context, id string, m MessageCreate) (Ticket, Written, error) {
	var out Ticket
	r, err := c.do(ctx, rAddMessage.call(nil, m, &out, id))
	return out, written(r), err
}

// FindTicket returns the ticket holding the integrator's external id
// (GET /v1/tickets?external_id=, consistent), and false when none does.
func (c *Client) FindTicket(ctx context.Context, externalID string) (Ticket, bool, error) {
	var out list[Ticket]
	if _, err := c.do(ctx, rListTickets.call(url.Values{"external_id": {externalID}}, nil, &out)); err != nil || len(out.Data) == 0 {
		return Ticket{}, false, err
	}
	return out.Data[0], true, nil
}

// TicketFilter selects the tickets of ListTickets; empty fields do not
// filter.
type TicketFilter struct {
	Status, Priority, Tag, CustomerID, Team string
	UpdatedAfter                            time.Time
	// PageSize is the tickets per request (1 to 100; 0: the server's
	// default).
	PageSize int
	// MinPosition makes the list reflect a write (Written.Position),
	// waiting up to MaxWait (0: the server's default) for the read model.
	MinPosition string
	MaxWait     time.Duration
}

// ListTickets lists tickets from the read model, newest first, page by
// page as the iteration goes (GET /v1/tickets). An error ends it.
func (c *Client) ListTickets(ctx context.Context, f TicketFilter) iter.Seq2[Ticket, error] {
	q := url.Values{}
	set(q, "status", f.Status)
	set(q, "priority", f.Priority)
	set(q, "tag", f.Tag)
	set(q, "customer_id", f.CustomerID)
	set(q, "team", f.Team)
	if !f.UpdatedAfter.IsZero() {
		q.Set("updated_after", f.UpdatedAfter.UTC().Format(time.RFC3339Nano))
	}
	setPaging(q, f.PageSize, f.MinPosition, f.MaxWait)
	return pages[Ticket](ctx, c, rListTickets, q)
}

func set(q url.Values, name, value string) {
	if value != "" {
		q.Set(name, value)
	}
}

func setPaging(q url.Values, pageSize int, minPosition string, maxWait time.Duration) {
	if pageSize > 0 {
		q.Set("limit", strconv.Itoa(pageSize))
	}
	set(q, "min_position", minPosition)
	if maxWait > 0 {
		q.Set("max_wait", strconv.Itoa(int(maxWait.Seconds())))
	}
}

func internalQuery(include bool) url.Values {
	if !include {
		return nil
	}
	return url.Values{"include_internal": {"true"}}
}

// pages iterates over the items of a list route's pages, following
// next_cursor; an error is yielded once and ends the iteration.
func pages[T any](ctx context.Context, c *Client, r route, q url.Values, params ...string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		q := cloneValues(q)
		for {
			var page list[T]
			if _, err := c.do(ctx, r.call(q, nil, &page, params...)); err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" || len(page.Data) == 0 {
				return
			}
			q.Set("cursor", *page.NextCursor)
		}
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
