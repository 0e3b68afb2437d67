package tickets

import (
	"context"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

// taggedEvent is an event with its own metadata: automation effects carry
// the rule's, next to the command's own events.
type taggedEvent struct {
	helpdeskflow.NewEvent
	md helpdeskflow.Metadata
}

func tagged(md helpdeskflow.Metadata, events ...helpdeskflow.NewEvent) []taggedEvent {
	out := make([]taggedEvent, len(events))
	for i, e := range events {
		out[i] = taggedEvent{e, md}
	}
	return out
}

// runAutomations runs the workspace's active rules for one command and
// returns their effects as events, each with metadata naming its rule and
// version (channel automation, caused by the command's event causation).
// It returns EAutomationConflict, counted per rule, when the rules
// conflict; nothing is appended then.
func (s *Service) runAutomations(ruleSet *rules.Set, in automation.Input, md helpdeskflow.Metadata, causation uuid.UUID) ([]taggedEvent, error) {
	if !ruleSet.RunsAutomations() {
		return nil, nil
	}
	res, err := ruleSet.Run(in, s.metrics)
	if err != nil {
		return nil, err
	}
	effects := make(map[uuid.UUID]helpdeskflow.TicketUpdated, len(res.Effects))
	for _, e := range res.Effects {
		effects[e.RuleID] = e.Update
	}
	versions := make(map[uuid.UUID]int64, len(ruleSet.Automations()))
	for _, r := range ruleSet.Automations() {
		versions[r.ID] = r.Version
	}
	var out []taggedEvent
	for _, id := range res.Fired {
		ruleMD := helpdeskflow.Metadata{
			Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorRule, ID: id.String()}, Channel: helpdeskflow.ChannelAutomation,
			RequestID: md.RequestID, RuleID: id.String(), RuleVersion: versions[id],
			CausationID: causation.String(), CorrelationID: md.CorrelationID,
		}
		if ruleMD.CorrelationID == "" {
			ruleMD.CorrelationID = md.RequestID
		}
		if u, ok := effects[id]; ok {
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, u)
			if err != nil {
				return nil, err
			}
			out = append(out, taggedEvent{e, ruleMD})
		}
		for _, a := range res.Async {
			if a.RuleID != id {
				continue
			}
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketNotificationRequested, helpdeskflow.NotificationRequested{Action: a.Type, Value: a.Value})
			if err != nil {
				return nil, err
			}
			out = append(out, taggedEvent{e, ruleMD})
		}
	}
	return out, nil
}

// appendTagged appends events to ref at version, one Append per run of
// events sharing metadata (they all go out in the same round trip), and
// returns the stored events.
func (s *Service) appendTagged(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef, version int64, events []taggedEvent) ([]helpdeskflow.Event, error) {
	out := make([]helpdeskflow.Event, 0, len(events))
	for start := 0; start < len(events); {
		end := start + 1
		for end < len(events) && events[end].md == events[start].md {
			end++
		}
		batch := make([]helpdeskflow.NewEvent, 0, end-start)
		for _, e := range events[start:end] {
			batch = append(batch, e.NewEvent)
		}
		if _, err := tx.Events.Append(ctx, ref, version, events[start].md, batch); err != nil {
			return nil, err
		}
		for _, e := range events[start:end] {
			version++
			out = append(out, e.Stored(ref, version, e.md))
		}
		start = end
	}
	return out, nil
}
