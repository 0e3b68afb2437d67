package tickets

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Limits of customer data.
const (
	MaxMetadataKeys     = 50
	MaxMetadataBytes    = 16 << 10 // the JSON encoding of all metadata
	MaxLinkedProfiles   = 20
	MaxProfileDataBytes = 16 << 10
	MaxProfileURLLen    = 2048
	MaxExternalIDLen2   = 255
)

var providerPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// UpsertCustomer is the body of POST /v1/customers: the customer is found
// or created by normalized email, then given the other fields (tags and
// linked profiles are added, custom fields and metadata merged key by key,
// a null value removing a key; name replaced when given).
//
// ExternalID is the integrator's own id of the customer, unique per
// workspace: a new customer gets it, and so does an existing one without
// one. When another customer holds it, or the customer holds it already,
// the upsert is EConflict naming that customer (ExistingID) unless Upsert
// is set: then that customer takes the other fields (not the email).
type UpsertCustomer struct {
	Email          string                       `json:"email"`
	Name           *string                      `json:"name"`
	ExternalID     *string                      `json:"external_id"`
	Tags           []string                     `json:"tags"`
	CustomFields   map[string]any               `json:"custom_fields"`
	Metadata       map[string]any               `json:"metadata"`
	LinkedProfiles []helpdeskflow.LinkedProfile `json:"linked_profiles"`
	// Upsert (POST /v1/customers?upsert=true) updates the customer that
	// holds ExternalID instead of answering EConflict.
	Upsert bool `json:"-"`
}

// UpdateCustomer is the body of PATCH /v1/customers/{id}: like
// UpsertCustomer, and Email changes the customer's email (to one another
// customer holds: the two are merged into that one).
type UpdateCustomer struct {
	Email          *string                      `json:"email"`
	Name           *string                      `json:"name"`
	Tags           []string                     `json:"tags"`
	CustomFields   map[string]any               `json:"custom_fields"`
	Metadata       map[string]any               `json:"metadata"`
	LinkedProfiles []helpdeskflow.LinkedProfile `json:"linked_profiles"`
}

// customerChanges is what both bodies ask for besides the email.
type customerChanges struct {
	name           *string
	externalID     *string
	upsert         bool
	tags           []string
	customFields   map[string]any
	metadata       map[string]any
	linkedProfiles []helpdeskflow.LinkedProfile
}

