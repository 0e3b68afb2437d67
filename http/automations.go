package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
)

// Automations manages a workspace's automation rules.
type Automations interface {
	CreateAutomation(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd rules.AutomationRule) (rules.Automation, error)
	ReplaceAutomation(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd rules.AutomationRule) (rules.Automation, error)
	DeleteAutomation(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error
	GetAutomation(ctx context.Context, workspaceID, id uuid.UUID) (rules.Automation, error)
	ListAutomations(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) ([]rules.Automation, string, error)
}

// AutomationSimulator runs a workspace's automation rules (or draft rules)
// for a ticket command without storing anything.
type AutomationSimulator interface {
	SimulateAutomations(ctx context.Context, workspaceID uuid.UUID, cmd tickets.SimulateAutomations) (tickets.Simulation, error)
}

// automationJSON is an automation rule as the API shows it.
type automationJSON struct {
	ID         uuid.UUID             `json:"id"`
	Name       string                `json:"name"`
	Position   int                   `json:"position"`
	Active     bool                  `json:"active"`
	Conditions automation.Conditions `json:"conditions"`
	Actions    []automation.Action   `json:"actions"`
	Version    int64                 `json:"version"`
	CreatedAt  string                `json:"created_at"`
	UpdatedAt  string                `json:"updated_at"`
}

func toAutomationJSON(a rules.Automation) automationJSON {
	return automationJSON{ID: a.ID, Name: a.Name, Position: a.Position, Active: a.Active, Conditions: a.Conditions,
		Actions: a.Actions, Version: a.Version, CreatedAt: formatTime(a.CreatedAt), UpdatedAt: formatTime(a.UpdatedAt)}
}

// automationRules serves /v1/automations[/{id}] (admin).
func (s *Server) automationRules() ruleHandlers[rules.AutomationRule, rules.Automation] {
	a := s.cfg.Automations
	return ruleHandlers[rules.AutomationRule, rules.Automation]{noun: "automation rule",
		create: a.CreateAutomation, replace: a.ReplaceAutomation, delete: a.DeleteAutomation, get: a.GetAutomation, list: a.ListAutomations,
		view: func(r rules.Automation) any { return toAutomationJSON(r) }, version: func(r rules.Automation) int64 { return r.Version }}
}

type simulationJSON struct {
	Trigger  string          `json:"trigger"`
	Fired    []firedRuleJSON `json:"fired"`
	Passes   int             `json:"passes"`
	Conflict *errorDetail    `json:"conflict"`
	Ticket   ticketJSON      `json:"ticket"`
}

type firedRuleJSON struct {
	RuleID      uuid.UUID                            `json:"rule_id"`
	RuleVersion int64                                `json:"rule_version"`
	Name        string                               `json:"name"`
	Position    int                                  `json:"position"`
	Changes     []helpdeskflow.FieldChange           `json:"changes"`
	Async       []helpdeskflow.NotificationRequested `json:"async_actions"`
}

// handleAutomationSimulate is POST /v1/automations/simulate (admin): which
// rules a command would fire, in order, and the ticket it would leave,
// storing nothing. A conflict the command would be refused with is
// reported in "conflict" (200).
func (s *Server) handleAutomationSimulate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd tickets.SimulateAutomations
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	sim, err := s.cfg.Simulator.SimulateAutomations(r.Context(), principalOf(r.Context()).WorkspaceID, cmd)
	if err != nil {
		return err
	}
	out := simulationJSON{Trigger: sim.Trigger, Fired: []firedRuleJSON{}, Passes: sim.Passes, Ticket: toTicketJSON(sim.Ticket, s.cfg.Now())}
	for _, f := range sim.Fired {
		async := f.Async
		if async == nil {
			async = []helpdeskflow.NotificationRequested{}
		}
		out.Fired = append(out.Fired, firedRuleJSON{RuleID: f.RuleID, RuleVersion: f.RuleVersion, Name: f.Name, Position: f.Position,
			Changes: f.Changes, Async: async})
	}
	if sim.Conflict != nil {
		conflict := toErrorDetail(r, sim.Conflict)
		out.Conflict = &conflict
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
