package tickets_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// customerFixture is one customer in its own workspace.
type customerFixture struct {
	t         *testing.T
	ctx       context.Context
	store     *eventstore.Store
	svc       *tickets.Service
	workspace uuid.UUID
	id        uuid.UUID
}

func newCustomer(t *testing.T, store *eventstore.Store, svc *tickets.Service) *customerFixture {
	t.Helper()
	f := &customerFixture{t: t, ctx: context.Background(), store: store, svc: svc, workspace: uuid.New()}
	c, _, err := svc.UpsertCustomer(f.ctx, f.workspace, md, tickets.UpsertCustomer{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.id = c.ID
	return f
}

func (f *customerFixture) update(u tickets.UpdateCustomer) (helpdeskflow.Customer, error) {
	return f.svc.UpdateCustomer(f.ctx, f.workspace, md, f.id, nil, u)
}

func (f *customerFixture) mustUpdate(u tickets.UpdateCustomer) helpdeskflow.Customer {
	f.t.Helper()
	c, err := f.update(u)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// refused checks that err is limit_exceeded naming field with a problem
// containing want, and that nothing of the request was stored.
func (f *customerFixture) refused(err error, before helpdeskflow.Customer, field, want string) {
	f.t.Helper()
	if got := helpdeskflow.ErrorCode(err); got != "limit_exceeded" {
		f.t.Fatalf("error %v, want limit_exceeded", err)
	}
	details := helpdeskflow.ErrorDetails(err)
	if len(details) != 1 || details[0].Field != field || !strings.Contains(details[0].Problem, want) {
		f.t.Fatalf("details %+v, want one for %s containing %q", details, field, want)
	}
	after, err := f.svc.GetCustomer(f.ctx, f.workspace, f.id)
	if err != nil {
		f.t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		f.t.Errorf("a refused request changed the customer: version %d → %d", before.Version, after.Version)
	}
}

// fill sends the requests batch(0), batch(1), … until one is refused and
// returns its error and the customer before it.
func (f *customerFixture) fill(batch func(i int) tickets.UpdateCustomer) (error, helpdeskflow.Customer) {
	f.t.Helper()
	before, err := f.svc.GetCustomer(f.ctx, f.workspace, f.id)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range 200 {
		c, err := f.update(batch(i))
		if err != nil {
			return err, before
		}
		before = c
	}
	f.t.Fatal("200 requests were all accepted")
	return nil, before
}

// numbered returns n keys prefix0 … with value v, starting at from.
func numbered(prefix string, from, n int, v any) map[string]any {
	out := map[string]any{}
	for i := range n {
		out[fmt.Sprintf("%s%04d", prefix, from+i)] = v
	}
	return out
}

func numberedTags(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, from+i)
	}
	return out
}

func profiles(from, n int, data map[string]any) []helpdeskflow.LinkedProfile {
	out := make([]helpdeskflow.LinkedProfile, n)
	for i := range out {
		out[i] = helpdeskflow.LinkedProfile{Provider: "shopify", ExternalID: fmt.Sprint(from + i), Data: data}
	}
	return out
}

// fillCount brings a count to have with requests of at most step items.
func fillCount(f *customerFixture, have, step int, request func(from, n int) tickets.UpdateCustomer) helpdeskflow.Customer {
	f.t.Helper()
	var c helpdeskflow.Customer
	for from := 0; from < have; from += step {
		c = f.mustUpdate(request(from, min(step, have-from)))
	}
	return c
}

// TestCustomerTotals passes each total of a customer: the request is
// refused with 422 limit_exceeded naming the field, the limit and the
// current count, and nothing of it is stored; up to the limit is fine.
func TestCustomerTotals(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))

	counts := []struct {
		field string
		limit int
		step  int
		add   func(from, n int) tickets.UpdateCustomer
	}{
		{"tags", tickets.MaxCustomerTags, commands.MaxTags,
			func(from, n int) tickets.UpdateCustomer {
				return tickets.UpdateCustomer{Tags: numberedTags("t", from, n)}
			}},
		{"custom_fields", tickets.MaxCustomerCustomFields, commands.MaxCustomFields,
			func(from, n int) tickets.UpdateCustomer {
				return tickets.UpdateCustomer{CustomFields: numbered("f", from, n, 1.0)}
			}},
		{"metadata", tickets.MaxCustomerMetadataKeys, tickets.MaxMetadataKeys,
			func(from, n int) tickets.UpdateCustomer {
				return tickets.UpdateCustomer{Metadata: numbered("m", from, n, 1.0)}
			}},
		{"linked_profiles", tickets.MaxCustomerLinkedProfiles, tickets.MaxLinkedProfiles,
			func(from, n int) tickets.UpdateCustomer {
				return tickets.UpdateCustomer{LinkedProfiles: profiles(from, n, nil)}
			}},
	}
	nouns := map[string]string{"tags": "tags", "custom_fields": "custom fields", "metadata": "metadata keys", "linked_profiles": "linked profiles"}
	for _, c := range counts {
		t.Run(c.field+" count", func(t *testing.T) {
			f := newCustomer(t, store, svc)
			before := fillCount(f, c.limit-2, c.step, c.add)
			_, err := f.update(c.add(c.limit-2, 5))
			f.refused(err, before, c.field, fmt.Sprintf("a customer may have at most %s %s; this one has %s and the request adds 5",
				withCommas(c.limit), nouns[c.field], withCommas(c.limit-2)))
			// Up to the limit is fine, and so is a request adding nothing.
			f.mustUpdate(c.add(c.limit-2, 2))
			f.mustUpdate(c.add(0, 1))
		})
	}

	t.Run("the brief's example", func(t *testing.T) {
		f := newCustomer(t, store, svc)
		before := fillCount(f, 998, tickets.MaxMetadataKeys, counts[2].add)
		_, err := f.update(counts[2].add(998, 5))
		if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0] != (helpdeskflow.FieldProblem{Field: "metadata",
			Problem: "a customer may have at most 1,000 metadata keys; this one has 998 and the request adds 5"}) {
			t.Errorf("details = %+v", d)
		}
		f.refused(err, before, "metadata", "at most 1,000")
	})

	long := strings.Repeat("é", 3000)
	sizes := []struct {
		field string
		limit int
		batch func(i int) tickets.UpdateCustomer
	}{
		{"tags", tickets.MaxCustomerTagsBytes, func(i int) tickets.UpdateCustomer {
			return tickets.UpdateCustomer{Tags: numberedTags(strings.Repeat("😀", commands.MaxTagLen-4), i*commands.MaxTags, commands.MaxTags)}
		}},
		{"custom_fields", tickets.MaxCustomerCustomFieldsBytes, func(i int) tickets.UpdateCustomer {
			return tickets.UpdateCustomer{CustomFields: numbered("f", i*4, 4, strings.Repeat("<", commands.MaxCustomFieldText))}
		}},
		{"metadata", tickets.MaxCustomerMetadataBytes, func(i int) tickets.UpdateCustomer {
			return tickets.UpdateCustomer{Metadata: numbered("m", i*2, 2, long)}
		}},
		{"linked_profiles", tickets.MaxCustomerLinkedProfilesBytes, func(i int) tickets.UpdateCustomer {
			return tickets.UpdateCustomer{LinkedProfiles: profiles(i*4, 4, map[string]any{"notes": long})}
		}},
	}
	for _, c := range sizes {
		t.Run(c.field+" bytes", func(t *testing.T) {
			f := newCustomer(t, store, svc)
			err, before := f.fill(c.batch)
			f.refused(err, before, c.field, fmt.Sprintf("may take at most %s bytes as JSON; this one has ", withCommas(c.limit)))
			if !strings.Contains(helpdeskflow.ErrorDetails(err)[0].Problem, " and the request adds ") {
				t.Errorf("problem %q does not say what the request adds", helpdeskflow.ErrorDetails(err)[0].Problem)
			}
		})
	}

	t.Run("a new customer", func(t *testing.T) {
		ctx, workspace := context.Background(), uuid.New()
		_, _, err := svc.UpsertCustomer(ctx, workspace, md, tickets.UpsertCustomer{Email: "new@example.com",
			LinkedProfiles: profiles(0, tickets.MaxLinkedProfiles, map[string]any{"notes": strings.Repeat("x", tickets.MaxProfileDataBytes-100)})})
		if got := helpdeskflow.ErrorCode(err); got != "limit_exceeded" {
			t.Fatalf("error %v, want limit_exceeded", err)
		}
		if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0].Field != "linked_profiles" || !strings.Contains(d[0].Problem, "this one has 0 bytes and the request adds") {
			t.Errorf("details = %+v", d)
		}
		if _, err := svc.FindCustomer(ctx, workspace, "new@example.com", "", ""); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
			t.Errorf("the refused customer was stored: %v", err)
		}
	})

	t.Run("an upsert of an existing customer", func(t *testing.T) {
		f := newCustomer(t, store, svc)
		before := fillCount(f, tickets.MaxCustomerTags, commands.MaxTags, counts[0].add)
		_, _, err := svc.UpsertCustomer(f.ctx, f.workspace, md, tickets.UpsertCustomer{Email: "ada@example.com", Tags: []string{"one-more"}})
		f.refused(err, before, "tags", "this one has 1,000 and the request adds 1")
	})
}

