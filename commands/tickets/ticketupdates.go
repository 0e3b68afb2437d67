package tickets

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
)

// MaxTeamLen and MaxAssigneeIDLen bound those ticket fields, in characters.
const (
	MaxTeamLen       = 100
	MaxAssigneeIDLen = 255
)

// UpdateTicket is the body of PATCH /v1/tickets/{id}. Absent fields are left
// alone; assignee_id and team may be null to clear them; custom_fields are
// merged key by key, a null value removing the key.
type UpdateTicket struct {
	Subject      *string                   `json:"subject"`
	Status       *string                   `json:"status"`
	Priority     *string                   `json:"priority"`
	AssigneeID   commands.Nullable[string] `json:"assignee_id"`
	Team         commands.Nullable[string] `json:"team"`
	TagsAdd      []string                  `json:"tags_add"`
	TagsRemove   []string                  `json:"tags_remove"`
	CustomFields map[string]any            `json:"custom_fields"`
}

// Validate checks every field given, returning all problems at once as
// EValidation, and cleans the plain-text ones in place (subject, assignee_id
// and team with CleanLine and trimmed; tags as tags; custom field string
// values with CleanText).
func (u *UpdateTicket) Validate() error {
	var p commands.Problems
	if u.Subject != nil {
		*u.Subject = p.Line("subject", *u.Subject, true, commands.MaxSubjectLen)
	}
	if u.Status != nil {
		p.OneOf("status", *u.Status, helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold,
			helpdeskflow.StatusSolved, helpdeskflow.StatusClosed, helpdeskflow.StatusNew)
	}
	if u.Priority != nil {
		p.OneOf("priority", *u.Priority, helpdeskflow.PriorityLow, helpdeskflow.PriorityNormal, helpdeskflow.PriorityHigh, helpdeskflow.PriorityUrgent)
	}
	if v := u.AssigneeID.Value; v != nil {
		*v = p.Line("assignee_id", *v, true, MaxAssigneeIDLen)
	}
	if v := u.Team.Value; v != nil {
		*v = p.Line("team", *v, true, MaxTeamLen)
	}
	u.TagsAdd = p.Tags("tags_add", u.TagsAdd)
	u.TagsRemove = p.Tags("tags_remove", u.TagsRemove)
	for _, t := range u.TagsAdd {
		if slices.Contains(u.TagsRemove, t) {
			p.Add("tags_remove", "tag %q is also in tags_add", t)
		}
	}
	p.CustomFields("custom_fields", u.CustomFields)
	return p.Err()
}

// UpdateTicket changes ticket id of the workspace under its stream lock.
// ifMatch, when not nil, is the version the client last saw: another
// version is EPreconditionFailed. A closed ticket refuses every change
// (EConflict); a status change must follow the lifecycle (EValidation
// naming the allowed statuses); tags and custom fields may not grow past
// MaxTags and MaxCustomFields in total (ELimitExceeded). An update that changes nothing appends
// nothing. It returns the ticket as GetTicket does (with internal notes
// when includeInternal), and ENotFound for an unknown ticket.
func (s *Service) UpdateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd UpdateTicket, includeInternal bool) (helpdeskflow.Ticket, error) {
	if err := cmd.Validate(); err != nil {
		return helpdeskflow.Ticket{}, err
	}
	t, err := s.changeTicket(ctx, workspaceID, md, id, ifMatch, cmd.decide)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return s.withCustomerOf(ctx, t, includeInternal)
}

// decide returns the events updating t with u: none when nothing changes.
func (u UpdateTicket) decide(t helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error) {
	if t.Status == helpdeskflow.StatusClosed {
		return nil, helpdeskflow.Errorf(helpdeskflow.EConflict, "ticket %s is closed and cannot change; create a follow-up ticket", t.ID)
	}
	changes, err := ticketChanges(t, u)
	if err != nil || changes.Empty() {
		return nil, err
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, changes)
	return []helpdeskflow.NewEvent{e}, err
}

