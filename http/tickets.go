package http

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
)

// timeFormat is RFC 3339 in UTC with milliseconds, the API's one time format.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// ticketJSON is a ticket as the API shows it.
type ticketJSON struct {
	ID           uuid.UUID      `json:"id"`
	Subject      string         `json:"subject"`
	Status       string         `json:"status"`
	Priority     string         `json:"priority"`
	Type         string         `json:"type"`
	Channel      string         `json:"channel"`
	Tags         []string       `json:"tags"`
	AssigneeID   *string        `json:"assignee_id"`
	Team         *string        `json:"team"`
	ExternalID   *string        `json:"external_id"`
	CustomFields map[string]any `json:"custom_fields"`
	CustomerID   uuid.UUID      `json:"customer_id"`
	Customer     *customerJSON  `json:"customer,omitempty"`
	Messages     []messageJSON  `json:"messages,omitempty"`
	SLA          *slaJSON       `json:"sla"`
	Version      int64          `json:"version"`
	CreatedAt    string         `json:"created_at"`
	UpdatedAt    string         `json:"updated_at"`
}

type messageJSON struct {
	ID         uuid.UUID `json:"id"`
	AuthorType string    `json:"author_type"`
	Body       string    `json:"body"`
	BodyText   string    `json:"body_text"`
	Internal   bool      `json:"internal"`
	CreatedAt  string    `json:"created_at"`
}

// slaJSON is a ticket's SLA status at the time of the answer.
type slaJSON struct {
	PolicyID      uuid.UUID       `json:"policy_id"`
	PolicyVersion int64           `json:"policy_version"`
	PolicyName    string          `json:"policy_name"`
	Targets       []slaTargetJSON `json:"targets"`
}

type slaTargetJSON struct {
	Target        string  `json:"target"`
	State         string  `json:"state"`
	DueAt         *string `json:"due_at"`
	WarnAt        *string `json:"warn_at"`
	FulfilledAt   *string `json:"fulfilled_at"`
	BreachedAt    *string `json:"breached_at"`
	PausedSeconds int64   `json:"paused_seconds"`
}

func toSLAJSON(s *helpdeskflow.TicketSLA, now time.Time) *slaJSON {
	if s == nil {
		return nil
	}
	st := s.Status(now)
	out := &slaJSON{PolicyID: st.PolicyID, PolicyVersion: st.PolicyVersion, PolicyName: st.PolicyName, Targets: []slaTargetJSON{}}
	for _, t := range st.Targets {
		out.Targets = append(out.Targets, slaTargetJSON{Target: t.Target, State: t.State, DueAt: optionalTime(t.DueAt), WarnAt: optionalTime(t.WarnAt),
			FulfilledAt: optionalTime(t.FulfilledAt), BreachedAt: optionalTime(t.BreachedAt), PausedSeconds: t.PausedSeconds})
	}
	return out
}

func optionalTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// toTicketJSON shows t, with its SLA status at now.
func toTicketJSON(t helpdeskflow.Ticket, now time.Time) ticketJSON {
	out := ticketJSON{
		ID: t.ID, Subject: t.Subject, Status: t.Status, Priority: t.Priority, Type: t.Type, Channel: t.Channel,
		Tags: t.Tags, AssigneeID: t.AssigneeID, Team: t.Team, ExternalID: t.ExternalID, CustomFields: t.CustomFields,
		CustomerID: t.CustomerID, SLA: toSLAJSON(t.SLA, now), Version: t.Version,
		CreatedAt: formatTime(t.CreatedAt), UpdatedAt: formatTime(t.UpdatedAt),
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.CustomFields == nil {
		out.CustomFields = map[string]any{}
	}
	if c := t.Customer; c != nil && c.Email != "" {
		cj := toCustomerJSON(*c)
		out.Customer = &cj
	}
	if t.Messages != nil {
		out.Messages = make([]messageJSON, len(t.Messages))
		for i, m := range t.Messages {
			out.Messages[i] = messageJSON{ID: m.ID, AuthorType: m.AuthorType, Body: m.Body, BodyText: m.BodyText,
				Internal: m.Internal, CreatedAt: formatTime(m.CreatedAt)}
		}
	}
	return out
}

func (s *Server) writeTicket(w http.ResponseWriter, status int, t helpdeskflow.Ticket) {
	setETag(w, t.Version)
	writeJSON(w, status, toTicketJSON(t, s.cfg.Now()))
}

// handleTicketCreate is POST /v1/tickets: 201 with the ticket as GET shows it.
// With an Idempotency-Key the answer is kept in the transaction that
// creates the ticket (see runHandler), so a crash between the two cannot
// make a retry create it twice. An external_id another ticket holds is 409
// conflict naming it (existing_id); with ?upsert=true that ticket is
// updated instead (tickets.CreateTicket.UpsertChanges) and the answer is
// 200 with it.
func (s *Server) handleTicketCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd tickets.CreateTicket
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	upsert, err := upsertParam(r)
	if err != nil {
		return err
	}
	workspaceID, md := principalOf(r.Context()).WorkspaceID, metadata(r)
	err = s.createTicket(w, r, workspaceID, md, cmd)
	if existing, ok := helpdeskflow.ErrorExistingID(err); ok && upsert {
		t, err := s.cfg.Tickets.UpdateTicket(r.Context(), workspaceID, md, existing, nil, cmd.UpsertChanges(), true)
		if err != nil {
			return err
		}
		s.writeTicket(w, http.StatusOK, t)
		return nil
	}
	return err
}