// validate checks the changes and cleans their plain text in place: name
// (CleanLine, trimmed), tags, and the string values of custom fields,
// metadata and linked profile data (CleanText).
func (c *customerChanges) validate(p *commands.Problems) {
	if c.name != nil {
		*c.name = p.Line("name", *c.name, false, commands.MaxNameLen)
	}
	if c.externalID != nil {
		p.Text("external_id", *c.externalID, true, commands.MaxExternalIDLen)
		p.Plain("external_id", *c.externalID, "an external id")
	}
	c.tags = p.Tags("tags", c.tags)
	p.CustomFields("custom_fields", c.customFields)
	p.PlainValues("metadata", c.metadata)
	if len(c.metadata) > MaxMetadataKeys {
		p.Add("metadata", "must have at most %d keys, got %d", MaxMetadataKeys, len(c.metadata))
	}
	for key := range c.metadata {
		if key == "" || utf8.RuneCountInString(key) > commands.MaxCustomFieldKey {
			p.Add("metadata."+key, "keys must be 1 to %d characters", commands.MaxCustomFieldKey)
		}
	}
	if b, _ := json.Marshal(c.metadata); len(b) > MaxMetadataBytes {
		p.Add("metadata", "must be at most %d bytes as JSON, got %d", MaxMetadataBytes, len(b))
	}
	if len(c.linkedProfiles) > MaxLinkedProfiles {
		p.Add("linked_profiles", "must have at most %d profiles, got %d", MaxLinkedProfiles, len(c.linkedProfiles))
	}
	seen := map[[2]string]bool{}
	for i, lp := range c.linkedProfiles {
		field := fmt.Sprintf("linked_profiles[%d]", i)
		lp.Provider = strings.ToLower(strings.TrimSpace(lp.Provider))
		lp.ExternalID = strings.TrimSpace(lp.ExternalID)
		if !providerPattern.MatchString(lp.Provider) {
			p.Add(field+".provider", "must be 1 to 64 lowercase letters, digits, '_', '.' or '-', such as shopify")
		}
		p.Text(field+".external_id", lp.ExternalID, true, MaxExternalIDLen2)
		p.Plain(field+".external_id", lp.ExternalID, "an external id")
		p.PlainValues(field+".data", lp.Data)
		if lp.URL != "" {
			u, err := url.Parse(lp.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(lp.URL) > MaxProfileURLLen {
				p.Add(field+".url", "must be an http(s) URL of at most %d characters", MaxProfileURLLen)
			}
		}
		if b, _ := json.Marshal(lp.Data); len(b) > MaxProfileDataBytes {
			p.Add(field+".data", "must be at most %d bytes as JSON, got %d", MaxProfileDataBytes, len(b))
		}
		key := [2]string{lp.Provider, lp.ExternalID}
		if seen[key] {
			p.Add(field, "appears twice")
		}
		seen[key] = true
		c.linkedProfiles[i] = lp
	}
}

// apply returns the customer.updated data that brings c to what the
// changes ask for (Empty when nothing changes).
func (ch customerChanges) apply(c helpdeskflow.Customer) helpdeskflow.CustomerUpdated {
	var u helpdeskflow.CustomerUpdated
	if ch.name != nil && *ch.name != c.Name {
		u.Name = &helpdeskflow.Change[string]{Old: c.Name, New: *ch.name}
	}
	if ch.externalID != nil && c.ExternalID == "" {
		u.ExternalID = &helpdeskflow.Change[string]{Old: "", New: *ch.externalID}
	}
	if tags := unionTags(c.Tags, ch.tags); !slices.Equal(tags, c.Tags) {
		u.Tags = &helpdeskflow.Change[[]string]{Old: nonNilTags(c.Tags), New: tags}
	}
	u.CustomFields = keyChanges(c.CustomFields, ch.customFields)
	u.Metadata = keyChanges(c.Metadata, ch.metadata)
	if profiles := mergeProfiles(c.LinkedProfiles, ch.linkedProfiles); !reflect.DeepEqual(profiles, c.LinkedProfiles) {
		u.LinkedProfiles = &helpdeskflow.Change[[]helpdeskflow.LinkedProfile]{Old: c.LinkedProfiles, New: profiles}
	}
	return u
}

func unionTags(have, add []string) []string {
	out := slices.Clone(nonNilTags(have))
	for _, t := range add {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// keyChanges lists the keys of want whose value differs from have's (a nil
// value removes the key).
func keyChanges(have, want map[string]any) map[string]helpdeskflow.Change[any] {
	var out map[string]helpdeskflow.Change[any]
	for k, v := range want {
		old, had := have[k]
		if (v == nil && !had) || (had && reflect.DeepEqual(old, v)) {
			continue
		}
		if out == nil {
			out = map[string]helpdeskflow.Change[any]{}
		}
		out[k] = helpdeskflow.Change[any]{Old: old, New: v}
	}
	return out
}

// mergeProfiles adds or replaces profiles by provider and external id.
func mergeProfiles(have, add []helpdeskflow.LinkedProfile) []helpdeskflow.LinkedProfile {
	out := slices.Clone(have)
	if out == nil {
		out = []helpdeskflow.LinkedProfile{}
	}
	for _, p := range add {
		i := slices.IndexFunc(out, func(q helpdeskflow.LinkedProfile) bool {
			return q.Provider == p.Provider && q.ExternalID == p.ExternalID
		})
		if i >= 0 {
			out[i] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

func customerRef(workspaceID, id uuid.UUID) helpdeskflow.StreamRef {
	return helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamCustomer}
}

// UpsertCustomer finds the customer by normalized email or creates it,
// race-free (concurrent upserts of one email create one customer), and
// applies the other fields. It returns the customer as GetCustomer does
// and whether it was created; EValidation naming every bad field;
// EConflict when a linked profile belongs to another customer, or when a
// customer holds cmd's external id already (ExistingID names it; with
// cmd.Upsert that customer is updated instead), or when the customer
// has another external id;
// ELimitExceeded when the customer would pass a total (see
// MaxCustomerTags).
func (s *Service) UpsertCustomer(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd UpsertCustomer) (helpdeskflow.Customer, bool, error) {
	email, ch, err := cmd.validated()
	if err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	var id uuid.UUID
	var created bool
	err = s.store.Transact(ctx, func(tx Tx) error {
		c, isNew, err := upsertCustomerIn(ctx, tx, workspaceID, md, email, ch)
		id, created = c.ID, isNew
		return err
	})
	if err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	c, err := s.GetCustomer(ctx, workspaceID, id)
	return c, created, err
}

// upsertCustomerIn finds the customer of a normalized email or creates it,
// in tx, and applies the changes ch (see UpsertCustomer). It returns the
// customer as the transaction leaves it (without its ticket ids) and
// whether it was created.
func upsertCustomerIn(ctx context.Context, tx Tx, workspaceID uuid.UUID, md helpdeskflow.Metadata, email string, ch customerChanges) (helpdeskflow.Customer, bool, error) {
	holder, isNew, _, err := tx.Customers.ReserveCustomerEmail(ctx, workspaceID, email, uuid.New())
	if err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	if ch.externalID != nil {
		owner, err := tx.Customers.ClaimExternalID(ctx, workspaceID, helpdeskflow.StreamCustomer, *ch.externalID, holder)
		if err != nil {
			return helpdeskflow.Customer{}, false, err
		}
		if owner != holder && !ch.upsert {
			return helpdeskflow.Customer{}, false, externalIDTaken(helpdeskflow.StreamCustomer, *ch.externalID, owner)
		}
		if owner != holder {
			// Upsert: the holder of the external id takes the changes;
			// a reservation made for a new customer is given back.
			if isNew {
				tx.Customers.ReleaseCustomerEmails(ctx, workspaceID, []string{email}, []uuid.UUID{holder})
			}
			holder, isNew = owner, false
		}
	}
	ref := customerRef(workspaceID, holder)
	if !isNew {
		l, err := lockCustomer(ctx, tx, ref, nil)
		if err != nil {
			return helpdeskflow.Customer{}, false, err
		}
		if err := checkExternalID(l.customer, ch); err != nil {
			return helpdeskflow.Customer{}, false, err
		}
		if err := l.change(ctx, tx, md, ch, byRequest); err != nil {
			return helpdeskflow.Customer{}, false, err
		}
		return l.customer, false, l.keepSnapshot(ctx, tx)
	}
	name := ""
	if ch.name != nil {
		name = *ch.name
	}
	var externalID string
	if ch.externalID != nil {
		externalID = *ch.externalID
	}
	data := helpdeskflow.CustomerCreated{Email: email, Name: name, ExternalID: externalID, Tags: ch.tags, CustomFields: withoutNulls(ch.customFields),
		Metadata: withoutNulls(ch.metadata), LinkedProfiles: mergeProfiles(nil, ch.linkedProfiles)}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventCustomerCreated, data)
	if err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	e.OccurredAt = wallClock()
	c, err := foldCustomer([]helpdeskflow.Event{e.Stored(ref, 1, md)})
	if err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	if err := checkCustomerTotals(helpdeskflow.Customer{}, c, byRequest); err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	if err := tx.Customers.ClaimProfiles(ctx, workspaceID, holder, data.LinkedProfiles); err != nil {
		return helpdeskflow.Customer{}, false, err
	}
	_, err = tx.Events.Append(ctx, ref, 0, md, []helpdeskflow.NewEvent{e})
	return c, true, err
}

// checkExternalID refuses the changes of an upsert with an external id to
// an existing customer c: EConflict naming c when c holds that id already
// (unless the upsert asked to update it), EConflict naming the field when
// c has another one (an external id does not change).
func checkExternalID(c helpdeskflow.Customer, ch customerChanges) error {
	switch {
	case ch.externalID == nil || c.ExternalID == "":
		return nil
	case c.ExternalID == *ch.externalID && ch.upsert:
		return nil
	case c.ExternalID == *ch.externalID:
		return externalIDTaken(helpdeskflow.StreamCustomer, c.ExternalID, c.ID)
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EConflict,
		Message: fmt.Sprintf("customer %s has external_id %q; an external id does not change", c.ID, c.ExternalID),
		Details: []helpdeskflow.FieldProblem{{Field: "external_id", Problem: fmt.Sprintf("the customer with this email has external_id %q", c.ExternalID)}}}
}

// wallClock is the time the event store stamps an event that has none (the
// wall clock, at the microsecond precision Postgres keeps): customer events
// carry it from the start, so the customer a command folds in memory shows
// the times a later read shows.
func wallClock() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Validate checks every field, returning all problems at once as
// EValidation, and cleans the plain-text ones in place (see UpsertCustomer).
func (cmd *UpsertCustomer) Validate() error {
	_, _, err := cmd.validated()
	return err
}

// validated is Validate returning the normalized email and the changes.
func (cmd *UpsertCustomer) validated() (string, customerChanges, error) {
	var p commands.Problems
	email := p.Email("email", cmd.Email)
	ch := customerChanges{name: cmd.Name, externalID: cmd.ExternalID, upsert: cmd.Upsert, tags: cmd.Tags, customFields: cmd.CustomFields, metadata: cmd.Metadata, linkedProfiles: cmd.LinkedProfiles}
	ch.validate(&p)
	cmd.Tags = ch.tags
	return email, ch, p.Err()
}

// Validate checks every field given, returning all problems at once as
// EValidation, and cleans the plain-text ones in place (see UpsertCustomer).
func (cmd *UpdateCustomer) Validate() error {
	_, _, err := cmd.validated()
	return err
}

// validated is Validate returning the normalized email ("" when not
// changed) and the changes.
func (cmd *UpdateCustomer) validated() (string, customerChanges, error) {
	var p commands.Problems
	var email string
	if cmd.Email != nil {
		email = p.Email("email", *cmd.Email)
	}
	ch := customerChanges{name: cmd.Name, tags: cmd.Tags, customFields: cmd.CustomFields, metadata: cmd.Metadata, linkedProfiles: cmd.LinkedProfiles}
	ch.validate(&p)
	cmd.Tags = ch.tags
	return email, ch, p.Err()
}

func withoutNulls(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// lockedCustomer is a customer under its stream lock, kept current as a
// command appends to it: its state, its version, how many events are
// folded on its snapshot and how many the command appended (for
// keepSnapshot).
type lockedCustomer struct {
	ref      helpdeskflow.StreamRef
	customer helpdeskflow.Customer
	version  int64
	tail     int
	appended int
}

// lockCustomer locks and folds customer ref (from its snapshot), checking
// ifMatch. A merged customer cannot change (EConflict naming the customer
// it was merged into).
func lockCustomer(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef, ifMatch *int64) (*lockedCustomer, error) {
	version, err := tx.Events.LockStream(ctx, ref)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
		return nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "customer %s not found", ref.ID)
	}
	if err != nil {
		return nil, err
	}
	if ifMatch != nil && *ifMatch != version {
		return nil, helpdeskflow.Errorf(helpdeskflow.EPreconditionFailed,
			"If-Match is version %d but the customer is at version %d; reload it and retry", *ifMatch, version)
	}
	c, tail, err := loadCustomer(ctx, txSource{tx}, ref.ID)
	if err != nil {
		return nil, err
	}
	if c.MergedInto != nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EConflict,
			"customer %s was merged into %s; change that one", ref.ID, *c.MergedInto)
	}
	return &lockedCustomer{ref: ref, customer: c, version: version, tail: tail}, nil
}

// changeCustomer locks customer ref and appends the customer.updated that
// a request's changes ch ask for (see change), keeping a snapshot when due.
func changeCustomer(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef, md helpdeskflow.Metadata, ch customerChanges) error {
	l, err := lockCustomer(ctx, tx, ref, nil)
	if err != nil {
		return err
	}
	if err := l.change(ctx, tx, md, ch, byRequest); err != nil {
		return err
	}
	return l.keepSnapshot(ctx, tx)
}

// change appends the customer.updated that ch asks for (nothing when
// nothing changes), claiming new linked profiles. by names who makes the
// change in an ELimitExceeded error (see checkCustomerTotals).
func (l *lockedCustomer) change(ctx context.Context, tx Tx, md helpdeskflow.Metadata, ch customerChanges, by string) error {
	u := ch.apply(l.customer)
	if u.Empty() {
		return nil
	}
	return l.update(ctx, tx, md, u, by)
}

// update appends customer.updated u, refusing it with ELimitExceeded when
// it takes the customer past a total, and claims its linked profiles.
func (l *lockedCustomer) update(ctx context.Context, tx Tx, md helpdeskflow.Metadata, u helpdeskflow.CustomerUpdated, by string) error {
	e, after, err := l.prepare(u, md, by)
	if err != nil {
		return err
	}
	if u.LinkedProfiles != nil {
		if err := tx.Customers.ClaimProfiles(ctx, l.ref.WorkspaceID, l.ref.ID, u.LinkedProfiles.New); err != nil {
			return err
		}
	}
	return l.append(ctx, tx, md, e, after)
}

// prepare returns the customer.updated event of u and the customer as
// appending it would leave it; ELimitExceeded when that is past a total
// (by names who makes the change).
func (l *lockedCustomer) prepare(u helpdeskflow.CustomerUpdated, md helpdeskflow.Metadata, by string) (helpdeskflow.NewEvent, helpdeskflow.Customer, error) {
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventCustomerUpdated, u)
	if err != nil {
		return e, helpdeskflow.Customer{}, err
	}
	e.OccurredAt = wallClock()
	after, err := l.after(e, md)
	if err != nil {
		return e, after, err
	}
	return e, after, checkCustomerTotals(l.customer, after, by)
}