// ticketChanges compares cmd with the ticket's current state.
func ticketChanges(t helpdeskflow.Ticket, cmd UpdateTicket) (helpdeskflow.TicketUpdated, error) {
	var u helpdeskflow.TicketUpdated
	if cmd.Subject != nil && *cmd.Subject != t.Subject {
		u.Subject = &helpdeskflow.Change[string]{Old: t.Subject, New: *cmd.Subject}
	}
	if cmd.Status != nil && *cmd.Status != t.Status {
		if ok, allowed := helpdeskflow.TicketTransitionAllowed(t.Status, *cmd.Status); !ok {
			var p commands.Problems
			p.Add("status", "a %s ticket can move to %s, not to %s", t.Status, strings.Join(allowed, ", "), *cmd.Status)
			return u, p.Err()
		}
		u.Status = &helpdeskflow.Change[string]{Old: t.Status, New: *cmd.Status}
	}
	if cmd.Priority != nil && *cmd.Priority != t.Priority {
		u.Priority = &helpdeskflow.Change[string]{Old: t.Priority, New: *cmd.Priority}
	}
	if cmd.AssigneeID.Set && !equalPtr(cmd.AssigneeID.Value, t.AssigneeID) {
		u.AssigneeID = &helpdeskflow.Change[*string]{Old: t.AssigneeID, New: cmd.AssigneeID.Value}
	}
	if cmd.Team.Set && !equalPtr(cmd.Team.Value, t.Team) {
		u.Team = &helpdeskflow.Change[*string]{Old: t.Team, New: cmd.Team.Value}
	}
	if len(cmd.TagsAdd) > 0 || len(cmd.TagsRemove) > 0 {
		tags := slices.Clone(t.Tags)
		for _, tag := range cmd.TagsAdd {
			if !slices.Contains(tags, tag) {
				tags = append(tags, tag)
			}
		}
		tags = slices.DeleteFunc(tags, func(tag string) bool { return slices.Contains(cmd.TagsRemove, tag) })
		if len(tags) > commands.MaxTags && len(tags) > len(t.Tags) {
			return u, ticketTotalExceeded("tags_add", "tags", commands.MaxTags, len(t.Tags), len(tags)-len(t.Tags), "")
		}
		if !slices.Equal(tags, t.Tags) {
			u.Tags = &helpdeskflow.Change[[]string]{Old: nonNilTags(t.Tags), New: tags}
		}
	}
	u.CustomFields = keyChanges(t.CustomFields, cmd.CustomFields)
	// The total after merging: additions minus removals.
	added := 0
	for name, c := range u.CustomFields {
		_, had := t.CustomFields[name]
		switch {
		case !had && c.New != nil:
			added++
		case had && c.New == nil:
			added--
		}
	}
	if n := len(t.CustomFields) + added; n > commands.MaxCustomFields && added > 0 {
		return u, ticketTotalExceeded("custom_fields", "custom fields", commands.MaxCustomFields, len(t.CustomFields), added, "")
	}
	return u, nil
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func nonNilTags(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// ticketFull reports whether t has MaxTicketMessages messages and takes no
// more.
func ticketFull(t helpdeskflow.Ticket) bool { return len(t.Messages) >= MaxTicketMessages }

// AddMessage is the body of POST /v1/tickets/{id}/messages.
type AddMessage struct {
	Body       string `json:"body"`
	AuthorType string `json:"author_type"`
	Internal   bool   `json:"internal"`
}

// Validate checks every field, returning all problems at once as
// EValidation, and fills in the default author_type (agent). The body is
// sanitized as HTML when the message is added.
func (cmd *AddMessage) Validate() error {
	var p commands.Problems
	p.Text("body", cmd.Body, true, commands.MaxMessageBodyLen)
	if cmd.AuthorType == "" {
		cmd.AuthorType = helpdeskflow.AuthorAgent
	}
	p.OneOf("author_type", cmd.AuthorType, helpdeskflow.AuthorCustomer, helpdeskflow.AuthorAgent)
	if cmd.Internal && cmd.AuthorType != helpdeskflow.AuthorAgent {
		p.Add("internal", "internal notes are written by agents; author_type must be agent")
	}
	return p.Err()
}

// decider validates and sanitizes cmd and returns the decision adding it
// to a ticket.
func (cmd AddMessage) decider() (func(helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error), error) {
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	body, err := commands.SanitizedBody("body", cmd.Body)
	if err != nil {
		return nil, err
	}
	return func(t helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error) {
		if t.Status == helpdeskflow.StatusClosed {
			return nil, helpdeskflow.Errorf(helpdeskflow.EConflict, "ticket %s is closed and accepts no messages; create a follow-up ticket", t.ID)
		}
		if ticketFull(t) {
			return nil, ticketTotalExceeded("messages", "messages", MaxTicketMessages, len(t.Messages), 1,
				"; the ticket is full: continue the conversation in a follow-up ticket (POST /v1/tickets)")
		}
		msg, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketMessageAdded, helpdeskflow.MessageAdded{
			ID: uuid.New(), AuthorType: cmd.AuthorType, Body: body, BodyText: commands.PlainText(body), Internal: cmd.Internal,
		})
		if err != nil {
			return nil, err
		}
		events := []helpdeskflow.NewEvent{msg}
		if t.Status == helpdeskflow.StatusSolved && cmd.AuthorType == helpdeskflow.AuthorCustomer && !cmd.Internal {
			reopen, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
				Status: &helpdeskflow.Change[string]{Old: t.Status, New: helpdeskflow.StatusOpen},
			})
			if err != nil {
				return nil, err
			}
			events = append(events, reopen)
		}
		return events, nil
	}, nil
}

