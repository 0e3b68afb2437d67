package http

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
)

// asOfProblem is what a malformed as_of is told.
const asOfProblem = "must be a version (a whole number from 1) or an RFC 3339 time such as 2026-01-02T15:04:05.000Z"

// asOfParam reads ?as_of=: a version (digits only, at least 1) or an RFC
// 3339 time not after now. A '+' of a time's offset that arrived as a
// space (an unencoded '+' in a query means a space) is read as '+'.
// Anything else is EValidation naming "as_of".
func asOfParam(q url.Values, now time.Time) (helpdeskflow.AsOf, error) {
	v := q.Get("as_of")
	if v != "" && strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return helpdeskflow.AsOf{}, queryError([]helpdeskflow.FieldProblem{{Field: "as_of", Problem: asOfProblem}})
		}
		return helpdeskflow.AsOf{Version: n}, nil
	}
	at, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		return helpdeskflow.AsOf{}, queryError([]helpdeskflow.FieldProblem{{Field: "as_of", Problem: asOfProblem}})
	}
	if at.After(now) {
		return helpdeskflow.AsOf{}, queryError([]helpdeskflow.FieldProblem{{Field: "as_of",
			Problem: fmt.Sprintf("must not be in the future (it is %s now); leave as_of out for the current state", formatTime(now))}})
	}
	return helpdeskflow.AsOf{Time: at.UTC()}, nil
}

// handleTicketGetAsOf is GET /v1/tickets/{id}?as_of=: the ticket as it was
// then (see asOfParam), composed from the event store, with its customer
// and SLA status as of the same time (for a version, the time of its
// event). include_internal as for the current ticket.
func (s *Server) handleTicketGetAsOf(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, include, err := ticketShown(r, p)
	if err != nil {
		return err
	}
	asOf, err := asOfParam(r.URL.Query(), s.cfg.Now())
	if err != nil {
		return err
	}
	t, at, err := s.cfg.Tickets.GetTicketAsOf(r.Context(), principalOf(r.Context()).WorkspaceID, id, asOf, include)
	if err != nil {
		return err
	}
	setETag(w, t.Version)
	writeJSON(w, http.StatusOK, toTicketJSON(t, at))
	return nil
}

// handleCustomerGetAsOf is GET /v1/customers/{id}?as_of=: the customer as
// it was then, with the tickets it had then; a customer merged by then
// answers with the one it was merged into, as of the same time.
func (s *Server) handleCustomerGetAsOf(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "customer")
	if err != nil {
		return err
	}
	asOf, err := asOfParam(r.URL.Query(), s.cfg.Now())
	if err != nil {
		return err
	}
	c, err := s.cfg.Customers.GetCustomerAsOf(r.Context(), principalOf(r.Context()).WorkspaceID, id, asOf)
	if err != nil {
		return err
	}
	writeCustomer(w, http.StatusOK, c)
	return nil
}

// auditRange reads ?from_version= and ?to_version= of the audit: whole
// numbers from 1, from_version not above to_version; absent, 1 and 0 (the
// last version). Every problem is EValidation naming its field.
func auditRange(r *http.Request) (from, to int64, err error) {
	q := r.URL.Query()
	var problems []helpdeskflow.FieldProblem
	version := func(field string, def int64) int64 {
		v := q.Get(field)
		if v == "" {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			problems = append(problems, helpdeskflow.FieldProblem{Field: field, Problem: "must be a version, a whole number from 1"})
			return def
		}
		return n
	}
	from, to = version("from_version", 1), version("to_version", 0)
	if len(problems) == 0 && to != 0 && from > to {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "from_version", Problem: fmt.Sprintf("must not be above to_version (%d)", to)})
	}
	if len(problems) > 0 {
		return 0, 0, queryError(problems)
	}
	return from, to, nil
}
