package rules

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
)

// MaxSLAPolicies is the most SLA policies a workspace may have.
const MaxSLAPolicies = 100

// slaPolicies is SLA policies' kind of rule. s is the service whose clock
// marks a changed policy's tickets due.
func (s *Service) slaPolicies() ruleKind {
	return ruleKind{
		kind: helpdeskflow.RuleKindSLAPolicy, stream: helpdeskflow.StreamSLAPolicy,
		created: helpdeskflow.EventSLAPolicyCreated, updated: helpdeskflow.EventSLAPolicyUpdated,
		deleted: helpdeskflow.EventSLAPolicyDeleted, max: MaxSLAPolicies, noun: "SLA policy",
		changed: func(ctx context.Context, tx Tx, workspaceID, id uuid.UUID) {
			tx.RecheckSLAPolicy(ctx, workspaceID, id, s.now())
		},
	}
}

// SLAPolicyWrite is the body of POST /v1/sla-policies and PUT
// /v1/sla-policies/{id}. As for automation rules, an absent position or
// active keeps the policy's on PUT and defaults to the end and true on POST.
type SLAPolicyWrite struct {
	Name          string                      `json:"name"`
	Position      *int                        `json:"position"`
	Active        *bool                       `json:"active"`
	Conditions    automation.Conditions       `json:"conditions"`
	FirstResponse *helpdeskflow.SLATargetSpec `json:"first_response"`
	Resolution    *helpdeskflow.SLATargetSpec `json:"resolution"`
}

// SLAPolicy is a stored SLA policy.
type SLAPolicy struct {
	sla.Policy
	CreatedAt time.Time
	UpdatedAt time.Time
}

// slaPolicyData is the data of sla_policy.created and sla_policy.updated
// events, and the stored definition.
type slaPolicyData struct {
	Name          string                      `json:"name"`
	Position      int                         `json:"position"`
	Active        bool                        `json:"active"`
	Conditions    automation.Conditions       `json:"conditions"`
	FirstResponse *helpdeskflow.SLATargetSpec `json:"first_response"`
	Resolution    *helpdeskflow.SLATargetSpec `json:"resolution"`
}

func (cmd SLAPolicyWrite) policy(current *sla.Policy, all []helpdeskflow.RuleRecord) (slaPolicyData, error) {
	p := sla.Policy{Name: strings.TrimSpace(commands.CleanLine(cmd.Name)), Position: nextPosition(all), Active: true, Conditions: cmd.Conditions,
		FirstResponse: cmd.FirstResponse, Resolution: cmd.Resolution}
	if current != nil {
		p.Position, p.Active = current.Position, current.Active
	}
	if cmd.Position != nil {
		p.Position = *cmd.Position
	}
	if cmd.Active != nil {
		p.Active = *cmd.Active
	}
	p.Conditions = nonNilConditions(p.Conditions)
	return slaPolicyData{Name: p.Name, Position: p.Position, Active: p.Active, Conditions: p.Conditions,
		FirstResponse: p.FirstResponse, Resolution: p.Resolution}, p.Validate()
}

// Validate checks the policy as a new one, returning all problems at once
// as EValidation, without storing it.
func (cmd SLAPolicyWrite) Validate() error {
	_, err := cmd.policy(nil, nil)
	return err
}

// CreateSLAPolicy validates and stores a new SLA policy, recording
// sla_policy.created. Tickets created or changed from now on that it
// matches (and that no policy before it in position order matches) get it.
func (s *Service) CreateSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd SLAPolicyWrite) (SLAPolicy, error) {
	rec, err := s.saveRule(ctx, workspaceID, md, s.slaPolicies(), uuid.Nil, nil, func(_ *helpdeskflow.RuleRecord, all []helpdeskflow.RuleRecord) (any, error) {
		return cmd.policy(nil, all)
	})
	if err != nil {
		return SLAPolicy{}, err
	}
	return DecodeSLAPolicy(rec)
}

// ReplaceSLAPolicy replaces SLA policy id (PUT), recording
// sla_policy.updated. Every open ticket that has the policy is
// re-evaluated by the SLA timer worker soon after: it gets the new
// targets (or another policy) with a ticket.sla_policy_applied event.
func (s *Service) ReplaceSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd SLAPolicyWrite) (SLAPolicy, error) {
	rec, err := s.saveRule(ctx, workspaceID, md, s.slaPolicies(), id, ifMatch, func(current *helpdeskflow.RuleRecord, all []helpdeskflow.RuleRecord) (any, error) {
		old, err := DecodeSLAPolicy(*current)
		if err != nil {
			return nil, err
		}
		return cmd.policy(&old.Policy, all)
	})
	if err != nil {
		return SLAPolicy{}, err
	}
	return DecodeSLAPolicy(rec)
}

// DeleteSLAPolicy deletes SLA policy id, recording sla_policy.deleted; its
// open tickets are re-evaluated like after ReplaceSLAPolicy.
func (s *Service) DeleteSLAPolicy(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error {
	return s.deleteRule(ctx, workspaceID, md, s.slaPolicies(), id)
}

// GetSLAPolicy returns SLA policy id; ENotFound when the workspace has no
// such policy.
func (s *Service) GetSLAPolicy(ctx context.Context, workspaceID, id uuid.UUID) (SLAPolicy, error) {
	rec, err := s.ruleRecord(ctx, workspaceID, s.slaPolicies(), id)
	if err != nil {
		return SLAPolicy{}, err
	}
	return DecodeSLAPolicy(rec)
}

// ListSLAPolicies returns one page of the workspace's SLA policies in the
// order they are tried, (position, id).
func (s *Service) ListSLAPolicies(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) ([]SLAPolicy, string, error) {
	return decodedPage(ctx, s, workspaceID, s.slaPolicies(), cursor, limit, DecodeSLAPolicy)
}

func DecodeSLAPolicy(rec helpdeskflow.RuleRecord) (SLAPolicy, error) {
	var d slaPolicyData
	if err := json.Unmarshal(rec.Definition, &d); err != nil {
		return SLAPolicy{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "decode SLA policy " + rec.ID.String(), Err: err}
	}
	return SLAPolicy{Policy: sla.Policy{ID: rec.ID, Version: rec.Version, Name: d.Name, Position: d.Position, Active: d.Active,
		Conditions: d.Conditions, FirstResponse: d.FirstResponse, Resolution: d.Resolution}, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}, nil
}