// after returns the customer as appending e would leave it.
func (l *lockedCustomer) after(e helpdeskflow.NewEvent, md helpdeskflow.Metadata) (helpdeskflow.Customer, error) {
	after := l.customer
	err := helpdeskflow.ApplyCustomer(&after, e.Stored(l.ref, l.version+1, md))
	return after, err
}

// append appends e, after which the customer is after.
func (l *lockedCustomer) append(ctx context.Context, tx Tx, md helpdeskflow.Metadata, e helpdeskflow.NewEvent, after helpdeskflow.Customer) error {
	version, err := tx.Events.Append(ctx, l.ref, l.version, md, []helpdeskflow.NewEvent{e})
	if err != nil {
		return err
	}
	l.customer, l.version, l.tail, l.appended = after, version, l.tail+1, l.appended+1
	return nil
}

// keepSnapshot keeps a snapshot of the customer when it is due (see
// keepSnapshot); call it once the command appended everything.
func (l *lockedCustomer) keepSnapshot(ctx context.Context, tx Tx) error {
	return keepSnapshot(ctx, tx, l.ref, l.version, l.appended, l.tail, l.customer)
}

func foldCustomer(events []helpdeskflow.Event) (helpdeskflow.Customer, error) {
	return fold(events, helpdeskflow.ApplyCustomer)
}