// upsertParam reads ?upsert= (true or false; absent: false).
func upsertParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("upsert")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, queryError([]helpdeskflow.FieldProblem{{Field: "upsert", Problem: "must be true or false"}})
	}
	return b, nil
}

// createTicket creates cmd's ticket and answers 201 (see handleTicketCreate).
func (s *Server) createTicket(w http.ResponseWriter, r *http.Request, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.CreateTicket) error {
	if held := heldKeyOf(r); held != nil {
		resp, err := s.cfg.Tickets.CreateTicketKept(r.Context(), workspaceID, md, cmd, held.key,
			func(t helpdeskflow.Ticket) (helpdeskflow.IdempotentResponse, error) {
				resp, err := jsonResponse(http.StatusCreated, toTicketJSON(t, s.cfg.Now()))
				resp.Header["Location"] = ticketLocation(t)
				resp.Header["ETag"] = etag(t.Version)
				return resp, err
			})
		return writeKept(w, held, resp, err)
	}
	t, err := s.cfg.Tickets.CreateTicket(r.Context(), workspaceID, md, cmd)
	if err != nil {
		return err
	}
	w.Header().Set("Location", ticketLocation(t))
	s.writeTicket(w, http.StatusCreated, t)
	return nil
}

// ticketLocation is the Location of a created ticket.
func ticketLocation(t helpdeskflow.Ticket) string { return "/v1/tickets/" + t.ID.String() }

// handleTicketGet is GET /v1/tickets/{id}, composed from the event store.
// include_internal=true shows internal notes and needs an admin key.
func (s *Server) handleTicketGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if r.URL.Query().Get("as_of") != "" {
		return s.handleTicketGetAsOf(w, r, p)
	}
	id, include, err := ticketShown(r, p)
	if err != nil {
		return err
	}
	read, err := s.cfg.Tickets.GetTicketRead(r.Context(), principalOf(r.Context()).WorkspaceID, id, include)
	if err != nil {
		return err
	}
	s.writeTicketRead(w, read)
	return nil
}

// slaNull is how a ticket's encoding without its SLA status shows it. The
// top-level "sla" is the last one: only version and times follow it, and
// a key of a custom field or a customer's field comes before it.
var slaNull = []byte(`"sla":null`)

// writeTicketRead answers 200 with read's ticket as writeTicket does, from
// the encoding kept with the cached ticket: all of it but the SLA status,
// which changes with time and is encoded against now into its place.
func (s *Server) writeTicketRead(w http.ResponseWriter, read tickets.TicketRead) {
	body := read.Encoded(func(t helpdeskflow.Ticket) []byte {
		t.SLA = nil
		return encodeJSON(toTicketJSON(t, time.Time{}))
	})
	var sla []byte
	at := -1
	if read.Ticket.SLA != nil {
		if at = bytes.LastIndex(body, slaNull); at >= 0 {
			sla = bytes.TrimSuffix(encodeJSON(toSLAJSON(read.Ticket.SLA, s.cfg.Now())), []byte("\n"))
		}
	}
	h := w.Header()
	setETag(w, read.Ticket.Version)
	h.Set("Content-Type", "application/json; charset=utf-8")
	if at < 0 {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body) //nolint:errcheck // the client went away; nothing to do
		return
	}
	rest := body[at+len(slaNull):]
	h.Set("Content-Length", strconv.Itoa(at+len(`"sla":`)+len(sla)+len(rest)))
	w.WriteHeader(http.StatusOK)
	w.Write(body[:at+len(`"sla":`)]) //nolint:errcheck // as above
	w.Write(sla)                     //nolint:errcheck
	w.Write(rest)                    //nolint:errcheck
}

