package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
)

// setETag sets the ETag of an answer showing a stream at version: the
// version in quotes, which If-Match takes back (see ifMatch).
func setETag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", etag(version))
}

// etag is the ETag of a resource at version.
func etag(version int64) string { return strconv.Quote(strconv.FormatInt(version, 10)) }

// versionedTarget reads what a change to a versioned resource names: the id
// in the path (ENotFound naming what, see pathID), then the version If-Match
// expects (see ifMatch).
func versionedTarget(r *http.Request, p httprouter.Params, what string) (uuid.UUID, *int64, error) {
	id, err := pathID(p, "id", what)
	if err != nil {
		return uuid.Nil, nil, err
	}
	version, err := ifMatch(r)
	if err != nil {
		return uuid.Nil, nil, err
	}
	return id, version, nil
}

// ifMatch reads the If-Match header: a version ("3", or 3, or W/"3"), nil
// when absent or "*". Anything else is EValidation naming the header.
func ifMatch(r *http.Request) (*int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return nil, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return nil, fieldError("If-Match", `must be the ticket's version as its ETag shows it, such as "3"`)
	}
	return &n, nil
}

// includeInternal reads include_internal, which only admin keys may set.
func includeInternal(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("include_internal")
	if v == "" {
		return false, nil
	}
	include, err := strconv.ParseBool(v)
	if err != nil {
		return false, fieldError("include_internal", "must be true or false")
	}
	if include && principalOf(r.Context()).Role != helpdeskflow.RoleAdmin {
		return false, helpdeskflow.Errorf(helpdeskflow.EForbidden, "include_internal=true needs an admin API key")
	}
	return include, nil
}

// ticketShown reads which ticket a read shows (see pathID) and whether with
// its internal notes (see includeInternal).
func ticketShown(r *http.Request, p httprouter.Params) (uuid.UUID, bool, error) {
	id, err := pathID(p, "id", "ticket")
	if err != nil {
		return uuid.Nil, false, err
	}
	include, err := includeInternal(r)
	if err != nil {
		return uuid.Nil, false, err
	}
	return id, include, nil
}

// handleTicketUpdate is PATCH /v1/tickets/{id}: 200 with the ticket after
// the change (unchanged, and no new version, when nothing changed).
func (s *Server) handleTicketUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, version, err := versionedTarget(r, p, "ticket")
	if err != nil {
		return err
	}
	include, err := includeInternal(r)
	if err != nil {
		return err
	}
	var cmd tickets.UpdateTicket
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	t, err := s.cfg.Tickets.UpdateTicket(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, version, cmd, include)
	if err != nil {
		return err
	}
	s.writeTicket(w, http.StatusOK, t)
	return nil
}

// handleMessageAdd is POST /v1/tickets/{id}/messages: 201 with the ticket
// and its new message. Internal notes need an admin key.
func (s *Server) handleMessageAdd(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, version, err := versionedTarget(r, p, "ticket")
	if err != nil {
		return err
	}
	var cmd tickets.AddMessage
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	admin := principalOf(r.Context()).Role == helpdeskflow.RoleAdmin
	if cmd.Internal && !admin {
		return helpdeskflow.Errorf(helpdeskflow.EForbidden, "internal notes need an admin API key")
	}
	// Admins see the notes they may have just written; agents never do.
	t, err := s.cfg.Tickets.AddMessage(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, version, cmd, admin)
	if err != nil {
		return err
	}
	s.writeTicket(w, http.StatusCreated, t)
	return nil
}

type auditEntryJSON struct {
	EventID     string                     `json:"event_id"`
	EventType   string                     `json:"event_type"`
	Version     int64                      `json:"version"`
	Changes     []helpdeskflow.FieldChange `json:"changes"`
	Actor       helpdeskflow.Actor         `json:"actor"`
	Channel     string                     `json:"channel"`
	APIKeyID    *string                    `json:"api_key_id,omitempty"`
	RuleID      *string                    `json:"rule_id"`
	RuleVersion *int64                     `json:"rule_version"`
	RequestID   *string                    `json:"request_id"`
	OccurredAt  string                     `json:"occurred_at"`
}