// withCommas formats n as the error details do.
func withCommas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestMergeCustomers_Totals: a merge that would take the target past a
// total is refused with limit_exceeded and merges nothing: the source
// keeps its id, email and tickets. So is an email change that would merge.
func TestMergeCustomers_Totals(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	target := newCustomer(t, store, svc)
	fillCount(target, 600, commands.MaxTags, func(from, n int) tickets.UpdateCustomer {
		return tickets.UpdateCustomer{Tags: numberedTags("target", from, n)}
	})
	tk, err := svc.CreateTicket(target.ctx, target.workspace, md, tickets.CreateTicket{Subject: "s", Customer: tickets.CustomerRef{Email: "bob@example.com"},
		Message: tickets.NewTicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	source := &customerFixture{t: t, ctx: target.ctx, store: store, svc: svc, workspace: target.workspace, id: tk.CustomerID}
	fillCount(source, 600, commands.MaxTags, func(from, n int) tickets.UpdateCustomer {
		return tickets.UpdateCustomer{Tags: numberedTags("source", from, n)}
	})
	targetBefore, _ := svc.GetCustomer(target.ctx, target.workspace, target.id)
	sourceBefore, _ := svc.GetCustomer(source.ctx, source.workspace, source.id)

	_, err = svc.MergeCustomers(target.ctx, target.workspace, md, target.id, source.id)
	target.refused(err, targetBefore, "tags", "a customer may have at most 1,000 tags; this one has 600 and the merge adds 600")
	source.refused(err, sourceBefore, "tags", "the merge adds")

	_, err = source.update(tickets.UpdateCustomer{Email: ptr("ada@example.com")})
	source.refused(err, sourceBefore, "tags", "the merge adds 600")
	target.refused(err, targetBefore, "tags", "the merge adds 600")
	got, err := svc.GetTicket(target.ctx, target.workspace, tk.ID, false)
	if err != nil || got.CustomerID != source.id {
		t.Errorf("the ticket moved to %v (%v), want it left with its customer %v", got.CustomerID, err, source.id)
	}
}

// TestCustomerTotals_LargestEventFits builds the customer whose next
// update makes the largest customer.updated the totals allow, and makes
// it: every whole list (tags, linked profiles) at its total and repeated
// old and new, every custom field replaced by one as large (old and new at
// the total), metadata at its total replaced by a request's worth, the
// longest name in 4-byte characters replaced by another. The event is
// stored and well under the event cap, so 413 payload_too_large cannot
// happen to a customer.
func TestCustomerTotals_LargestEventFits(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	f := newCustomer(t, store, svc)
	ctx := context.Background()

	// Tags: as many bytes as allowed, less room for one more short tag.
	tag := strings.Repeat("😀", commands.MaxTagLen-4) // numbered: 64 characters, 247 bytes as JSON
	tags := (tickets.MaxCustomerTagsBytes - 8) / (len(tag) + len(`"0000",`))
	fillCount(f, tags, commands.MaxTags, func(from, n int) tickets.UpdateCustomer {
		return tickets.UpdateCustomer{Tags: numberedTags(tag, from, n)}
	})
	// Linked profiles: 100 that take the total between them.
	perProfile := (tickets.MaxCustomerLinkedProfilesBytes-2)/tickets.MaxCustomerLinkedProfiles -
		len(`{"provider":"shopify","external_id":"00","data":{"n":""}},`)
	data := func(v string) map[string]any { return map[string]any{"n": strings.Repeat(v, perProfile)} }
	fillCount(f, tickets.MaxCustomerLinkedProfiles, tickets.MaxLinkedProfiles, func(from, n int) tickets.UpdateCustomer {
		return tickets.UpdateCustomer{LinkedProfiles: profiles(from, n, data("a"))}
	})
	// Custom fields: the 100 a request may replace, taking the total ('\'
	// is two bytes as JSON).
	cfValue := strings.Repeat("\\", ((tickets.MaxCustomerCustomFieldsBytes-2)/commands.MaxCustomFields-len(`"f0000":"",`))/2)
	f.mustUpdate(tickets.UpdateCustomer{CustomFields: numbered("f", 0, commands.MaxCustomFields, cfValue)})
	// Metadata: the 50 keys a request may replace, taking the total, six
	// keys a request.
	mdValue := strings.Repeat("😀", ((tickets.MaxCustomerMetadataBytes-2)/tickets.MaxMetadataKeys-len(`"m0000":"",`))/4)
	fillCount(f, tickets.MaxMetadataKeys, 6, func(from, n int) tickets.UpdateCustomer {
		return tickets.UpdateCustomer{Metadata: numbered("m", from, n, mdValue)}
	})
	name := strings.Repeat("😀", commands.MaxNameLen)
	before := f.mustUpdate(tickets.UpdateCustomer{Name: &name})
	for _, total := range []struct {
		name        string
		size, limit int
	}{
		{"tags", len(mustJSON(t, before.Tags)), tickets.MaxCustomerTagsBytes},
		{"linked profiles", len(mustJSON(t, before.LinkedProfiles)), tickets.MaxCustomerLinkedProfilesBytes},
		{"custom fields", len(mustJSON(t, before.CustomFields)), tickets.MaxCustomerCustomFieldsBytes},
		{"metadata", len(mustJSON(t, before.Metadata)), tickets.MaxCustomerMetadataBytes},
	} {
		if total.size < total.limit*95/100 || total.size > total.limit {
			t.Fatalf("the customer's %s take %d bytes; the test means to fill %d", total.name, total.size, total.limit)
		}
	}

	// The largest update: every field changes at once.
	other := strings.Repeat("🙂", commands.MaxNameLen)
	after := f.mustUpdate(tickets.UpdateCustomer{Name: &other, Tags: []string{"z"},
		LinkedProfiles: profiles(0, 1, data("b")),
		CustomFields:   numbered("f", 0, commands.MaxCustomFields, strings.Replace(cfValue, "\\", "\"", 1)),
		Metadata:       numbered("m", 0, tickets.MaxMetadataKeys, strings.Repeat("x", (tickets.MaxMetadataBytes-2)/tickets.MaxMetadataKeys-len(`"m0000":"",`)))})
	events, err := store.Load(ctx, f.workspace, f.id)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Version != after.Version || last.Type != helpdeskflow.EventCustomerUpdated {
		t.Fatalf("last event %s at %d, want the update at %d", last.Type, last.Version, after.Version)
	}
	encoded := mustJSON(t, last)
	const wellUnder = 800_000
	t.Logf("largest customer.updated: %d bytes (cap %d)", len(encoded), helpdeskflow.MaxEventBytes)
	if len(encoded) > wellUnder {
		t.Errorf("the largest customer.updated is %d bytes, not well under the cap of %d", len(encoded), helpdeskflow.MaxEventBytes)
	}
	if len(encoded) < 550_000 {
		t.Errorf("the update is only %d bytes: the test no longer builds the worst case", len(encoded))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := helpdeskflow.MarshalJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpdateTicket_Totals: tags_add and custom fields may not take a ticket
// past its totals (MaxTags, MaxCustomFields) once merged with what it has:
// 422 limit_exceeded, nothing stored; reaching the total is fine.
func TestUpdateTicket_Totals(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	ctx, workspace := context.Background(), uuid.New()
	cmd := validTicket()
	cmd.Tags = manyTags(commands.MaxTags - 2)
	cmd.CustomFields = manyFields(commands.MaxCustomFields - 2)
	tk, err := svc.CreateTicket(ctx, workspace, md, cmd)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(u tickets.UpdateTicket, field, problem string) {
		t.Helper()
		_, err := svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, u, true)
		if got := helpdeskflow.ErrorCode(err); got != "limit_exceeded" {
			t.Fatalf("error %v, want limit_exceeded", err)
		}
		if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0] != (helpdeskflow.FieldProblem{Field: field, Problem: problem}) {
			t.Errorf("details = %+v, want %s: %s", d, field, problem)
		}
		if now, err := svc.GetTicket(ctx, workspace, tk.ID, true); err != nil || now.Version != tk.Version {
			t.Errorf("a refused update was stored: version %d → %d (%v)", tk.Version, now.Version, err)
		}
	}
	refused(tickets.UpdateTicket{TagsAdd: []string{"a", "b", "c", "d", "e"}}, "tags_add",
		"a ticket may have at most 50 tags; this one has 48 and the request adds 5")
	refused(tickets.UpdateTicket{CustomFields: numbered("new", 0, 5, "x")}, "custom_fields",
		"a ticket may have at most 100 custom fields; this one has 98 and the request adds 5")
	// Removals count: five new fields and three removed make 100.
	fields := numbered("new", 0, 5, "x")
	for _, name := range []string{"field0", "field1", "field2"} {
		fields[name] = nil
	}
	for _, u := range []tickets.UpdateTicket{{TagsAdd: []string{"a", "b"}}, {TagsAdd: []string{"c"}, TagsRemove: []string{"a"}}, {CustomFields: fields}} {
		if tk, err = svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, u, true); err != nil {
			t.Fatal(err)
		}
	}
	if len(tk.Tags) != commands.MaxTags || len(tk.CustomFields) != commands.MaxCustomFields {
		t.Errorf("the ticket has %d tags and %d custom fields, want %d and %d", len(tk.Tags), len(tk.CustomFields), commands.MaxTags, commands.MaxCustomFields)
	}
}

// addMessages appends n messages to ticket id directly in the event store
// (thousands of commands would take long), as the commands would.
func addMessages(t *testing.T, store *eventstore.Store, workspace, id uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspace, Type: helpdeskflow.StreamTicket}
	err := store.Transact(ctx, func(tx *eventstore.Tx) error {
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		events := make([]helpdeskflow.NewEvent, n)
		for i := range events {
			if events[i], err = helpdeskflow.NewEventOf(helpdeskflow.EventTicketMessageAdded, helpdeskflow.MessageAdded{ID: uuid.New(),
				AuthorType: helpdeskflow.AuthorCustomer, Body: fmt.Sprintf("<p>message %d</p>", i), BodyText: fmt.Sprintf("message %d", i)}); err != nil {
				return err
			}
		}
		_, err = tx.Append(ctx, ref, version, md, events)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAddMessage_TicketFull: a ticket takes MaxTicketMessages messages
// (internal notes included); the next one is 422 limit_exceeded saying the
// ticket is full and to go on in a follow-up ticket, and is not stored.
func TestAddMessage_TicketFull(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	ctx, workspace := context.Background(), uuid.New()
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	addMessages(t, store, workspace, tk.ID, tickets.MaxTicketMessages-2)
	tk, err = svc.AddMessage(ctx, workspace, md, tk.ID, nil, tickets.AddMessage{Body: "the last one", Internal: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.Messages) != tickets.MaxTicketMessages {
		t.Fatalf("the ticket has %d messages, want %d", len(tk.Messages), tickets.MaxTicketMessages)
	}
	for _, author := range []string{helpdeskflow.AuthorAgent, helpdeskflow.AuthorCustomer} {
		_, err = svc.AddMessage(ctx, workspace, md, tk.ID, nil, tickets.AddMessage{Body: "one too many", AuthorType: author}, true)
		if got := helpdeskflow.ErrorCode(err); got != "limit_exceeded" {
			t.Fatalf("error %v, want limit_exceeded", err)
		}
		want := helpdeskflow.FieldProblem{Field: "messages", Problem: "a ticket may have at most 5,000 messages; this one has 5,000 and the request adds 1; " +
			"the ticket is full: continue the conversation in a follow-up ticket (POST /v1/tickets)"}
		if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0] != want {
			t.Errorf("details = %+v, want %+v", d, want)
		}
	}
	if now, err := svc.GetTicket(ctx, workspace, tk.ID, true); err != nil || now.Version != tk.Version || len(now.Messages) != tickets.MaxTicketMessages {
		t.Errorf("a refused message was stored: version %d → %d (%v)", tk.Version, now.Version, err)
	}
}

// TestImportMail_FullTicketMakesANewTicket: mail answering a full ticket
// is not lost nor refused: it makes a new ticket, as mail to a closed one
// does, and the full ticket stays as it is.
func TestImportMail_FullTicketMakesANewTicket(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	ctx, workspace, mailbox := context.Background(), uuid.New(), uuid.New()
	from := tickets.CustomerRef{Email: "c@example.com", Name: "C"}
	first, err := svc.ImportMail(ctx, workspace, md, tickets.ImportMail{ConnectionID: mailbox, ExternalID: "1", MessageID: "<1@example.com>",
		From: from, Subject: "Help", Body: "first"})
	if err != nil || !first.Created {
		t.Fatalf("first mail: %+v, %v", first, err)
	}
	addMessages(t, store, workspace, first.TicketID, tickets.MaxTicketMessages-1)
	full, err := svc.GetTicket(ctx, workspace, first.TicketID, true)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := svc.ImportMail(ctx, workspace, md, tickets.ImportMail{ConnectionID: mailbox, ExternalID: "2", MessageID: "<2@example.com>",
		ThreadKeys: []string{"<1@example.com>"}, From: from, Subject: "Re: Help", Body: "> first\nmore", ReplyBody: "more"})
	if err != nil {
		t.Fatal(err)
	}
	if !reply.Created || reply.TicketID == first.TicketID {
		t.Fatalf("the reply to a full ticket: %+v, want a new ticket", reply)
	}
	if now, err := svc.GetTicket(ctx, workspace, first.TicketID, true); err != nil || now.Version != full.Version {
		t.Errorf("the full ticket changed: version %d → %d (%v)", full.Version, now.Version, err)
	}
}