// AddMessage appends a public reply or, with Internal, an internal note to
// ticket id (the caller checks that internal notes come from admin keys).
// The body is sanitized like a new ticket's. A customer reply to a solved
// ticket reopens it (status open, in the same append); a closed ticket
// accepts no messages (EConflict), nor does a full one (MaxTicketMessages:
// ELimitExceeded). ifMatch works as in UpdateTicket. It returns the
// ticket, with internal notes when includeInternal.
func (s *Service) AddMessage(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd AddMessage, includeInternal bool) (helpdeskflow.Ticket, error) {
	decide, err := cmd.decider()
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	t, err := s.changeTicket(ctx, workspaceID, md, id, ifMatch, decide)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return s.withCustomerOf(ctx, t, includeInternal)
}

// changeTicket runs decide on ticket id's current state under its stream
// lock, runs the workspace's automations on the result (the first decided
// event's type is the trigger) and appends the decided events and the
// automations' effects (nothing when decide returns no events), checking
// ifMatch first. It returns the ticket after the change.
func (s *Service) changeTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64,
	decide func(helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error)) (helpdeskflow.Ticket, error) {
	var t helpdeskflow.Ticket
	err := s.store.TransactGrouped(ctx, "stream:"+id.String(), func(tx Tx) error {
		var err error
		t, err = s.changeTicketIn(ctx, tx, s.rules.Request(ctx, tx.Rules, workspaceID), workspaceID, md, id, ifMatch, decide)
		return err
	})
	if err == nil {
		s.cache.wrote(t) // committed
	}
	return t, err
}

// changeTicketIn is changeTicket inside tx, with the workspace's rules
// (read after the ticket, so a pending request rides with its lock). A
// public agent message on a mail ticket is queued to be sent through the
// ticket's mailbox in the same transaction.
func (s *Service) changeTicketIn(ctx context.Context, tx Tx, rulesOf ruleSource, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64,
	decide func(helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error)) (helpdeskflow.Ticket, error) {
	var t helpdeskflow.Ticket
	err := func() error {
		ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
		locked, err := s.lockTicket(ctx, tx, ref)
		if err != nil {
			return err
		}
		t = locked.ticket
		version := locked.version
		if ifMatch != nil && *ifMatch != version {
			return helpdeskflow.Errorf(helpdeskflow.EPreconditionFailed,
				"If-Match is version %d but the ticket is at version %d; reload it and retry", *ifMatch, version)
		}
		decided, err := decide(t)
		if err != nil || len(decided) == 0 {
			return err
		}
		ruleSet, err := rulesOf.Get(ctx)
		if err != nil {
			return err
		}
		now := s.now()
		all := stamped(tagged(md, decided...), now)
		hadSLA := t.SLA != nil
		if ruleSet.RunsAutomations() || len(ruleSet.Policies()) > 0 || hadSLA {
			after, err := applied(t, ref, version, all)
			if err != nil {
				return err
			}
			customer, err := s.customerIn(ctx, tx, t.CustomerID)
			if err != nil {
				return err
			}
			if ruleSet.RunsAutomations() {
				before := t
				effects, err := s.runAutomations(ruleSet, automation.Input{Trigger: decided[0].Type, Before: &before, Ticket: after, Customer: customer}, md, decided[0].ID)
				if err != nil {
					return err
				}
				all = append(all, stamped(effects, now)...)
				if after, err = applied(t, ref, version, all); err != nil {
					return err
				}
			}
			choice, err := slaChoice(ruleSet, after, customer, md, decided[0].ID, now)
			if err != nil {
				return err
			}
			all = append(all, choice...)
		}
		appended, err := s.appendToLocked(ctx, tx, ref, locked, &t, all)
		if err != nil {
			return err
		}
		if hadSLA || t.SLA != nil {
			scheduleSLA(ctx, tx, hadSLA, t)
		}
		if t.MailboxID != nil {
			return queueMailReplies(ctx, tx, t, appended, now)
		}
		return nil
	}()
	return t, err
}

// lockedTicket is a ticket under its stream lock: its version, its state
// and how many events were folded on its snapshot (for keepSnapshot).
type lockedTicket struct {
	version int64
	ticket  helpdeskflow.Ticket
	tail    int
}

