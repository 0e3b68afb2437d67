package rules

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

// MaxAutomations is the most automation rules a workspace may have.
const MaxAutomations = 500

var automationRules = ruleKind{
	kind: helpdeskflow.RuleKindAutomation, stream: helpdeskflow.StreamAutomation,
	created: helpdeskflow.EventAutomationCreated, updated: helpdeskflow.EventAutomationUpdated,
	deleted: helpdeskflow.EventAutomationDeleted, max: MaxAutomations, noun: "automation rule",
}

// AutomationRule is the body of POST /v1/automations and PUT
// /v1/automations/{id}. On PUT, an absent position or active keeps the
// rule's; on POST, position defaults to after the last rule and active to
// true.
type AutomationRule struct {
	Name       string                `json:"name"`
	Position   *int                  `json:"position"`
	Active     *bool                 `json:"active"`
	Conditions automation.Conditions `json:"conditions"`
	Actions    []automation.Action   `json:"actions"`
}

// Automation is a stored automation rule.
type Automation struct {
	automation.Rule
	CreatedAt time.Time
	UpdatedAt time.Time
}

// automationData is the data of automation.created and automation.updated
// events, and the stored definition: the whole rule.
type automationData struct {
	Name       string                `json:"name"`
	Position   int                   `json:"position"`
	Active     bool                  `json:"active"`
	Conditions automation.Conditions `json:"conditions"`
	Actions    []automation.Action   `json:"actions"`
}

// rule builds the rule cmd describes over current (nil for a new rule)
// and validates it, listing every problem.
func (cmd AutomationRule) Rule(current *automation.Rule, all []helpdeskflow.RuleRecord) (automation.Rule, error) {
	r := automation.Rule{Name: strings.TrimSpace(commands.CleanLine(cmd.Name)), Position: nextPosition(all), Active: true,
		Conditions: cmd.Conditions, Actions: cleanActions(cmd.Actions)}
	if current != nil {
		r.ID, r.Position, r.Active = current.ID, current.Position, current.Active
	}
	if cmd.Position != nil {
		r.Position = *cmd.Position
	}
	if cmd.Active != nil {
		r.Active = *cmd.Active
	}
	r.Conditions = nonNilConditions(r.Conditions)
	if r.Actions == nil {
		r.Actions = []automation.Action{}
	}
	return r, r.Validate()
}

// Validate checks the rule as a new one, returning all problems at once as
// EValidation, without storing it.
func (cmd AutomationRule) Validate() error {
	_, err := cmd.Rule(nil, nil)
	return err
}

// cleanActions returns actions with the text they write into tickets
// cleaned as the API cleans it: tags, team and assignee as single-line
// plain text (CleanLine), a custom field's string value with CleanText. A
// rule's effects are therefore plain text like every other write.
// Values of the wrong type are left for validation to report.
func cleanActions(actions []automation.Action) []automation.Action {
	out := make([]automation.Action, len(actions))
	for i, a := range actions {
		switch a.Type {
		case automation.ActionAddTags, automation.ActionRemoveTags:
			if tags, ok := a.Value.([]any); ok {
				clean := make([]any, len(tags))
				for j, t := range tags {
					if s, ok := t.(string); ok {
						t = commands.CleanLine(s)
					}
					clean[j] = t
				}
				a.Value = clean
			}
		case automation.ActionAssignTeam, automation.ActionAssignAgent:
			if s, ok := a.Value.(string); ok {
				a.Value = commands.CleanLine(s)
			}
		case automation.ActionSetCustomField:
			if m, ok := a.Value.(map[string]any); ok {
				if s, ok := m["value"].(string); ok {
					m = maps.Clone(m)
					m["value"] = commands.CleanText(s)
					a.Value = m
				}
			}
		}
		out[i] = a
	}
	return out
}

// CreateAutomation validates and stores a new automation rule, recording
// automation.created on the rule's own stream. It returns EValidation
// listing every problem, EConflict when the workspace has MaxAutomations.
func (s *Service) CreateAutomation(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd AutomationRule) (Automation, error) {
	rec, err := s.saveRule(ctx, workspaceID, md, automationRules, uuid.Nil, nil, func(_ *helpdeskflow.RuleRecord, all []helpdeskflow.RuleRecord) (any, error) {
		r, err := cmd.Rule(nil, all)
		return dataOf(r), err
	})
	if err != nil {
		return Automation{}, err
	}
	return DecodeAutomation(rec)
}

// ReplaceAutomation replaces automation rule id (PUT), recording
// automation.updated with the whole new definition; the rule's version
// moves on, and tickets' audits name the version that acted. ifMatch
// works as for tickets. ENotFound for an unknown rule.
func (s *Service) ReplaceAutomation(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd AutomationRule) (Automation, error) {
	rec, err := s.saveRule(ctx, workspaceID, md, automationRules, id, ifMatch, func(current *helpdeskflow.RuleRecord, all []helpdeskflow.RuleRecord) (any, error) {
		old, err := DecodeAutomation(*current)
		if err != nil {
			return nil, err
		}
		r, err := cmd.Rule(&old.Rule, all)
		return dataOf(r), err
	})
	if err != nil {
		return Automation{}, err
	}
	return DecodeAutomation(rec)
}

// DeleteAutomation deletes automation rule id, recording
// automation.deleted. ENotFound for an unknown rule.
func (s *Service) DeleteAutomation(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error {
	return s.deleteRule(ctx, workspaceID, md, automationRules, id)
}

// GetAutomation returns automation rule id; ENotFound when the workspace
// has no such rule.
func (s *Service) GetAutomation(ctx context.Context, workspaceID, id uuid.UUID) (Automation, error) {
	rec, err := s.ruleRecord(ctx, workspaceID, automationRules, id)
	if err != nil {
		return Automation{}, err
	}
	return DecodeAutomation(rec)
}

// ListAutomations returns one page of the workspace's automation rules in
// the order they run, (position, id), and the next page's cursor ("" at
// the end).
func (s *Service) ListAutomations(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) ([]Automation, string, error) {
	return decodedPage(ctx, s, workspaceID, automationRules, cursor, limit, DecodeAutomation)
}

// nonNilConditions stores and shows absent condition lists as empty ones.
func nonNilConditions(c automation.Conditions) automation.Conditions {
	if c.All == nil {
		c.All = []automation.Condition{}
	}
	if c.Any == nil {
		c.Any = []automation.Condition{}
	}
	return c
}

func dataOf(r automation.Rule) automationData {
	return automationData{Name: r.Name, Position: r.Position, Active: r.Active, Conditions: r.Conditions, Actions: r.Actions}
}

func DecodeAutomation(rec helpdeskflow.RuleRecord) (Automation, error) {
	var d automationData
	if err := json.Unmarshal(rec.Definition, &d); err != nil {
		return Automation{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "decode automation rule " + rec.ID.String(), Err: err}
	}
	return Automation{Rule: automation.Rule{ID: rec.ID, Version: rec.Version, Name: d.Name, Position: d.Position, Active: d.Active,
		Conditions: d.Conditions, Actions: d.Actions}, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}, nil
}
