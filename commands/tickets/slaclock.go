package tickets

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
)

// slaMetadata is the metadata of the SLA events a command or the timer
// worker appends: the system acting, caused by causation.
func slaMetadata(md helpdeskflow.Metadata, causation uuid.UUID) helpdeskflow.Metadata {
	out := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "sla"}, Channel: helpdeskflow.ChannelSystem,
		RequestID: md.RequestID, CorrelationID: md.CorrelationID}
	if causation != uuid.Nil {
		out.CausationID = causation.String()
	}
	if out.CorrelationID == "" {
		out.CorrelationID = md.RequestID
	}
	return out
}

// slaChoice returns the event giving t the SLA policy the workspace's
// policies choose for it now, or nothing when it already has that policy
// at that version (or none applies and it has none). A closed ticket keeps
// what it has.
func slaChoice(ruleSet *rules.Set, t helpdeskflow.Ticket, customer helpdeskflow.Customer, md helpdeskflow.Metadata, causation uuid.UUID, now time.Time) ([]taggedEvent, error) {
	if t.Status == helpdeskflow.StatusClosed || (len(ruleSet.Policies()) == 0 && t.SLA == nil) {
		return nil, nil
	}
	p := sla.Select(ruleSet.Policies(), t, customer)
	if !sla.NeedsApply(t.SLA, p) {
		return nil, nil
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketSLAPolicyApplied, sla.Applied(p))
	if err != nil {
		return nil, err
	}
	e.OccurredAt = now
	return tagged(slaMetadata(md, causation), e), nil
}

// slaDue returns the warning and breach events that are due on t at now
// and not recorded yet.
func slaDue(t helpdeskflow.Ticket, md helpdeskflow.Metadata, now time.Time) ([]taggedEvent, error) {
	if t.SLA == nil {
		return nil, nil
	}
	var out []taggedEvent
	for _, d := range t.SLA.Due(now, t.Status) {
		e, err := helpdeskflow.NewEventOf(d.Type, d.Point)
		if err != nil {
			return nil, err
		}
		e.OccurredAt = now
		out = append(out, taggedEvent{e, md})
	}
	return out, nil
}

// scheduleSLA records when the timer worker must next look at t, after a
// change that left it as it is (hadSLA: it had an SLA before the change).
func scheduleSLA(ctx context.Context, tx Tx, hadSLA bool, t helpdeskflow.Ticket) {
	if t.SLA == nil || t.Status == helpdeskflow.StatusClosed {
		if hadSLA {
			tx.Timers.UnscheduleSLA(ctx, t.ID)
		}
		return
	}
	var at *time.Time
	if due, ok := t.SLA.NextDue(t.Status); ok {
		at = &due
	}
	tx.Timers.ScheduleSLA(ctx, t.WorkspaceID, t.ID, t.SLA.PolicyID, at)
}

// CheckSLA is the SLA timer worker's command for ticket id: under the
// ticket's stream lock it re-chooses the SLA policy (after a policy
// change), appends the ticket.sla_warning and ticket.sla_breached events
// that are due at the service's clock and not recorded yet, and schedules
// the next check. Recording a point in the ticket's own stream under its
// lock is what makes each fire once, however many workers check.
func (s *Service) CheckSLA(ctx context.Context, workspaceID, id uuid.UUID) error {
	return s.store.Transact(ctx, func(tx Tx) error {
		ruleSet, err := s.rules.Of(ctx, tx.Rules, workspaceID)
		if err != nil {
			return err
		}
		ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
		locked, err := lockTicket(ctx, tx, ref)
		if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
			tx.Timers.UnscheduleSLA(ctx, id)
			return nil
		}
		if err != nil {
			return err
		}
		t, version := locked.ticket, locked.version
		hadSLA := t.SLA != nil
		now := s.now()
		md := slaMetadata(helpdeskflow.Metadata{}, uuid.Nil)
		var decided []taggedEvent
		if len(ruleSet.Policies()) > 0 || hadSLA {
			customer, err := s.customerIn(ctx, tx, t.CustomerID)
			if err != nil {
				return err
			}
			if decided, err = slaChoice(ruleSet, t, customer, md, uuid.Nil, now); err != nil {
				return err
			}
		}
		after, err := applied(t, ref, version, decided)
		if err != nil {
			return err
		}
		due, err := slaDue(after, md, now)
		if err != nil {
			return err
		}
		decided = append(decided, due...)
		appended, err := s.appendTagged(ctx, tx, ref, version, decided)
		if err != nil {
			return err
		}
		for _, e := range appended {
			if err := helpdeskflow.ApplyTicket(&t, e); err != nil {
				return err
			}
		}
		if err := keepSnapshot(ctx, tx, ref, t.Version, len(appended), locked.tail+len(appended), t); err != nil {
			return err
		}
		scheduleSLA(ctx, tx, hadSLA, t)
		return nil
	})
}

// customerIn folds customer id as transaction tx sees it.
func (s *Service) customerIn(ctx context.Context, tx Tx, id uuid.UUID) (helpdeskflow.Customer, error) {
	c, _, err := loadCustomer(ctx, txSource{tx}, id)
	return c, err
}
