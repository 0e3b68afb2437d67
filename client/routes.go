package client

import (
	"net/url"
	"strings"
)

// route is one API operation the client uses: its method and path as the
// OpenAPI document writes them, the query parameters it may send, and the
// Go types of its JSON body and of its success answer (nil: none), which
// the client's tests check against the document.
type route struct {
	method string
	path   string
	query  []string
	body   any
	answer any
}

// The routes the client uses; each method below names its own.
var (
	rCreateTicket   = route{"POST", "/v1/tickets", []string{"upsert"}, TicketCreate{}, Ticket{}}
	rGetTicket      = route{"GET", "/v1/tickets/{id}", []string{"include_internal"}, nil, Ticket{}}
	rUpdateTicket   = route{"PATCH", "/v1/tickets/{id}", []string{"include_internal"}, TicketUpdate{}, Ticket{}}
	rAddMessage     = route{"POST", "/v1/tickets/{id}/messages", nil, MessageCreate{}, Ticket{}}
	rListTickets    = route{"GET", "/v1/tickets", []string{"status", "priority", "tag", "customer_id", "team", "updated_after", "external_id", "limit", "cursor", "min_position", "max_wait"}, nil, list[Ticket]{}}
	rUpsertCustomer = route{"POST", "/v1/customers", []string{"upsert"}, CustomerUpsert{}, Customer{}}
	rGetCustomer    = route{"GET", "/v1/customers/{id}", nil, nil, Customer{}}
	rUpdateCustomer = route{"PATCH", "/v1/customers/{id}", nil, CustomerUpdate{}, Customer{}}
	rFindCustomers  = route{"GET", "/v1/customers", []string{"email", "external_id"}, nil, list[Customer]{}}
	rListCustomers  = route{"GET", "/v1/customers", []string{"tag", "limit", "cursor", "min_position", "max_wait"}, nil, list[CustomerSummary]{}}
	rCreateWebhook  = route{"POST", "/v1/webhooks", nil, WebhookCreate{}, Webhook{}}
	rGetWebhook     = route{"GET", "/v1/webhooks/{id}", nil, nil, Webhook{}}
	rUpdateWebhook  = route{"PATCH", "/v1/webhooks/{id}", nil, WebhookUpdate{}, Webhook{}}
	rDeleteWebhook  = route{"DELETE", "/v1/webhooks/{id}", nil, nil, nil}
	rListWebhooks   = route{"GET", "/v1/webhooks", []string{"limit", "cursor"}, nil, list[Webhook]{}}
	rListDeliveries = route{"GET", "/v1/webhooks/{id}/deliveries", []string{"status", "limit", "cursor"}, nil, list[Delivery]{}}
	rEvents         = route{"GET", "/v1/events", []string{"after", "limit"}, nil, eventPage{}}
)

// routes lists every route the client uses (the tests check them all).
var routes = []route{rCreateTicket, rGetTicket, rUpdateTicket, rAddMessage, rListTickets, rUpsertCustomer, rGetCustomer,
	rUpdateCustomer, rFindCustomers, rListCustomers, rCreateWebhook, rGetWebhook, rUpdateWebhook, rDeleteWebhook, rListWebhooks,
	rListDeliveries, rEvents}

// call is the call of r with its path parameters (in order) and query.
func (r route) call(query url.Values, body, out any, params ...string) call {
	path := r.path
	for _, p := range params {
		i := strings.IndexByte(path, '{')
		j := strings.IndexByte(path, '}')
		path = path[:i] + url.PathEscape(p) + path[j+1:]
	}
	return call{method: r.method, path: path, query: query, body: body, out: out}
}
