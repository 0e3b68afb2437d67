package tickets

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

// SimulateAutomations is the body of POST /v1/automations/simulate: either
// Ticket (a new ticket, as POST /v1/tickets takes it), or TicketID with
// exactly one of Update (as PATCH takes it) and Message (as POST
// …/messages takes it). Rules, when given, are evaluated instead of the
// workspace's rules, so a rule can be tried before it is saved; draft rule
// i gets the id 00000000-0000-0000-0000-<i+1 in 12 hex digits>.
type SimulateAutomations struct {
	Ticket   *CreateTicket          `json:"ticket"`
	TicketID *uuid.UUID             `json:"ticket_id"`
	Update   *UpdateTicket          `json:"update"`
	Message  *AddMessage            `json:"message"`
	Rules    []rules.AutomationRule `json:"rules"`
}

// Simulation is what a command would do: the rules that would fire, in
// firing order, and the resulting ticket; or Conflict, the
// EAutomationConflict the command would be refused with.
type Simulation struct {
	Trigger  string
	Fired    []FiredRule
	Passes   int
	Ticket   helpdeskflow.Ticket
	Conflict error
}

// FiredRule is one rule that would fire and what it would change.
type FiredRule struct {
	RuleID      uuid.UUID
	RuleVersion int64
	Name        string
	Position    int
	Changes     []helpdeskflow.FieldChange
	Async       []helpdeskflow.NotificationRequested
}

// SimulateAutomations runs the workspace's automation rules (or cmd.Rules)
// for the command cmd describes, exactly as the command would, and stores
// nothing. It returns EValidation for an invalid command or draft rule,
// and the command's own refusals (ENotFound, EConflict for a closed
// ticket) as the command would.
func (s *Service) SimulateAutomations(ctx context.Context, workspaceID uuid.UUID, cmd SimulateAutomations) (Simulation, error) {
	in, inErr := s.simulationInput(ctx, workspaceID, cmd)
	rules, rulesErr := s.simulationRules(ctx, workspaceID, cmd.Rules)
	if helpdeskflow.ErrorCode(inErr) == helpdeskflow.EValidation && helpdeskflow.ErrorCode(rulesErr) == helpdeskflow.EValidation {
		// Every problem at once, the command's and the draft rules'.
		return Simulation{}, commands.Problems(append(helpdeskflow.ErrorDetails(inErr), helpdeskflow.ErrorDetails(rulesErr)...)).Err()
	}
	if inErr != nil {
		return Simulation{}, inErr
	}
	if rulesErr != nil {
		return Simulation{}, rulesErr
	}
	sim := Simulation{Trigger: in.Trigger, Ticket: in.Ticket}
	sim.Ticket.Customer = &in.Customer
	res, err := automation.Run(in, rules, automation.Options{})
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EAutomationConflict {
		sim.Conflict = err
		return sim, nil
	}
	if err != nil {
		return Simulation{}, err
	}
	sim.Ticket, sim.Passes = res.Ticket, res.Passes
	sim.Ticket.Customer = &in.Customer
	byID := make(map[uuid.UUID]automation.Rule, len(rules))
	for _, r := range rules {
		byID[r.ID] = r
	}
	for _, id := range res.Fired {
		r := byID[id]
		f := FiredRule{RuleID: id, RuleVersion: r.Version, Name: r.Name, Position: r.Position, Changes: []helpdeskflow.FieldChange{}}
		for _, e := range res.Effects {
			if e.RuleID == id {
				ev, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, e.Update)
				if err != nil {
					return Simulation{}, err
				}
				if f.Changes, err = helpdeskflow.FieldChanges(helpdeskflow.Event{Type: ev.Type, Data: ev.Data}); err != nil {
					return Simulation{}, err
				}
			}
		}
		for _, a := range res.Async {
			if a.RuleID == id {
				f.Async = append(f.Async, helpdeskflow.NotificationRequested{Action: a.Type, Value: a.Value})
			}
		}
		sim.Fired = append(sim.Fired, f)
	}
	return sim, nil
}

// Validate checks the request without looking anything up, returning all
// problems at once as EValidation: which command it describes, that
// command's fields (prefixed ticket., update. or message.) and the draft
// rules (rules[i].).
func (cmd SimulateAutomations) Validate() error {
	p := cmd.shape()
	if cmd.Ticket != nil {
		p = append(p, helpdeskflow.ErrorDetails(prefixed(cmd.Ticket.Validate(), "ticket."))...)
	}
	if cmd.Update != nil {
		p = append(p, helpdeskflow.ErrorDetails(prefixed(cmd.Update.Validate(), "update."))...)
	}
	if cmd.Message != nil {
		p = append(p, helpdeskflow.ErrorDetails(prefixed(cmd.Message.Validate(), "message."))...)
	}
	if len(cmd.Rules) > 0 {
		_, err := draftRules(cmd.Rules)
		p = append(p, helpdeskflow.ErrorDetails(err)...)
	}
	return p.Err()
}

// shape names what is wrong with the combination of fields given.
func (cmd SimulateAutomations) shape() commands.Problems {
	var p commands.Problems
	switch {
	case cmd.Ticket != nil && cmd.TicketID != nil:
		p.Add("ticket_id", "give either ticket (a new ticket) or ticket_id (an existing one), not both")
	case cmd.Ticket == nil && cmd.TicketID == nil:
		p.Add("ticket", "required: a new ticket, or ticket_id with update or message")
	case cmd.TicketID != nil && (cmd.Update == nil) == (cmd.Message == nil):
		p.Add("update", "give exactly one of update and message with ticket_id")
	case cmd.Ticket != nil && (cmd.Update != nil || cmd.Message != nil):
		p.Add("update", "update and message go with ticket_id, not with a new ticket")
	}
	return p
}

