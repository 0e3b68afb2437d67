package http

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

// SLAPolicies manages a workspace's SLA policies.
type SLAPolicies interface {
	CreateSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd rules.SLAPolicyWrite) (rules.SLAPolicy, error)
	ReplaceSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd rules.SLAPolicyWrite) (rules.SLAPolicy, error)
	DeleteSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error
	GetSLAPolicy(ctx context.Context, workspaceID, id uuid.UUID) (rules.SLAPolicy, error)
	ListSLAPolicies(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) ([]rules.SLAPolicy, string, error)
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

func toSLAPolicyJSON(p rules.SLAPolicy) slaPolicyJSON {
	return slaPolicyJSON{ID: p.ID, Name: p.Name, Position: p.Position, Active: p.Active, Conditions: p.Conditions,
		FirstResponse: p.FirstResponse, Resolution: p.Resolution, Version: p.Version,
		CreatedAt: formatTime(p.CreatedAt), UpdatedAt: formatTime(p.UpdatedAt)}
}

// slaPolicies serves /v1/sla-policies[/{id}] (admin).
func (s *Server) slaPolicies() ruleHandlers[rules.SLAPolicyWrite, rules.SLAPolicy] {
	p := s.cfg.SLAPolicies
	return ruleHandlers[rules.SLAPolicyWrite, rules.SLAPolicy]{noun: "SLA policy",
		create: p.CreateSLAPolicy, replace: p.ReplaceSLAPolicy, delete: p.DeleteSLAPolicy, get: p.GetSLAPolicy, list: p.ListSLAPolicies,
		view: func(r rules.SLAPolicy) any { return toSLAPolicyJSON(r) }, version: func(r rules.SLAPolicy) int64 { return r.Version }}
}
