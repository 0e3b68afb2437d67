package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
)

// ruleHandlers serve the create, list, get, replace and delete routes of
// one kind of workspace rule (automation rules, SLA policies): C is the
// body of POST and PUT, R the stored rule, shown by view with version as
// its ETag.
type ruleHandlers[C, R any] struct {
	noun    string
	create  func(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd C) (R, error)
	replace func(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd C) (R, error)
	delete  func(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error
	get     func(ctx context.Context, workspaceID, id uuid.UUID) (R, error)
	list    func(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) ([]R, string, error)
	view    func(R) any
	version func(R) int64
}

func (h ruleHandlers[C, R]) write(w http.ResponseWriter, status int, rule R) {
	setETag(w, h.version(rule))
	writeJSON(w, status, h.view(rule))
}

// handleCreate is POST: 201 with the rule.
func (h ruleHandlers[C, R]) handleCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd C
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	rule, err := h.create(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), cmd)
	if err != nil {
		return err
	}
	h.write(w, http.StatusCreated, rule)
	return nil
}

// handleList is GET of the collection: in the order the rules apply;
// ?limit= (1–100, default 100) and ?cursor=.
func (h ruleHandlers[C, R]) handleList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	limit, err := listLimit(r)
	if err != nil {
		return err
	}
	rules, next, err := h.list(r.Context(), principalOf(r.Context()).WorkspaceID, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	data := make([]any, len(rules))
	for i, rule := range rules {
		data[i] = h.view(rule)
	}
	writeList(w, data, next)
	return nil
}

// handleGet is GET of one rule.
func (h ruleHandlers[C, R]) handleGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", h.noun)
	if err != nil {
		return err
	}
	rule, err := h.get(r.Context(), principalOf(r.Context()).WorkspaceID, id)
	if err != nil {
		return err
	}
	h.write(w, http.StatusOK, rule)
	return nil
}

// handleReplace is PUT, honouring If-Match.
func (h ruleHandlers[C, R]) handleReplace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, match, err := versionedTarget(r, p, h.noun)
	if err != nil {
		return err
	}
	var cmd C
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	rule, err := h.replace(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, match, cmd)
	if err != nil {
		return err
	}
	h.write(w, http.StatusOK, rule)
	return nil
}

// handleDelete is DELETE: 200 with {"id", "deleted": true}.
func (h ruleHandlers[C, R]) handleDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", h.noun)
	if err != nil {
		return err
	}
	if err := h.delete(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
	return nil
}