// handleTicketAudit is GET /v1/tickets/{id}/audit: every change, oldest
// first, from the event store, or those of versions from_version to
// to_version (see auditRange). Internal notes only with
// include_internal=true (admin).
func (s *Server) handleTicketAudit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, include, err := ticketShown(r, p)
	if err != nil {
		return err
	}
	from, to, err := auditRange(r)
	if err != nil {
		return err
	}
	entries, err := s.cfg.Tickets.TicketAudit(r.Context(), principalOf(r.Context()).WorkspaceID, id, from, to, include)
	if err != nil {
		return err
	}
	data := make([]auditEntryJSON, len(entries))
	for i, e := range entries {
		data[i] = auditEntryJSON{EventID: e.EventID.String(), EventType: e.EventType, Version: e.Version, Changes: e.Changes,
			Actor: e.Metadata.Actor, Channel: e.Metadata.Channel, APIKeyID: nonEmpty(e.Metadata.APIKeyID), RuleID: nonEmpty(e.Metadata.RuleID), RuleVersion: nonZero(e.Metadata.RuleVersion),
			RequestID: nonEmpty(e.Metadata.RequestID), OccurredAt: formatTime(e.OccurredAt)}
		if data[i].Changes == nil {
			data[i].Changes = []helpdeskflow.FieldChange{}
		}
	}
	// The whole history in one page, in the list envelope.
	writeList(w, data, "")
	return nil
}

func nonZero(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type eventJSON struct {
	ID            string                `json:"id"`
	Type          string                `json:"type"`
	SchemaVersion int                   `json:"schema_version"`
	StreamID      string                `json:"stream_id"`
	StreamType    string                `json:"stream_type"`
	Version       int64                 `json:"version"`
	OccurredAt    string                `json:"occurred_at"`
	Data          json.RawMessage       `json:"data"`
	Metadata      helpdeskflow.Metadata `json:"metadata"`
}

// handleEvents is GET /v1/events?after=<cursor>&limit=: the workspace's
// events in commit order from the event store, below the commit horizon
// (a transaction that commits late is never skipped). next_cursor is
// always set: pass it as after to resume, also after an empty page. Agent
// keys see only ticket and customer events, without internal notes (the
// cursor still moves past the others).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	var problems []helpdeskflow.FieldProblem
	limit, problem := queryLimit(q, 100, 1000)
	if problem != nil {
		problems = append(problems, *problem)
	}
	after, err := decodeEventCursor(q.Get("after"))
	if err != nil {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "after", Problem: "must be a next_cursor this API returned, or empty for the beginning"})
	}
	if len(problems) > 0 {
		return queryError(problems)
	}
	principal := principalOf(r.Context())
	events, err := s.cfg.Events.ReadAfter(r.Context(), after, limit, principal.WorkspaceID)
	if err != nil {
		return err
	}
	data := make([]eventJSON, 0, len(events))
	next := after
	for _, e := range events {
		next = e.Position
		// Agent keys see neither internal notes nor the workspace's
		// configuration (keys, settings, integrations, rules, policies,
		// webhooks and their URLs), which their role cannot read directly
		// either.
		if principal.Role != helpdeskflow.RoleAdmin && (helpdeskflow.IsInternalNote(e) || !helpdeskflow.VisibleToAgents(e.StreamType)) {
			continue
		}
		data = append(data, eventJSON{ID: e.ID.String(), Type: e.Type, SchemaVersion: e.SchemaVersion, StreamID: e.StreamID.String(),
			StreamType: e.StreamType, Version: e.Version, OccurredAt: formatTime(e.OccurredAt), Data: e.Data, Metadata: e.Metadata})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": data, "next_cursor": encodeEventCursor(next)})
	return nil
}

// Event cursors are "<tx_id>-<seq>", opaque to clients.
func encodeEventCursor(p helpdeskflow.Position) string {
	return strconv.FormatUint(p.TxID, 10) + "-" + strconv.FormatInt(p.Seq, 10)
}

func decodeEventCursor(s string) (helpdeskflow.Position, error) {
	if s == "" {
		return helpdeskflow.Position{}, nil
	}
	tx, seq, ok := strings.Cut(s, "-")
	if !ok {
		return helpdeskflow.Position{}, strconv.ErrSyntax
	}
	txID, err := strconv.ParseUint(tx, 10, 64)
	if err != nil {
		return helpdeskflow.Position{}, err
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 0 {
		return helpdeskflow.Position{}, strconv.ErrSyntax
	}
	return helpdeskflow.Position{TxID: txID, Seq: n}, nil
}