// maxMergeHops bounds how many merges a customer id is followed through.
const maxMergeHops = 10

// GetCustomer returns customer id of the workspace composed from the event
// store (from its snapshot), with its ticket ids. The id of a customer
// merged into another resolves to that one (MergedInto is not set on the
// answer; its ID is the target's). It returns ENotFound for an unknown id.
func (s *Service) GetCustomer(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Customer, error) {
	for range maxMergeHops {
		c, _, err := loadCustomer(ctx, storeSource{s.store, workspaceID}, id)
		if err != nil {
			return helpdeskflow.Customer{}, err
		}
		if c.MergedInto != nil {
			id = *c.MergedInto
			continue
		}
		if c.TicketIDs, err = s.store.CustomerTickets(ctx, c.ID); err != nil {
			return helpdeskflow.Customer{}, err
		}
		return c, nil
	}
	return helpdeskflow.Customer{}, helpdeskflow.Errorf(helpdeskflow.EInternal, "customer %s: more than %d merges to follow", id, maxMergeHops)
}

// FindCustomer returns the customer with the normalized email, or linked
// to provider's externalID, or (without provider) holding the
// integrator's own externalID (matched exactly); ENotFound when none is.
func (s *Service) FindCustomer(ctx context.Context, workspaceID uuid.UUID, email, provider, externalID string) (helpdeskflow.Customer, error) {
	var id uuid.UUID
	var err error
	switch {
	case email != "":
		id, err = s.store.CustomerByEmail(ctx, workspaceID, helpdeskflow.NormalizeEmail(email))
	case provider != "" && externalID != "":
		id, err = s.store.CustomerByProfile(ctx, workspaceID, strings.ToLower(strings.TrimSpace(provider)), strings.TrimSpace(externalID))
	case provider == "" && externalID != "":
		id, err = s.store.ByExternalID(ctx, workspaceID, helpdeskflow.StreamCustomer, externalID)
	default:
		return helpdeskflow.Customer{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "give email, or external_id (with provider for a linked profile)",
			Details: []helpdeskflow.FieldProblem{{Field: "email", Problem: "required unless external_id is given"}}}
	}
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	return s.GetCustomer(ctx, workspaceID, id)
}

