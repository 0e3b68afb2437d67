package http

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
)

// customerJSON is a customer as the API shows it. TicketIDs is only set on
// the customer endpoints (a ticket's embedded customer leaves it out).
type customerJSON struct {
	ID             uuid.UUID                    `json:"id"`
	Email          string                       `json:"email"`
	Name           string                       `json:"name"`
	ExternalID     *string                      `json:"external_id"`
	Tags           []string                     `json:"tags"`
	CustomFields   map[string]any               `json:"custom_fields"`
	Metadata       map[string]any               `json:"metadata"`
	LinkedProfiles []helpdeskflow.LinkedProfile `json:"linked_profiles"`
	TicketIDs      *[]uuid.UUID                 `json:"ticket_ids,omitempty"`
	Version        int64                        `json:"version"`
	CreatedAt      string                       `json:"created_at"`
	UpdatedAt      string                       `json:"updated_at"`
}

func toCustomerJSON(c helpdeskflow.Customer) customerJSON {
	out := customerJSON{ID: c.ID, Email: c.Email, Name: c.Name, Tags: c.Tags, CustomFields: c.CustomFields, Metadata: c.Metadata,
		LinkedProfiles: c.LinkedProfiles, Version: c.Version, CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt)}
	if c.ExternalID != "" {
		out.ExternalID = &c.ExternalID
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.CustomFields == nil {
		out.CustomFields = map[string]any{}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]any{}
	}
	if out.LinkedProfiles == nil {
		out.LinkedProfiles = []helpdeskflow.LinkedProfile{}
	}
	return out
}

// toCustomerWithTicketsJSON is the customer endpoints' view: with its
// ticket ids (an empty list when it has none).
func toCustomerWithTicketsJSON(c helpdeskflow.Customer) customerJSON {
	out := toCustomerJSON(c)
	ids := c.TicketIDs
	if ids == nil {
		ids = []uuid.UUID{}
	}
	out.TicketIDs = &ids
	return out
}

func writeCustomer(w http.ResponseWriter, status int, c helpdeskflow.Customer) {
	setETag(w, c.Version)
	writeJSON(w, status, toCustomerWithTicketsJSON(c))
}

// handleCustomerUpsert is POST /v1/customers: 201 when the normalized email
// is new, 200 when that customer existed (and took the other fields). An
// external_id a customer holds already is 409 conflict naming it
// (existing_id); with ?upsert=true that customer takes the fields (200).
func (s *Server) handleCustomerUpsert(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd tickets.UpsertCustomer
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	upsert, err := upsertParam(r)
	if err != nil {
		return err
	}
	cmd.Upsert = upsert
	c, created, err := s.cfg.Customers.UpsertCustomer(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), cmd)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/customers/"+c.ID.String())
	}
	writeCustomer(w, status, c)
	return nil
}

// handleCustomerGet is GET /v1/customers/{id}, composed from the event
// store; a merged customer's id answers with the customer it was merged
// into.
func (s *Server) handleCustomerGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if r.URL.Query().Get("as_of") != "" {
		return s.handleCustomerGetAsOf(w, r, p)
	}
	id, err := pathID(p, "id", "customer")
	if err != nil {
		return err
	}
	c, err := s.cfg.Customers.GetCustomer(r.Context(), principalOf(r.Context()).WorkspaceID, id)
	if err != nil {
		return err
	}
	writeCustomer(w, http.StatusOK, c)
	return nil
}

// handleCustomerFind is GET /v1/customers. With ?email=, ?external_id=
// (the integrator's own id) or ?provider=&external_id= it finds the one
// matching customer in the event store (consistent); otherwise it lists customers from the read model,
// newest first, filtered by ?tag= and ?custom_fields.<name>=<value>, with
// ?limit= and ?cursor=.
func (s *Server) handleCustomerFind(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	workspaceID := principalOf(r.Context()).WorkspaceID
	position, problems := s.readListPosition(q, workspaceID, nil)
	if q.Has("email") || q.Has("provider") || q.Has("external_id") {
		// A lookup reads the event store, which holds every write: it
		// waits for nothing, and carries no position.
		if len(problems) > 0 {
			return queryError(problems)
		}
		c, err := s.cfg.Customers.FindCustomer(r.Context(), workspaceID, q.Get("email"), q.Get("provider"), q.Get("external_id"))
		data := []customerJSON{}
		switch {
		case helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound:
		case err != nil:
			return err
		default:
			data = append(data, toCustomerWithTicketsJSON(c))
		}
		writeList(w, data, "")
		return nil
	}
	filter := helpdeskflow.CustomerFilter{Tag: q.Get("tag"), Cursor: q.Get("cursor")}
	for key := range q {
		name, ok := strings.CutPrefix(key, "custom_fields.")
		if !ok {
			continue
		}
		if filter.CustomField != "" {
			problems = append(problems, helpdeskflow.FieldProblem{Field: key, Problem: "filter by one custom field at a time"})
			continue
		}
		filter.CustomField, filter.CustomFieldValue = name, q.Get(key)
	}
	limit, problem := queryLimit(q, 0, 100)
	if problem != nil {
		problems = append(problems, *problem)
	}
	filter.Limit = limit
	if len(problems) > 0 {
		return queryError(problems)
	}
	if err := s.awaitReadModel(w, r, position); err != nil {
		return err
	}
	page, err := s.cfg.CustomerLister.ListCustomers(r.Context(), workspaceID, filter)
	if err != nil {
		return err
	}
	writeListOf(w, page.Customers, toCustomerJSON, page.NextCursor)
	return nil
}

// handleCustomerUpdate is PATCH /v1/customers/{id}. Changing the email to
// one another customer holds merges this customer into that one, which is
// what the answer then shows.
func (s *Server) handleCustomerUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, version, err := versionedTarget(r, p, "customer")
	if err != nil {
		return err
	}
	var cmd tickets.UpdateCustomer
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	c, err := s.cfg.Customers.UpdateCustomer(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, version, cmd)
	if err != nil {
		return err
	}
	writeCustomer(w, http.StatusOK, c)
	return nil
}

// handleCustomerMerge is POST /v1/customers/{id}/merge with
// {"source_customer_id": …}: the source merges into this customer.
func (s *Server) handleCustomerMerge(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "customer")
	if err != nil {
		return err
	}
	var body struct {
		SourceCustomerID string `json:"source_customer_id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	source, err := uuid.Parse(body.SourceCustomerID)
	if err != nil {
		return fieldError("source_customer_id", "required: the id of the customer to merge into this one")
	}
	c, err := s.cfg.Customers.MergeCustomers(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, source)
	if err != nil {
		return err
	}
	writeCustomer(w, http.StatusOK, c)
	return nil
}