// handleTicketList is GET /v1/tickets, from the read model (eventually
// consistent, within the projection lag). With ?external_id= it finds the
// one ticket holding the integrator's id from the write side's index
// instead (consistent, no position, no other filters).
func (s *Server) handleTicketList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if q.Has("external_id") {
		return s.handleTicketFind(w, r, q.Get("external_id"))
	}
	filter := helpdeskflow.TicketFilter{
		Status: q.Get("status"), Priority: q.Get("priority"), Tag: q.Get("tag"), Team: q.Get("team"), Cursor: q.Get("cursor"),
	}
	var problems []helpdeskflow.FieldProblem
	if v := q.Get("customer_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			problems = append(problems, helpdeskflow.FieldProblem{Field: "customer_id", Problem: "must be a UUID"})
		}
		filter.CustomerID = id
	}
	if v := q.Get("updated_after"); v != "" {
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			problems = append(problems, helpdeskflow.FieldProblem{Field: "updated_after", Problem: "must be an RFC 3339 time such as 2026-01-02T15:04:05.000Z"})
		}
		filter.UpdatedAfter = at
	}
	limit, problem := queryLimit(q, 0, 100)
	if problem != nil {
		problems = append(problems, *problem)
	}
	filter.Limit = limit
	workspaceID := principalOf(r.Context()).WorkspaceID
	position, problems := s.readListPosition(q, workspaceID, problems)
	if len(problems) > 0 {
		return queryError(problems)
	}
	if err := s.awaitReadModel(w, r, position); err != nil {
		return err
	}
	page, err := s.cfg.Lister.ListTickets(r.Context(), workspaceID, filter)
	if err != nil {
		return err
	}
	now := s.cfg.Now
	writeListOf(w, page.Tickets, func(t helpdeskflow.Ticket) ticketJSON { return toTicketJSON(t, now()) }, page.NextCursor)
	return nil
}

// handleTicketFind is GET /v1/tickets?external_id=: a list of the one
// ticket holding the external id (exact match), or an empty list. Internal
// notes are left out unless include_internal=true (admin).
func (s *Server) handleTicketFind(w http.ResponseWriter, r *http.Request, externalID string) error {
	if externalID == "" {
		return queryError([]helpdeskflow.FieldProblem{{Field: "external_id", Problem: "must not be empty"}})
	}
	include, err := includeInternal(r)
	if err != nil {
		return err
	}
	t, err := s.cfg.Tickets.FindTicket(r.Context(), principalOf(r.Context()).WorkspaceID, externalID, include)
	data := []ticketJSON{}
	switch {
	case helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound:
	case err != nil:
		return err
	default:
		data = append(data, toTicketJSON(t, s.cfg.Now()))
	}
	writeList(w, data, "")
	return nil
}

// pathID parses a path parameter as a UUID; a malformed id cannot name any
// resource, so it is ENotFound like any unknown id.
func pathID(p httprouter.Params, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(p.ByName(name))
	if err != nil {
		return uuid.Nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %q not found", what, p.ByName(name))
	}
	return id, nil
}

// queryLimit reads ?limit= as a whole number from 1 to max: def when it is
// absent or empty, else the number and, when it is not one from 1 to max, a
// problem naming the "limit" field.
func queryLimit(q url.Values, def, max int) (int, *helpdeskflow.FieldProblem) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return n, &helpdeskflow.FieldProblem{Field: "limit", Problem: fmt.Sprintf("must be a whole number from 1 to %d", max)}
	}
	return n, nil
}

// queryError is the EValidation error for a query's invalid parameters.
func queryError(problems []helpdeskflow.FieldProblem) error {
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the query has invalid parameters; see details", Details: problems}
}

func fieldError(field, problem string) error {
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details",
		Details: []helpdeskflow.FieldProblem{{Field: field, Problem: problem}}}
}
