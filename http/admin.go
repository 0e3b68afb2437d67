package http

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
)

// apiKeyJSON is an API key as the API shows it; Key is set only in the
// response that creates it.
type apiKeyJSON struct {
	ID         string  `json:"id"`
	Key        string  `json:"key,omitempty"`
	Role       string  `json:"role"`
	Name       string  `json:"name"`
	Prefix     string  `json:"prefix"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	RevokedAt  *string `json:"revoked_at,omitempty"`
}

func toAPIKeyJSON(k helpdeskflow.APIKey) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID.String(), Role: k.Role, Name: k.Name, Prefix: k.Prefix, CreatedAt: formatTime(k.CreatedAt)}
	if k.LastUsedAt != nil {
		t := formatTime(*k.LastUsedAt)
		out.LastUsedAt = &t
	}
	if k.RevokedAt != nil {
		t := formatTime(*k.RevokedAt)
		out.RevokedAt = &t
	}
	return out
}

// handleAPIKeyCreate is POST /v1/api-keys (admin): 201 with the key, shown
// only in this response.
func (s *Server) handleAPIKeyCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd access.CreateAPIKey
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	key, err := s.cfg.Admin.CreateAPIKey(r.Context(), metadata(r), principalOf(r.Context()).WorkspaceID, cmd)
	if err != nil {
		return err
	}
	out := toAPIKeyJSON(key.APIKey)
	out.Key = key.Secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// handleAPIKeyList is GET /v1/api-keys (admin): the workspace's active
// keys, oldest first, by prefix only; ?limit= (1–100, default 50) and
// ?cursor=.
func (s *Server) handleAPIKeyList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	limit, problem := queryLimit(r.URL.Query(), 50, 100)
	if problem != nil {
		return fieldError(problem.Field, problem.Problem)
	}
	page, err := s.cfg.AdminReader.ListAPIKeys(r.Context(), principalOf(r.Context()).WorkspaceID, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	writeListOf(w, page.Keys, toAPIKeyJSON, page.Next)
	return nil
}

// handleAPIKeyRevoke is DELETE /v1/api-keys/{id} (admin): revokes the key
// on every API process before answering 200 with the revoked key.
func (s *Server) handleAPIKeyRevoke(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "API key")
	if err != nil {
		return err
	}
	key, err := s.cfg.Admin.RevokeAPIKey(r.Context(), metadata(r), principalOf(r.Context()).WorkspaceID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPIKeyJSON(key))
	return nil
}

type ipBlocklistJSON struct {
	CIDRs []string `json:"cidrs"`
}

// handleIPBlocklistGet is GET /v1/ip-blocklist (admin).
func (s *Server) handleIPBlocklistGet(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	settings, err := s.cfg.AdminReader.WorkspaceSettings(r.Context(), principalOf(r.Context()).WorkspaceID)
	if err != nil {
		return err
	}
	out := ipBlocklistJSON{CIDRs: []string{}}
	for _, p := range settings.IPBlocklist {
		out.CIDRs = append(out.CIDRs, p.String())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleIPBlocklistPut is PUT /v1/ip-blocklist (admin): replaces the list;
// when it answers, every API process refuses the listed addresses.
func (s *Server) handleIPBlocklistPut(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var body struct {
		CIDRs []string `json:"cidrs"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	list, err := s.cfg.Admin.SetIPBlocklist(r.Context(), metadata(r), principalOf(r.Context()).WorkspaceID, body.CIDRs, clientIPOf(r.Context()))
	if err != nil {
		return err
	}
	out := ipBlocklistJSON{CIDRs: []string{}}
	for _, p := range list {
		out.CIDRs = append(out.CIDRs, p.String())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