// appendToLocked appends events to the locked ticket ref at its version
// (see appendTagged), applies them to t, the locked ticket's state, and
// keeps a snapshot when one is due; it returns the events as stored.
func (s *Service) appendToLocked(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef, locked lockedTicket, t *helpdeskflow.Ticket, events []taggedEvent) ([]helpdeskflow.Event, error) {
	appended, err := s.appendTagged(ctx, tx, ref, locked.version, events)
	if err != nil {
		return nil, err
	}
	for _, e := range appended {
		if err := helpdeskflow.ApplyTicket(t, e); err != nil {
			return nil, err
		}
	}
	if err := keepSnapshot(ctx, tx, ref, t.Version, len(appended), locked.tail+len(appended), *t); err != nil {
		return nil, err
	}
	return appended, nil
}

// lockTicket takes ticket ref's stream lock until the transaction ends and
// loads it from its snapshot; ENotFound for an unknown ticket. With a read
// cache that holds the ticket (fewer than SnapshotEvery events after its
// snapshot, so the snapshot rule sees the same tail), the lock is taken
// alone and, when the cached state is at the locked version (then it is
// the committed state this transaction sees), used instead of loading and
// folding the stream; otherwise the stream is loaded after the lock.
func (s *Service) lockTicket(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef) (lockedTicket, error) {
	notFound := func(err error) error {
		if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
			return helpdeskflow.Errorf(helpdeskflow.ENotFound, "ticket %s not found", ref.ID)
		}
		return err
	}
	if tail, ok := s.cache.cachedTail(ref); ok && tail < SnapshotEvery {
		version, err := tx.Events.LockStream(ctx, ref)
		if err != nil {
			return lockedTicket{}, notFound(err)
		}
		if t, tail, ok := s.cache.lockedState(ref, version); ok {
			return lockedTicket{version: version, ticket: t, tail: tail}, nil
		}
		t, tail, err := loadTicket(ctx, txSource{tx}, ref.ID)
		return lockedTicket{version: version, ticket: t, tail: tail}, err
	}
	version, history, err := tx.Events.LockTail(ctx, ref)
	if err != nil {
		return lockedTicket{}, notFound(err)
	}
	t, tail, err := foldTail(ctx, txSource{tx}, ref.ID, history, helpdeskflow.ApplyTicket)
	return lockedTicket{version: version, ticket: t, tail: tail}, err
}

// applied returns t with events applied as they would be stored after
// version, leaving t itself alone.
func applied(t helpdeskflow.Ticket, ref helpdeskflow.StreamRef, version int64, events []taggedEvent) (helpdeskflow.Ticket, error) {
	t.Tags = slices.Clone(t.Tags)
	t.CustomFields = maps.Clone(t.CustomFields)
	t.Messages = slices.Clone(t.Messages)
	for i, e := range events {
		if err := helpdeskflow.ApplyTicket(&t, e.Stored(ref, version+int64(i)+1, e.md)); err != nil {
			return t, err
		}
	}
	return t, nil
}

// withCustomerOf completes t with its customer, read from the event store.
// With a read cache, the customer comes from it, checked against its
// stream's version first.
func (s *Service) withCustomerOf(ctx context.Context, t helpdeskflow.Ticket, includeInternal bool) (helpdeskflow.Ticket, error) {
	if s.cache != nil {
		ce, err := s.cache.customer(ctx, t.WorkspaceID, t.CustomerID, nil)
		if err != nil {
			return helpdeskflow.Ticket{}, err
		}
		return withCustomer(t, *ce.customer, includeInternal), nil
	}
	c, _, err := loadCustomer(ctx, storeSource{s.store, t.WorkspaceID}, t.CustomerID)
	if err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return withCustomer(t, c, includeInternal), nil
}

// AuditEntry is one change of a ticket, for GET /v1/tickets/{id}/audit.
type AuditEntry struct {
	EventID    uuid.UUID
	EventType  string
	Version    int64
	Changes    []helpdeskflow.FieldChange
	Metadata   helpdeskflow.Metadata
	OccurredAt time.Time
}

// TicketAudit returns the changes of ticket id from version from to version
// to (both included; from 1 and to 0 for every change; a range past the
// ticket's last version has what the ticket has of it), oldest first,
// composed from its events. Internal notes are left out unless
// includeInternal. It returns ENotFound for an unknown ticket.
func (s *Service) TicketAudit(ctx context.Context, workspaceID, id uuid.UUID, from, to int64, includeInternal bool) ([]AuditEntry, error) {
	ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
	events, err := s.store.LoadRange(ctx, ref, from, to)
	if err != nil {
		return nil, err
	}
	entries := make([]AuditEntry, 0, len(events))
	for _, e := range events {
		if !includeInternal && helpdeskflow.IsInternalNote(e) {
			continue
		}
		changes, err := helpdeskflow.FieldChanges(e)
		if err != nil {
			return nil, err
		}
		entries = append(entries, AuditEntry{EventID: e.ID, EventType: e.Type, Version: e.Version, Changes: changes,
			Metadata: e.Metadata, OccurredAt: e.OccurredAt})
	}
	return entries, nil
}