// UpdateCustomer changes customer id. A new email that another customer
// holds merges this customer into that one (see MergeCustomers) and
// returns it. ifMatch works as for tickets. Errors: EValidation,
// ENotFound, EPreconditionFailed, EConflict (merged customer, or a linked
// profile held by another), ELimitExceeded (a total would be passed; with
// a merge, nothing is merged then).
func (s *Service) UpdateCustomer(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd UpdateCustomer) (helpdeskflow.Customer, error) {
	email, ch, err := cmd.validated()
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	mergeInto := uuid.Nil
	err = s.store.Transact(ctx, func(tx Tx) error {
		l, err := lockCustomer(ctx, tx, customerRef(workspaceID, id), ifMatch)
		if err != nil {
			return err
		}
		if email != "" && email != l.customer.Email {
			holder, err := tx.Customers.ChangeCustomerEmail(ctx, workspaceID, id, l.customer.Email, email)
			if helpdeskflow.ErrorCode(err) == helpdeskflow.EConflict {
				mergeInto = holder
				return nil
			}
			if err != nil {
				return err
			}
			// The email change is an event of its own; the rest of the
			// change follows in a second one.
			e, after, err := l.prepare(helpdeskflow.CustomerUpdated{Email: &helpdeskflow.Change[string]{Old: l.customer.Email, New: email}}, md, byRequest)
			if err != nil {
				return err
			}
			if err := l.append(ctx, tx, md, e, after); err != nil {
				return err
			}
		}
		if err := l.change(ctx, tx, md, ch, byRequest); err != nil {
			return err
		}
		return l.keepSnapshot(ctx, tx)
	})
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	if mergeInto == uuid.Nil {
		return s.GetCustomer(ctx, workspaceID, id)
	}
	// The email belongs to another customer: this one is merged into it,
	// then the other changes apply to the merged customer. Two
	// transactions, so the totals are checked first on what both would
	// make, and a change that would pass one merges nothing.
	if err := s.checkMergeThenChange(ctx, workspaceID, mergeInto, id, ch); err != nil {
		return helpdeskflow.Customer{}, err
	}
	if _, err := s.MergeCustomers(ctx, workspaceID, md, mergeInto, id); err != nil {
		return helpdeskflow.Customer{}, err
	}
	err = s.store.Transact(ctx, func(tx Tx) error {
		return changeCustomer(ctx, tx, customerRef(workspaceID, mergeInto), md, ch)
	})
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	return s.GetCustomer(ctx, workspaceID, mergeInto)
}

