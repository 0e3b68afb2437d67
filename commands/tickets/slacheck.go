package tickets

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
)

// slaChoice returns the event giving t the SLA policy the workspace's
// policies choose for it now (see sla.Choose), with the SLA's metadata
// caused by causation, or nothing.
func slaChoice(ruleSet *rules.Set, t helpdeskflow.Ticket, customer helpdeskflow.Customer, md helpdeskflow.Metadata, causation uuid.UUID, now time.Time) ([]taggedEvent, error) {
	e, err := sla.Choose(ruleSet.Policies(), t, customer, now)
	if err != nil || e == nil {
		return nil, err
	}
	return tagged(sla.Metadata(md, causation), *e), nil
}

// slaDue returns the warning and breach events that are due on t at now
// and not recorded yet (see sla.Due), with metadata md.
func slaDue(t helpdeskflow.Ticket, md helpdeskflow.Metadata, now time.Time) ([]taggedEvent, error) {
	due, err := sla.Due(t, now)
	if err != nil {
		return nil, err
	}
	return tagged(md, due...), nil
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
		locked, err := s.lockTicket(ctx, tx, ref)
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
		md := sla.Metadata(helpdeskflow.Metadata{}, uuid.Nil)
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
		if _, err := s.appendToLocked(ctx, tx, ref, locked, &t, decided); err != nil {
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
