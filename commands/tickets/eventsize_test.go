package tickets_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/lookups"
)

// TestCreateTicket_LargestAllowedFits creates the largest tickets the API
// allows, with bodies whose characters take the most bytes once stored
// (4-byte characters, characters sanitizing escapes, characters JSON
// escapes) and checks each is stored under the event size cap.
func TestCreateTicket_LargestAllowedFits(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	bodies := map[string]string{
		"4-byte characters":     strings.Repeat("😀", commands.MaxMessageBodyLen),
		"'<' escaped to &lt;":   strings.Repeat("<", commands.MaxMessageBodyLen),
		`'"' escaped to &#34;`:  strings.Repeat(`"`, commands.MaxMessageBodyLen-2) + "ok",
		"JSON-escaped controls": strings.Repeat("\x01", commands.MaxMessageBodyLen-2) + "ok",
		"U+2028 (JSON-escaped)": strings.Repeat("\u2028", commands.MaxMessageBodyLen-2) + "ok",
		"mixed markup and text": strings.Repeat("<b>&</b>", commands.MaxMessageBodyLen/8),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			workspaceID := uuid.New()
			cmd := validTicket()
			cmd.Subject = strings.Repeat("😀", commands.MaxSubjectLen)
			cmd.Customer.Name = strings.Repeat("😀", commands.MaxNameLen)
			cmd.Message.Body = body
			tk, err := svc.CreateTicket(context.Background(), workspaceID, md, cmd)
			if err != nil {
				t.Fatalf("CreateTicket: %v", err)
			}
			events, err := store.Load(context.Background(), workspaceID, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			encoded, err := helpdeskflow.MarshalJSON(events[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(encoded) > helpdeskflow.MaxEventBytes {
				t.Errorf("ticket.created is %d bytes as published, over MaxEventBytes %d", len(encoded), helpdeskflow.MaxEventBytes)
			}
			t.Logf("ticket.created: %d bytes", len(encoded))
		})
	}
}

// TestCreateTicket_OversizedEventRefused is the poison event: custom fields
// that pass their own limits but make an event over the cap are refused
// with 413 payload_too_large naming the largest field, and nothing of the
// request is stored (not even the new customer).
func TestCreateTicket_OversizedEventRefused(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	workspaceID := uuid.New()
	cmd := validTicket()
	cmd.CustomFields = map[string]any{}
	for i := range 95 {
		cmd.CustomFields[fmt.Sprintf("f%02d", i)] = strings.Repeat("<", commands.MaxCustomFieldText)
	}
	cmd.CustomFields["f42"] = strings.Repeat("<", commands.MaxCustomFieldText) // the same size: the first key wins
	cmd.CustomFields["zz"] = strings.Repeat("é", commands.MaxCustomFieldText)  // 2 bytes a character: the largest
	_, err := svc.CreateTicket(context.Background(), workspaceID, md, cmd)
	if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EPayloadTooLarge {
		t.Fatalf("error = %v, want %s", err, helpdeskflow.EPayloadTooLarge)
	}
	details := helpdeskflow.ErrorDetails(err)
	if len(details) != 1 || details[0].Field != "custom_fields.zz" {
		t.Errorf("details = %+v, want one naming custom_fields.zz", details)
	}
	if _, err := lookups.New(store.DB()).CustomerByEmail(context.Background(), workspaceID, cmd.Customer.Email); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("the customer of the refused request was stored (err %v)", err)
	}
	events, err := store.ReadAfter(context.Background(), helpdeskflow.Position{}, 10, workspaceID)
	if err != nil || len(events) != 0 {
		t.Errorf("the refused request stored %d events (err %v)", len(events), err)
	}
}

// TestUpdateTicket_OversizedNamesField names the field inside a change
// (custom_fields.<key>, not its "old" or "new") and leaves the ticket as it
// was.
func TestUpdateTicket_OversizedNamesField(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	workspaceID := uuid.New()
	tk, err := svc.CreateTicket(context.Background(), workspaceID, md, validTicket())
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]any{}
	for i := range 91 {
		fields[fmt.Sprintf("f%02d", i)] = strings.Repeat("x", commands.MaxCustomFieldText)
	}
	_, err = svc.UpdateTicket(context.Background(), workspaceID, md, tk.ID, nil, tickets.UpdateTicket{CustomFields: fields}, true)
	if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EPayloadTooLarge {
		t.Fatalf("error = %v, want %s", err, helpdeskflow.EPayloadTooLarge)
	}
	if d := helpdeskflow.ErrorDetails(err); len(d) != 1 || d[0].Field != "custom_fields.f00" {
		t.Errorf("details = %+v, want one naming custom_fields.f00", d)
	}
	after, err := svc.GetTicket(context.Background(), workspaceID, tk.ID, true)
	if err != nil || after.Version != tk.Version {
		t.Errorf("ticket version %d after the refused update, want %d (err %v)", after.Version, tk.Version, err)
	}
}