// simulationInput builds the engine's input for the command cmd describes.
func (s *Service) simulationInput(ctx context.Context, workspaceID uuid.UUID, cmd SimulateAutomations) (automation.Input, error) {
	if err := cmd.shape().Err(); err != nil {
		return automation.Input{}, err
	}
	if cmd.Ticket != nil {
		return s.newTicketInput(ctx, workspaceID, cmd.Ticket)
	}
	var decide func(helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error)
	if cmd.Update != nil {
		if err := cmd.Update.Validate(); err != nil {
			return automation.Input{}, prefixed(err, "update.")
		}
		decide = cmd.Update.decide
	} else {
		d, err := cmd.Message.decider()
		if err != nil {
			return automation.Input{}, prefixed(err, "message.")
		}
		decide = d
	}
	before, _, err := loadTicket(ctx, storeSource{s.store, workspaceID}, *cmd.TicketID)
	if err != nil {
		return automation.Input{}, err
	}
	decided, err := decide(before)
	if err != nil {
		return automation.Input{}, err
	}
	if len(decided) == 0 {
		return automation.Input{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the update changes nothing, so no automation would run",
			Details: []helpdeskflow.FieldProblem{{Field: "update", Problem: "changes nothing on this ticket"}}}
	}
	ref := helpdeskflow.StreamRef{ID: before.ID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
	after, err := applied(before, ref, before.Version, stamped(tagged(helpdeskflow.Metadata{}, decided...), s.now()))
	if err != nil {
		return automation.Input{}, err
	}
	customer, err := s.customerOf(ctx, workspaceID, before.CustomerID)
	if err != nil {
		return automation.Input{}, err
	}
	return automation.Input{Trigger: decided[0].Type, Before: &before, Ticket: after, Customer: customer}, nil
}

func (s *Service) newTicketInput(ctx context.Context, workspaceID uuid.UUID, cmd *CreateTicket) (automation.Input, error) {
	if err := cmd.Validate(); err != nil {
		return automation.Input{}, prefixed(err, "ticket.")
	}
	body, err := commands.SanitizedBody("ticket.message.body", cmd.Message.Body)
	if err != nil {
		return automation.Input{}, err
	}
	customer := helpdeskflow.Customer{Email: cmd.Customer.Email, Name: cmd.Customer.Name, WorkspaceID: workspaceID}
	if id, err := s.store.CustomerByEmail(ctx, workspaceID, cmd.Customer.Email); err == nil {
		if customer, err = s.customerOf(ctx, workspaceID, id); err != nil {
			return automation.Input{}, err
		}
	} else if helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		return automation.Input{}, err
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketCreated, cmd.created(customer.ID, helpdeskflow.ChannelAPI, body))
	if err != nil {
		return automation.Input{}, err
	}
	e.OccurredAt = s.now()
	ref := helpdeskflow.StreamRef{ID: uuid.Nil, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
	t, err := foldTicket([]helpdeskflow.Event{e.Stored(ref, 1, helpdeskflow.Metadata{})})
	if err != nil {
		return automation.Input{}, err
	}
	return automation.Input{Trigger: e.Type, Ticket: t, Customer: customer}, nil
}

func (s *Service) customerOf(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Customer, error) {
	c, _, err := loadCustomer(ctx, storeSource{s.store, workspaceID}, id)
	return c, err
}

// simulationRules returns the draft rules, validated and given their ids,
// or the workspace's rules when there are no drafts.
func (s *Service) simulationRules(ctx context.Context, workspaceID uuid.UUID, drafts []rules.AutomationRule) ([]automation.Rule, error) {
	if len(drafts) == 0 {
		set, err := s.store.RuleSet(ctx, workspaceID)
		if err != nil {
			return nil, err
		}
		compiled, err := rules.Compile(set)
		if err != nil {
			return nil, err
		}
		return compiled.Automations(), nil
	}
	return draftRules(drafts)
}

// draftRules validates draft rules and gives them ids in their order.
func draftRules(drafts []rules.AutomationRule) ([]automation.Rule, error) {
	if len(drafts) > rules.MaxAutomations {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "too many draft rules",
			Details: []helpdeskflow.FieldProblem{{Field: "rules", Problem: fmt.Sprintf("at most %d rules", rules.MaxAutomations)}}}
	}
	var p commands.Problems
	rules := make([]automation.Rule, len(drafts))
	for i, d := range drafts {
		if d.Position == nil {
			pos := i
			d.Position = &pos
		}
		r, err := d.Rule(nil, nil)
		for _, fp := range helpdeskflow.ErrorDetails(err) {
			p.Add(fmt.Sprintf("rules[%d].%s", i, fp.Field), "%s", fp.Problem)
		}
		binary.BigEndian.PutUint64(r.ID[8:], uint64(i+1))
		rules[i] = r
	}
	return rules, p.Err()
}

// prefixed puts prefix before the field names of an EValidation error.
func prefixed(err error, prefix string) error {
	if helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		return err
	}
	var p commands.Problems
	for _, fp := range helpdeskflow.ErrorDetails(err) {
		p.Add(prefix+fp.Field, "%s", fp.Problem)
	}
	return p.Err()
}