// checkMergeThenChange returns ELimitExceeded when merging customer source
// into target and then applying ch would take target past a total, as
// both customers are now. The merge and the change check again under
// their locks.
func (s *Service) checkMergeThenChange(ctx context.Context, workspaceID, targetID, sourceID uuid.UUID, ch customerChanges) error {
	target, err := s.customerOf(ctx, workspaceID, targetID)
	if err != nil {
		return err
	}
	source, err := s.customerOf(ctx, workspaceID, sourceID)
	if err != nil {
		return err
	}
	merged, err := updated(target, mergeChanges(target, source).apply(target))
	if err != nil {
		return err
	}
	if err := checkCustomerTotals(target, merged, byMerge); err != nil {
		return err
	}
	after, err := updated(merged, ch.apply(merged))
	if err != nil {
		return err
	}
	return checkCustomerTotals(merged, after, byRequest)
}

// updated returns c with customer.updated u applied, as a stored event
// would leave it.
func updated(c helpdeskflow.Customer, u helpdeskflow.CustomerUpdated) (helpdeskflow.Customer, error) {
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventCustomerUpdated, u)
	if err != nil {
		return c, err
	}
	err = helpdeskflow.ApplyCustomer(&c, e.Stored(customerRef(c.WorkspaceID, c.ID), c.Version+1, helpdeskflow.Metadata{}))
	return c, err
}

