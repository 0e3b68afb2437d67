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
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// FuzzEventSizeCap drives random ticket and customer payloads through the
// commands (validation, sanitizing, automations' absence, the event
// encoder and the size check) against the real event store, and checks
// that the size cap always holds: a command either stores events whose
// published encoding is within helpdeskflow.MaxEventBytes (and whose
// record the producer takes), or is refused with a 4xx code naming a field
// and stores nothing (for customers never payload_too_large: their totals
// keep every customer event under the cap). Payloads repeat a fuzzed unit (which may be a
// character that grows once stored) up to and past every per-field limit.
func FuzzEventSizeCap(f *testing.F) {
	for _, unit := range []string{"x", "<", `"`, "\x01", "😀", "é", "\u2028", "&", "<b>", "\\"} {
		f.Add(false, unit, uint16(commands.MaxMessageBodyLen), uint8(0), uint16(0))
		f.Add(false, unit, uint16(100), uint8(95), uint16(commands.MaxCustomFieldText))
		f.Add(true, unit, uint16(200), uint8(100), uint16(commands.MaxCustomFieldText))
		f.Add(true, unit, uint16(50), uint8(20), uint16(800))
	}
	store := testenv.Store(f)
	svc := tickets.New(postgres.Tickets(store))
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: uuid.NewString()}, Channel: helpdeskflow.ChannelAPI,
		RequestID: "req_" + strings.Repeat("0", 32)}

	f.Fuzz(func(t *testing.T, customer bool, unit string, reps uint16, fields uint8, fieldReps uint16) {
		if unit == "" || len(unit) > 8 {
			return
		}
		ctx := context.Background()
		workspaceID := uuid.New()
		text := strings.Repeat(unit, int(reps))
		value := strings.Repeat(unit, int(fieldReps))
		custom := map[string]any{}
		for i := range int(fields) {
			custom[fmt.Sprintf("f%03d", i)] = value
		}
		var streams []uuid.UUID
		var err error
		if customer {
			name := text
			tags := []string{}
			for i := range min(int(fields), 50) {
				tags = append(tags, fmt.Sprintf("t%d", i))
			}
			profiles := []helpdeskflow.LinkedProfile{}
			for i := range min(int(fields), 20) {
				profiles = append(profiles, helpdeskflow.LinkedProfile{Provider: "shopify", ExternalID: fmt.Sprint(i),
					Data: map[string]any{"note": truncateRunes(value, 2000)}})
			}
			var c helpdeskflow.Customer
			c, _, err = svc.UpsertCustomer(ctx, workspaceID, md, tickets.UpsertCustomer{Email: "fuzz@example.com", Name: &name, Tags: tags,
				CustomFields: custom, Metadata: map[string]any{"m": truncateRunes(value, 1000)}, LinkedProfiles: profiles})
			streams = []uuid.UUID{c.ID}
		} else {
			cmd := tickets.CreateTicket{Subject: truncateRunes(text, commands.MaxSubjectLen), Customer: tickets.CustomerRef{Email: "fuzz@example.com", Name: text},
				Message: tickets.NewTicketMessage{Body: text}, CustomFields: custom}
			var tk helpdeskflow.Ticket
			tk, err = svc.CreateTicket(ctx, workspaceID, md, cmd)
			streams = []uuid.UUID{tk.ID, tk.CustomerID}
		}
		if err != nil {
			code := helpdeskflow.ErrorCode(err)
			switch {
			case customer && code != helpdeskflow.EValidation && code != helpdeskflow.ELimitExceeded:
				// The customer totals keep every customer event under the
				// cap, so payload_too_large is not reachable.
				t.Fatalf("refused with %v, want validation_failed or limit_exceeded", err)
			case !customer && code != helpdeskflow.EValidation && code != helpdeskflow.EPayloadTooLarge:
				t.Fatalf("refused with %v, want validation_failed or payload_too_large", err)
			}
			if d := helpdeskflow.ErrorDetails(err); len(d) == 0 || d[0].Field == "" {
				t.Errorf("%s names no field: %v", code, err)
			}
			if events, rerr := store.ReadAfter(ctx, helpdeskflow.Position{}, 10, workspaceID); rerr != nil || len(events) != 0 {
				t.Errorf("a refused command stored %d events (%v)", len(events), rerr)
			}
			return
		}
		for _, id := range streams {
			events, err := store.Load(ctx, workspaceID, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				record, err := kafka.NewRecord(kafka.TopicEvents, e)
				if err != nil {
					t.Fatal(err)
				}
				if n := kafka.RecordBytes(record); n > helpdeskflow.MaxEventBytes {
					t.Errorf("stored a %s event whose record takes %d bytes, over MaxEventBytes %d", e.Type, n, helpdeskflow.MaxEventBytes)
				}
			}
		}
	})
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}
