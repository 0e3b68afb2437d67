package helpdeskflow_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// snapshotFields lists, for each SnapshotFormat, every field (with its type
// and tag) of the types a snapshot encodes. When this test fails, a field
// changed: bump helpdeskflow.SnapshotFormat (so that older snapshots are
// ignored rather than decoded into the new types) and list the new fields.
var snapshotFields = map[int][]string{
	1: {
		"Ticket.ID uuid.UUID ", "Ticket.WorkspaceID uuid.UUID ", "Ticket.Subject string ", "Ticket.Status string ",
		"Ticket.Priority string ", "Ticket.Type string ", "Ticket.Channel string ", "Ticket.Tags []string ",
		"Ticket.AssigneeID *string ", "Ticket.Team *string ", "Ticket.ExternalID *string ",
		"Ticket.CustomFields map[string]interface {} ", "Ticket.CustomerID uuid.UUID ", "Ticket.MailboxID *uuid.UUID ",
		"Ticket.Customer *helpdeskflow.Customer ", "Ticket.Messages []helpdeskflow.Message ", "Ticket.SLA *helpdeskflow.TicketSLA ",
		"Ticket.Version int64 ", "Ticket.CreatedAt time.Time ", "Ticket.UpdatedAt time.Time ",
		"Customer.ID uuid.UUID ", "Customer.WorkspaceID uuid.UUID ", "Customer.Email string ", "Customer.Name string ",
		"Customer.Tags []string ", "Customer.CustomFields map[string]interface {} ", "Customer.Metadata map[string]interface {} ",
		"Customer.LinkedProfiles []helpdeskflow.LinkedProfile ", "Customer.MergedInto *uuid.UUID ", "Customer.TicketIDs []uuid.UUID ",
		"Customer.Version int64 ", "Customer.CreatedAt time.Time ", "Customer.UpdatedAt time.Time ",
		`LinkedProfile.Provider string json:"provider"`, `LinkedProfile.ExternalID string json:"external_id"`,
		`LinkedProfile.URL string json:"url,omitempty"`, `LinkedProfile.Data map[string]interface {} json:"data,omitempty"`,
		"Message.ID uuid.UUID ", "Message.AuthorType string ", "Message.Body string ", "Message.BodyText string ",
		"Message.Internal bool ", "Message.CreatedAt time.Time ",
		"TicketSLA.PolicyID uuid.UUID ", "TicketSLA.PolicyVersion int64 ", "TicketSLA.PolicyName string ",
		"TicketSLA.FirstResponse *helpdeskflow.SLAClock ", "TicketSLA.Resolution *helpdeskflow.SLAClock ",
		"SLAClock.Spec helpdeskflow.SLATargetSpec ", "SLAClock.StartedAt time.Time ", "SLAClock.Paused time.Duration ",
		"SLAClock.PausedSince *time.Time ", "SLAClock.FulfilledAt *time.Time ", "SLAClock.WarnedAt *time.Time ",
		"SLAClock.BreachedAt *time.Time ",
		`SLATargetSpec.Minutes int json:"minutes"`, `SLATargetSpec.WarnBeforeMinutes int json:"warn_before_minutes"`,
	},
}

func init() {
	// Format 2: format 1 and the customer's external id.
	snapshotFields[2] = append(slices.Clone(snapshotFields[1]), "Customer.ExternalID string ")
}

// structFields lists the fields of t and of every struct type of this
// module it holds, each type once.
func structFields(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || !strings.HasPrefix(t.PkgPath(), "github.com/helpdeskflow/") {
		return nil
	}
	seen[t] = true
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		out = append(out, t.Name()+"."+f.Name+" "+f.Type.String()+" "+string(f.Tag))
	}
	for i := range t.NumField() {
		out = append(out, structFields(t.Field(i).Type, seen)...)
	}
	return out
}

func TestSnapshotFormat_ListsEveryField(t *testing.T) {
	seen := map[reflect.Type]bool{}
	got := append(structFields(reflect.TypeOf(helpdeskflow.Ticket{}), seen), structFields(reflect.TypeOf(helpdeskflow.Customer{}), seen)...)
	want := snapshotFields[helpdeskflow.SnapshotFormat]
	gotSet, wantSet := map[string]bool{}, map[string]bool{}
	for _, f := range got {
		gotSet[f] = true
	}
	for _, f := range want {
		wantSet[f] = true
	}
	for f := range gotSet {
		if !wantSet[f] {
			t.Errorf("field %q is not in snapshot format %d: bump SnapshotFormat and list it", f, helpdeskflow.SnapshotFormat)
		}
	}
	for f := range wantSet {
		if !gotSet[f] {
			t.Errorf("field %q of snapshot format %d is gone: bump SnapshotFormat and update the list", f, helpdeskflow.SnapshotFormat)
		}
	}
}

// TestEncodeSnapshot_RoundTrips encodes states with every field set, and
// values JSON must take care with, and decodes them deeply equal.
func TestEncodeSnapshot_RoundTrips(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 789_123_000, time.UTC)
	later := at.Add(90 * time.Minute)
	s := func(v string) *string { return &v }
	id := uuid.New()
	customer := helpdeskflow.Customer{
		ID: uuid.New(), WorkspaceID: uuid.New(), Email: "ada@example.com", Name: "Ada <b>&</b> \u2028 😀 \"q\"",
		Tags: []string{"vip", "<x>"}, CustomFields: map[string]any{"n": 1e21, "f": -0.5, "b": true, "s": "a\x01b"},
		Metadata:       map[string]any{"nested": map[string]any{"list": []any{1.0, "two", nil, map[string]any{}}}, "empty": ""},
		LinkedProfiles: []helpdeskflow.LinkedProfile{{Provider: "shopify", ExternalID: "1", URL: "https://x.example", Data: map[string]any{"k": []any{}}}, {Provider: "stripe", ExternalID: "2"}},
		MergedInto:     &id, Version: 7, CreatedAt: at, UpdatedAt: later,
	}
	ticket := helpdeskflow.Ticket{
		ID: uuid.New(), WorkspaceID: uuid.New(), Subject: "s", Status: "open", Priority: "high", Type: "question", Channel: "email",
		Tags: []string{}, AssigneeID: s("agent"), Team: s(""), ExternalID: s("x-1"), CustomFields: map[string]any{}, CustomerID: uuid.New(),
		MailboxID: &id, Messages: []helpdeskflow.Message{{ID: uuid.New(), AuthorType: "agent", Body: "<p>hi</p>", BodyText: "hi", Internal: true, CreatedAt: at}},
		SLA: &helpdeskflow.TicketSLA{PolicyID: uuid.New(), PolicyVersion: 3, PolicyName: "p",
			FirstResponse: &helpdeskflow.SLAClock{Spec: helpdeskflow.SLATargetSpec{Minutes: 60, WarnBeforeMinutes: 10}, StartedAt: at,
				Paused: 90 * time.Second, PausedSince: &later, FulfilledAt: &later, WarnedAt: &at, BreachedAt: &later}},
		Version: 9, CreatedAt: at, UpdatedAt: later,
	}
	for name, state := range map[string]any{"customer": customer, "ticket": ticket, "empty ticket": helpdeskflow.Ticket{}} {
		b, err := helpdeskflow.EncodeSnapshot(state)
		if err != nil {
			t.Fatal(err)
		}
		back := reflect.New(reflect.TypeOf(state))
		if err := helpdeskflow.DecodeSnapshot(b, back.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Elem().Interface(), state) {
			t.Errorf("%s: decoded %+v\nwant %+v", name, back.Elem().Interface(), state)
		}
	}
}