// mergeChanges is what a merge of source into target changes on target:
// the target keeps its values and gains what only the source has (its
// name when the target has none, custom fields and metadata keys the
// target lacks), and tags and linked profiles are combined.
func mergeChanges(target, source helpdeskflow.Customer) customerChanges {
	fill := func(have, from map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range from {
			if _, ok := have[k]; !ok {
				out[k] = v
			}
		}
		return out
	}
	ch := customerChanges{tags: source.Tags, customFields: fill(target.CustomFields, source.CustomFields),
		metadata: fill(target.Metadata, source.Metadata), linkedProfiles: source.LinkedProfiles}
	if target.Name == "" && source.Name != "" {
		ch.name = &source.Name
	}
	return ch
}

// MergeCustomers merges customer source into customer target atomically:
// the source's tickets move to the target (ticket.customer_changed on each),
// its emails and linked profiles point at the target, and the target gains
// what it lacks (precedence: the target's name, email, custom field and
// metadata values win; tags and linked profiles are combined). The source
// records customer.merged and from then on resolves to the target; both
// histories show the merge. It returns the target. Errors: ENotFound,
// EValidation (merging a customer into itself), EConflict (either side
// already merged), ELimitExceeded (the combined customer would pass a
// total, such as MaxCustomerTags: nothing is merged).
func (s *Service) MergeCustomers(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, targetID, sourceID uuid.UUID) (helpdeskflow.Customer, error) {
	if targetID == sourceID {
		return helpdeskflow.Customer{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "a customer cannot be merged into itself",
			Details: []helpdeskflow.FieldProblem{{Field: "source_customer_id", Problem: "must differ from the target customer"}}}
	}
	err := s.store.Transact(ctx, func(tx Tx) error {
		// Lock both in id order, so two opposite merges cannot deadlock.
		first, second := targetID, sourceID
		if sourceID.String() < targetID.String() {
			first, second = sourceID, targetID
		}
		locked := map[uuid.UUID]*lockedCustomer{}
		for _, id := range []uuid.UUID{first, second} {
			l, err := lockCustomer(ctx, tx, customerRef(workspaceID, id), nil)
			if err != nil {
				return err
			}
			locked[id] = l
		}
		target, source := locked[targetID], locked[sourceID]
		u := mergeChanges(target.customer, source.customer).apply(target.customer)
		u.MergedFrom = &sourceID
		// Refused (past a total) before anything moves.
		merged, after, err := target.prepare(u, md, byMerge)
		if err != nil {
			return err
		}

		tickets, err := tx.Customers.MoveTickets(ctx, sourceID, targetID)
		if err != nil {
			return err
		}
		tx.Customers.MoveCustomerLookups(ctx, sourceID, targetID)
		for _, ticketID := range tickets {
			ref := helpdeskflow.StreamRef{ID: ticketID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamTicket}
			version, err := tx.Events.LockStream(ctx, ref)
			if err != nil {
				return err
			}
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketCustomerChanged, helpdeskflow.TicketCustomerChanged{Old: sourceID, New: targetID})
			if err != nil {
				return err
			}
			if _, err := tx.Events.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e}); err != nil {
				return err
			}
		}

		if err := target.append(ctx, tx, md, merged, after); err != nil {
			return err
		}
		gone, err := helpdeskflow.NewEventOf(helpdeskflow.EventCustomerMerged, helpdeskflow.CustomerMerged{Into: targetID})
		if err != nil {
			return err
		}
		goneAfter, err := source.after(gone, md)
		if err != nil {
			return err
		}
		if err := source.append(ctx, tx, md, gone, goneAfter); err != nil {
			return err
		}
		if err := target.keepSnapshot(ctx, tx); err != nil {
			return err
		}
		return source.keepSnapshot(ctx, tx)
	})
	if err != nil {
		return helpdeskflow.Customer{}, err
	}
	return s.GetCustomer(ctx, workspaceID, targetID)
}
