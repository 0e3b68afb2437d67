package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/automation"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// SLAPolicies manages a workspace's SLA policies.
type SLAPolicies interface {
	CreateSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd commands.SLAPolicyWrite) (commands.SLAPolicy, error)
	ReplaceSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd commands.SLAPolicyWrite) (commands.SLAPolicy, error)
	DeleteSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error
	GetSLAPolicy(ctx context.Context, workspaceID, id uuid.UUID) (commands.SLAPolicy, error)
	ListSLAPolicies(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) ([]commands.SLAPolicy, string, error)
}

// slaPolicyJSON is an SLA policy as the API shows it.
type slaPolicyJSON struct {
	ID            uuid.UUID                   `json:"id"`
	Name          string                      `json:"name"`
	Position      int                         `json:"position"`
	Active        bool                        `json:"active"`
	Conditions    automation.Conditions       `json:"conditions"`
	FirstResponse *helpdeskflow.SLATargetSpec `json:"first_response"`
	Resolution    *helpdeskflow.SLATargetSpec `json:"resolution"`
	Version       int64                       `json:"version"`
	CreatedAt     string                      `json:"created_at"`
	UpdatedAt     string                      `json:"updated_at"`
}

func toSLAPolicyJSON(p commands.SLAPolicy) slaPolicyJSON {
	return slaPolicyJSON{ID: p.ID, Name: p.Name, Position: p.Position, Active: p.Active, Conditions: p.Conditions,
		FirstResponse: p.FirstResponse, Resolution: p.Resolution, Version: p.Version,
		CreatedAt: formatTime(p.CreatedAt), UpdatedAt: formatTime(p.UpdatedAt)}
}

func writeSLAPolicy(w http.ResponseWriter, status int, p commands.SLAPolicy) {
	setETag(w, p.Version)
	writeJSON(w, status, toSLAPolicyJSON(p))
}

// handleSLAPolicyCreate is POST /v1/sla-policies (admin): 201 with the
// policy.
func (s *Server) handleSLAPolicyCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd commands.SLAPolicyWrite
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	p, err := s.cfg.SLAPolicies.CreateSLAPolicy(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), cmd)
	if err != nil {
		return err
	}
	writeSLAPolicy(w, http.StatusCreated, p)
	return nil
}

// handleSLAPolicyList is GET /v1/sla-policies (admin): in the order they
// are tried; ?limit= (1–100, default 100) and ?cursor=.
func (s *Server) handleSLAPolicyList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	limit, err := listLimit(r)
	if err != nil {
		return err
	}
	policies, next, err := s.cfg.SLAPolicies.ListSLAPolicies(r.Context(), principalOf(r.Context()).WorkspaceID, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	data := make([]slaPolicyJSON, len(policies))
	for i, p := range policies {
		data[i] = toSLAPolicyJSON(p)
	}
	writeList(w, data, next)
	return nil
}

// handleSLAPolicyGet is GET /v1/sla-policies/{id} (admin).
func (s *Server) handleSLAPolicyGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "SLA policy")
	if err != nil {
		return err
	}
	policy, err := s.cfg.SLAPolicies.GetSLAPolicy(r.Context(), principalOf(r.Context()).WorkspaceID, id)
	if err != nil {
		return err
	}
	writeSLAPolicy(w, http.StatusOK, policy)
	return nil
}

// handleSLAPolicyReplace is PUT /v1/sla-policies/{id} (admin), honouring
// If-Match; the policy's open tickets get the new targets soon after.
func (s *Server) handleSLAPolicyReplace(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "SLA policy")
	if err != nil {
		return err
	}
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	var cmd commands.SLAPolicyWrite
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	policy, err := s.cfg.SLAPolicies.ReplaceSLAPolicy(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, match, cmd)
	if err != nil {
		return err
	}
	writeSLAPolicy(w, http.StatusOK, policy)
	return nil
}

// handleSLAPolicyDelete is DELETE /v1/sla-policies/{id} (admin): 200 with
// {"id", "deleted": true}.
func (s *Server) handleSLAPolicyDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "SLA policy")
	if err != nil {
		return err
	}
	if err := s.cfg.SLAPolicies.DeleteSLAPolicy(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
	return nil
}
