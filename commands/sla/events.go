package sla

import (
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Metadata is the metadata of the SLA events a command or the timer worker
// appends: the system acting (actor "sla", channel system), in request md's
// request and correlation, caused by causation (uuid.Nil: no cause).
func Metadata(md helpdeskflow.Metadata, causation uuid.UUID) helpdeskflow.Metadata {
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

// Choose returns the ticket.sla_policy_applied event, at now, giving t the
// policy of policies that applies to it now (see Select), or nil when it
// already has that policy at that version (or none applies and it has
// none). A closed ticket keeps what it has.
func Choose(policies []Policy, t helpdeskflow.Ticket, customer helpdeskflow.Customer, now time.Time) (*helpdeskflow.NewEvent, error) {
	if t.Status == helpdeskflow.StatusClosed || (len(policies) == 0 && t.SLA == nil) {
		return nil, nil
	}
	p := Select(policies, t, customer)
	if !NeedsApply(t.SLA, p) {
		return nil, nil
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketSLAPolicyApplied, Applied(p))
	if err != nil {
		return nil, err
	}
	e.OccurredAt = now
	return &e, nil
}

// Due returns the ticket.sla_warning and ticket.sla_breached events, at
// now, that are due on t at now and not recorded yet.
func Due(t helpdeskflow.Ticket, now time.Time) ([]helpdeskflow.NewEvent, error) {
	if t.SLA == nil {
		return nil, nil
	}
	var out []helpdeskflow.NewEvent
	for _, d := range t.SLA.Due(now, t.Status) {
		e, err := helpdeskflow.NewEventOf(d.Type, d.Point)
		if err != nil {
			return nil, err
		}
		e.OccurredAt = now
		out = append(out, e)
	}
	return out, nil
}
