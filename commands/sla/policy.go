package sla

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

// Limits on a policy.
const (
	MaxNameLen = 200    // characters of Name
	MaxMinutes = 525600 // a target's minutes: one year
)

// Policy is an SLA policy. It applies to the tickets its Conditions match
// (the automation package's condition language over ticket.* and
// customer.* fields, e.g. ticket.priority in [high, urgent], ticket.tags
// includes vip, customer.custom_fields.tier is gold). Version is the
// policy's stream version, recorded on the tickets it applies to. A nil
// target is one the policy does not have.
type Policy struct {
	ID            uuid.UUID                   `json:"id"`
	Version       int64                       `json:"version"`
	Name          string                      `json:"name"`
	Position      int                         `json:"position"`
	Active        bool                        `json:"active"`
	Conditions    automation.Conditions       `json:"conditions"`
	FirstResponse *helpdeskflow.SLATargetSpec `json:"first_response"`
	Resolution    *helpdeskflow.SLATargetSpec `json:"resolution"`
}

// Validate reports every problem of p at once, as an *helpdeskflow.Error
// with code EValidation whose Details name each field by its path: name
// (required, at most MaxNameLen characters), position (not negative),
// conditions… (see automation.ValidateConditions), first_response.minutes
// (1 to MaxMinutes), first_response.warn_before_minutes (0 or more, less
// than minutes), the same for resolution, and targets when the policy has
// neither target. It returns nil for a valid policy. Validate does not look
// at ID, Version or Active.
func (p Policy) Validate() error {
	var probs []helpdeskflow.FieldProblem
	add := func(field, format string, args ...any) {
		probs = append(probs, helpdeskflow.FieldProblem{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(p.Name) == "" {
		add("name", "must not be empty")
	} else if utf8.RuneCountInString(p.Name) > MaxNameLen {
		add("name", "must be at most %d characters", MaxNameLen)
	}
	if p.Position < 0 {
		add("position", "must not be negative")
	}
	probs = append(probs, automation.ValidateConditions(p.Conditions, "conditions")...)
	for _, t := range []struct {
		name string
		spec *helpdeskflow.SLATargetSpec
	}{{helpdeskflow.SLAFirstResponse, p.FirstResponse}, {helpdeskflow.SLAResolution, p.Resolution}} {
		if t.spec == nil {
			continue
		}
		minutesOK := t.spec.Minutes >= 1 && t.spec.Minutes <= MaxMinutes
		if !minutesOK {
			add(t.name+".minutes", "must be 1 to %d", MaxMinutes)
		}
		// Compared with minutes only when those are valid, so that one
		// mistake is reported once.
		if w := t.spec.WarnBeforeMinutes; w < 0 || (minutesOK && w >= t.spec.Minutes) {
			add(t.name+".warn_before_minutes", "must be 0 (no warning) or more, and less than minutes")
		}
	}
	if p.FirstResponse == nil && p.Resolution == nil {
		add("targets", "a policy needs first_response or resolution")
	}
	if len(probs) == 0 {
		return nil
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation,
		Message: fmt.Sprintf("invalid SLA policy: %d problem(s)", len(probs)), Details: probs}
}

// Select returns the policy that applies to ticket t of customer c: the
// first active policy, ordered by (Position, ID), whose conditions match
// (automation.Matches). It returns nil when none does. The result does not
// depend on the order of policies (ids are unique); it points into the
// policies slice, which Select does not modify.
func Select(policies []Policy, t helpdeskflow.Ticket, c helpdeskflow.Customer) *Policy {
	order := make([]int, 0, len(policies))
	for i := range policies {
		if policies[i].Active {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &policies[i], &policies[j]
		if a.Position != b.Position {
			if a.Position < b.Position {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	for _, i := range order {
		if automation.Matches(policies[i].Conditions, t, c) {
			return &policies[i]
		}
	}
	return nil
}

// Applied returns the data of the ticket.sla_policy_applied event that
// applies p to a ticket, or, for a nil p, the event that removes the
// ticket's SLA (PolicyID nil). The targets are copies of p's.
func Applied(p *Policy) helpdeskflow.SLAPolicyApplied {
	if p == nil {
		return helpdeskflow.SLAPolicyApplied{}
	}
	id := p.ID
	return helpdeskflow.SLAPolicyApplied{PolicyID: &id, PolicyVersion: p.Version, PolicyName: p.Name,
		FirstResponse: copySpec(p.FirstResponse), Resolution: copySpec(p.Resolution)}
}

// NeedsApply reports whether a ticket whose SLA is current needs a
// ticket.sla_policy_applied event for p (the result of Select, nil when no
// policy applies): when p has another id or version than current, when the
// ticket has an SLA and p is nil, or when it has none and p is set.
func NeedsApply(current *helpdeskflow.TicketSLA, p *Policy) bool {
	if current == nil || p == nil {
		return (current == nil) != (p == nil)
	}
	return current.PolicyID != p.ID || current.PolicyVersion != p.Version
}

func copySpec(s *helpdeskflow.SLATargetSpec) *helpdeskflow.SLATargetSpec {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
