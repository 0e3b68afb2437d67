package tickets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// problem is a field problem expected from validation: the field's name and
// a part of its description.
type problem struct {
	field, contains string
}

// customFields decodes JSON the way the HTTP API does, so numbers are
// float64 and objects map[string]any.
func customFields(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// manyTags returns n distinct tags.
func manyTags(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("tag%d", i)
	}
	return tags
}

// manyFields returns n custom fields with distinct names.
func manyFields(n int) map[string]any {
	fields := make(map[string]any, n)
	for i := range n {
		fields[fmt.Sprintf("field%d", i)] = float64(i)
	}
	return fields
}

func ptr[T any](v T) *T { return &v }

// TestCreateTicket_Validate drives CreateTicket's validation through the
// Service: each refused case lists every problem it must report (and no
// other), each accepted case may check the normalized ticket it returns.
func TestCreateTicket_Validate(t *testing.T) {
	svc := tickets.New(postgres.Tickets(testenv.Store(t)))
	cases := []struct {
		name     string
		modify   func(t *testing.T, c *tickets.CreateTicket)
		problems []problem // nil: the ticket is created
		check    func(t *testing.T, tk helpdeskflow.Ticket)
	}{
		// Any Unicode white space in a tag is refused, not only ASCII.
		{name: "tags with a no-break space and a line separator",
			modify:   func(t *testing.T, c *tickets.CreateTicket) { c.Tags = []string{"a\u00a0b", "ok", "a\u2028b"} },
			problems: []problem{{"tags[0]", "must not contain white space or commas"}, {"tags[2]", "must not contain white space or commas"}}},
		// A body that sanitizing empties is refused, not stored empty.
		{name: "body of nothing but a script",
			modify:   func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = "<script>alert(1)</script>" },
			problems: []problem{{"message.body", "has no content left once unsafe HTML (scripts, event handlers, …) is removed"}}},
		// message.body, counted in characters (runes), not bytes.
		{name: "body of 50,000 two-byte characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("é", 50000) }},
		{name: "body of 50,000 four-byte characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("😀", 50000) }},
		{name: "body of 50,000 ASCII characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("a", 50000) }},
		{name: "body of 50,001 two-byte characters",
			modify:   func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("é", 50001) },
			problems: []problem{{"message.body", "must be at most 50000 characters, got 50001"}}},
		{name: "body of 50,001 four-byte characters",
			modify:   func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("😀", 50001) },
			problems: []problem{{"message.body", "must be at most 50000 characters, got 50001"}}},
		{name: "body of 50,000 emoji and one ASCII letter",
			modify:   func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("😀", 50000) + "a" },
			problems: []problem{{"message.body", "got 50001"}}},
		{name: "empty body", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = "" },
			problems: []problem{{"message.body", "required"}}},
		{name: "blank body", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = " \t\n " },
			problems: []problem{{"message.body", "required"}}},
		{name: "body of invalid UTF-8", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.Body = "broken \xff text" },
			problems: []problem{{"message.body", "valid UTF-8"}}},

		// subject.
		{name: "subject of 500 multi-byte characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Subject = strings.Repeat("ü", 500) },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if got := utf8.RuneCountInString(tk.Subject); got != 500 {
					t.Errorf("subject has %d characters, want 500", got)
				}
			}},
		{name: "subject of 501 multi-byte characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Subject = strings.Repeat("ü", 501) },
			problems: []problem{{"subject", "must be at most 500 characters, got 501"}}},
		{name: "empty subject", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Subject = "" },
			problems: []problem{{"subject", "required"}}},
		{name: "blank subject", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Subject = "\u3000 \t" },
			problems: []problem{{"subject", "required"}}},
		{name: "subject of invalid UTF-8", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Subject = "a\xc3(" },
			problems: []problem{{"subject", "valid UTF-8"}}},

		// customer.name is optional.
		{name: "no customer name", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Name = "" }},
		{name: "customer name of 200 characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Name = strings.Repeat("ß", 200) }},
		{name: "customer name of 201 characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Name = strings.Repeat("ß", 201) },
			problems: []problem{{"customer.name", "must be at most 200 characters, got 201"}}},

		// customer.email.
		{name: "email with spaces and upper case is normalized",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "  Ada.Lovelace@Example.COM \t" },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if got, want := tk.Customer.Email, "ada.lovelace@example.com"; got != want {
					t.Errorf("customer email = %q, want %q", got, want)
				}
			}},
		{name: "email with plus and subdomains", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada+refunds@mail.example.co.uk" }},
		{name: "email with non-ASCII letters",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "Adá@Exämple.com" },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if got, want := tk.Customer.Email, "adá@exämple.com"; got != want {
					t.Errorf("customer email = %q, want %q", got, want)
				}
			}},
		{name: "missing email", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "" },
			problems: []problem{{"customer.email", "required"}}},
		{name: "blank email", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "   " },
			problems: []problem{{"customer.email", "required"}}},
		{name: "email without @", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada.example.com" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email without domain", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada@" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email without local part", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "@example.com" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email with dotless domain", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada@localhost" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email with two @", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada@home@example.com" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email with inner space", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada lovelace@example.com" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email with display name", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "Ada <ada@example.com>" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email in angle brackets", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "<ada@example.com>" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email with comment", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada@example.com (Ada)" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "two emails", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada@example.com,bob@example.com" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email with consecutive dots", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Customer.Email = "ada..lovelace@example.com" },
			problems: []problem{{"customer.email", "must be an email address"}}},
		{name: "email of 254 characters", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.Customer.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"
			if n := len(c.Customer.Email); n != 254 {
				t.Fatalf("test email has %d characters, want 254", n)
			}
		}},
		{name: "email of 255 characters", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.Customer.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
		}, problems: []problem{{"customer.email", "must be at most 254 characters, got 255"}}},

		// Enums: defaults, every allowed value, case-sensitive.
		{name: "defaults",
			modify: func(t *testing.T, c *tickets.CreateTicket) {},
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if tk.Priority != helpdeskflow.PriorityNormal || tk.Status != helpdeskflow.StatusNew || tk.Messages[0].AuthorType != helpdeskflow.AuthorCustomer {
					t.Errorf("priority %q, status %q, author type %q; want normal, new, customer", tk.Priority, tk.Status, tk.Messages[0].AuthorType)
				}
			}},
		{name: "priority low", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Priority = helpdeskflow.PriorityLow }},
		{name: "priority normal", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Priority = helpdeskflow.PriorityNormal }},
		{name: "priority high", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Priority = helpdeskflow.PriorityHigh }},
		{name: "priority urgent",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.Priority = helpdeskflow.PriorityUrgent },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if tk.Priority != helpdeskflow.PriorityUrgent {
					t.Errorf("priority = %q, want urgent", tk.Priority)
				}
			}},
		{name: "priority in upper case", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Priority = "High" },
			problems: []problem{{"priority", "must be one of low, normal, high, urgent"}}},
		{name: "unknown priority", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Priority = "asap" },
			problems: []problem{{"priority", "must be one of"}}},
		{name: "status new", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = helpdeskflow.StatusNew }},
		{name: "status open", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = helpdeskflow.StatusOpen }},
		{name: "status pending", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = helpdeskflow.StatusPending }},
		{name: "status on_hold", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = helpdeskflow.StatusOnHold }},
		{name: "status solved",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = helpdeskflow.StatusSolved },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if tk.Status != helpdeskflow.StatusSolved {
					t.Errorf("status = %q, want solved", tk.Status)
				}
			}},
		{name: "status closed on create", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = helpdeskflow.StatusClosed },
			problems: []problem{{"status", "must be one of new, open, pending, on_hold, solved"}}},
		{name: "status in upper case", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Status = "OPEN" },
			problems: []problem{{"status", "must be one of"}}},
		{name: "author type agent",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.AuthorType = helpdeskflow.AuthorAgent },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if got := tk.Messages[0].AuthorType; got != helpdeskflow.AuthorAgent {
					t.Errorf("author type = %q, want agent", got)
				}
			}},
		{name: "author type customer", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.AuthorType = helpdeskflow.AuthorCustomer }},
		{name: "unknown author type", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Message.AuthorType = "system" },
			problems: []problem{{"message.author_type", "must be one of customer, agent"}}},

		// Tags.
		{name: "50 tags", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = manyTags(50) },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if got := len(tk.Tags); got != 50 {
					t.Errorf("%d tags, want 50", got)
				}
			}},
		{name: "51 tags", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = manyTags(51) },
			problems: []problem{{"tags", "must have at most 50 tags, got 51"}}},
		{name: "tag of 64 multi-byte characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = []string{strings.Repeat("ž", 64)} }},
		{name: "tag of 65 multi-byte characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = []string{"ok", strings.Repeat("ž", 65)} },
			problems: []problem{{"tags[1]", "must be at most 64 characters"}}},
		{name: "tags trimmed, lowercased, deduplicated in order",
			modify: func(t *testing.T, c *tickets.CreateTicket) {
				c.Tags = []string{" VIP ", "Refund", "vip", "\tREFUND\n", "Ünïcode"}
			},
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if got, want := tk.Tags, []string{"vip", "refund", "ünïcode"}; !reflect.DeepEqual(got, want) {
					t.Errorf("tags = %q, want %q", got, want)
				}
			}},
		{name: "tag of 64 characters once trimmed", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = []string{"  " + strings.Repeat("x", 64) + "  "} }},
		{name: "no tags",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = nil },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if tk.Tags == nil || len(tk.Tags) != 0 {
					t.Errorf("tags = %#v, want an empty list", tk.Tags)
				}
			}},
		{name: "empty and blank tags", modify: func(t *testing.T, c *tickets.CreateTicket) { c.Tags = []string{"", "ok", "  "} },
			problems: []problem{{"tags[0]", "must not be empty"}, {"tags[2]", "must not be empty"}}},
		{name: "tags with white space or commas",
			modify: func(t *testing.T, c *tickets.CreateTicket) {
				c.Tags = []string{"two words", "a,b", "tab\there", "new\nline", "cr\rx"}
			},
			problems: []problem{
				{"tags[0]", "must not contain white space or commas"}, {"tags[1]", "must not contain white space or commas"},
				{"tags[2]", "must not contain white space or commas"}, {"tags[3]", "must not contain white space or commas"},
				{"tags[4]", "must not contain white space or commas"},
			}},

		// Custom fields: strings, numbers, booleans and null; no nesting.
		{name: "custom fields of every allowed type",
			modify: func(t *testing.T, c *tickets.CreateTicket) {
				c.CustomFields = customFields(t, `{"order": "1042", "amount": 12.5, "count": 3, "paid": true, "refunded": false, "note": null}`)
			},
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				want := map[string]any{"order": "1042", "amount": 12.5, "count": float64(3), "paid": true, "refunded": false, "note": nil}
				if !reflect.DeepEqual(tk.CustomFields, want) {
					t.Errorf("custom fields = %#v, want %#v", tk.CustomFields, want)
				}
			}},
		{name: "100 custom fields", modify: func(t *testing.T, c *tickets.CreateTicket) { c.CustomFields = manyFields(100) }},
		{name: "101 custom fields", modify: func(t *testing.T, c *tickets.CreateTicket) { c.CustomFields = manyFields(101) },
			problems: []problem{{"custom_fields", "must have at most 100 fields, got 101"}}},
		{name: "custom field name of 64 characters", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = map[string]any{strings.Repeat("ñ", 64): "x"}
		}},
		{name: "custom field name of 65 characters", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = map[string]any{strings.Repeat("ñ", 65): "x"}
		}, problems: []problem{{"custom_fields." + strings.Repeat("ñ", 65), "field names must be 1 to 64 characters"}}},
		{name: "empty custom field name", modify: func(t *testing.T, c *tickets.CreateTicket) { c.CustomFields = map[string]any{"": "x"} },
			problems: []problem{{"custom_fields.", "field names must be 1 to 64 characters"}}},
		{name: "custom field text of 10,000 characters", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = map[string]any{"note": strings.Repeat("€", 10000)}
		}},
		{name: "custom field text of 10,001 characters", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = map[string]any{"note": strings.Repeat("€", 10001)}
		}, problems: []problem{{"custom_fields.note", "must be at most 10000 characters"}}},
		{name: "nested object custom field", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = customFields(t, `{"address": {"city": "London"}}`)
		}, problems: []problem{{"custom_fields.address", "must be a string, number, boolean or null"}}},
		{name: "empty object custom field", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = customFields(t, `{"x": {}}`)
		}, problems: []problem{{"custom_fields.x", "must be a string, number, boolean or null"}}},
		{name: "array custom field", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = customFields(t, `{"skus": ["a", "b"]}`)
		}, problems: []problem{{"custom_fields.skus", "must be a string, number, boolean or null"}}},
		{name: "empty array custom field", modify: func(t *testing.T, c *tickets.CreateTicket) {
			c.CustomFields = customFields(t, `{"skus": []}`)
		}, problems: []problem{{"custom_fields.skus", "must be a string, number, boolean or null"}}},

		// external_id is optional, but not blank when given.
		{name: "external id",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.ExternalID = ptr("zendesk-1042") },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if tk.ExternalID == nil || *tk.ExternalID != "zendesk-1042" {
					t.Errorf("external id = %v, want zendesk-1042", tk.ExternalID)
				}
			}},
		{name: "no external id",
			modify: func(t *testing.T, c *tickets.CreateTicket) { c.ExternalID = nil },
			check: func(t *testing.T, tk helpdeskflow.Ticket) {
				if tk.ExternalID != nil {
					t.Errorf("external id = %q, want none", *tk.ExternalID)
				}
			}},
		{name: "external id of 255 characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.ExternalID = ptr(strings.Repeat("я", 255)) }},
		{name: "external id of 256 characters", modify: func(t *testing.T, c *tickets.CreateTicket) { c.ExternalID = ptr(strings.Repeat("я", 256)) },
			problems: []problem{{"external_id", "must be at most 255 characters, got 256"}}},
		{name: "empty external id", modify: func(t *testing.T, c *tickets.CreateTicket) { c.ExternalID = ptr("") },
			problems: []problem{{"external_id", "required"}}},
		{name: "blank external id", modify: func(t *testing.T, c *tickets.CreateTicket) { c.ExternalID = ptr("  ") },
			problems: []problem{{"external_id", "required"}}},

		// Every problem is listed at once, in the order of the fields.
		{name: "four problems at once",
			modify: func(t *testing.T, c *tickets.CreateTicket) {
				c.Subject = strings.Repeat("s", 501)
				c.Customer.Email = "not-an-email"
				c.Priority = "asap"
				c.Tags = []string{"ok", "has space"}
			},
			problems: []problem{
				{"subject", "must be at most 500 characters"},
				{"customer.email", "must be an email address"},
				{"priority", "must be one of"},
				{"tags[1]", "must not contain white space"},
			}},
		{name: "every field wrong",
			modify: func(t *testing.T, c *tickets.CreateTicket) {
				*c = tickets.CreateTicket{
					Subject:      " ",
					Customer:     tickets.CustomerRef{Email: "ada@", Name: strings.Repeat("n", 201)},
					Message:      tickets.NewTicketMessage{Body: strings.Repeat("😀", 50001), AuthorType: "bot"},
					Priority:     "p0",
					Status:       "closed",
					Tags:         []string{""},
					CustomFields: map[string]any{"x": []any{}},
					ExternalID:   ptr(""),
				}
			},
			problems: []problem{
				{"subject", "required"},
				{"customer.email", "must be an email address"},
				{"customer.name", "must be at most 200 characters"},
				{"message.body", "must be at most 50000 characters, got 50001"},
				{"message.author_type", "must be one of"},
				{"priority", "must be one of"},
				{"status", "must be one of"},
				{"tags[0]", "must not be empty"},
				{"custom_fields.x", "must be a string, number, boolean or null"},
				{"external_id", "required"},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := validTicket()
			tc.modify(t, &cmd)
			tk, err := svc.CreateTicket(context.Background(), uuid.New(), md, cmd)
			if tc.problems == nil {
				if err != nil {
					t.Fatalf("CreateTicket: %v (details %+v), want it created", err, helpdeskflow.ErrorDetails(err))
				}
				if tc.check != nil {
					tc.check(t, tk)
				}
				return
			}
			if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EValidation {
				t.Fatalf("error code = %q (%v), want %q", got, err, helpdeskflow.EValidation)
			}
			details := helpdeskflow.ErrorDetails(err)
			if len(details) != len(tc.problems) {
				t.Errorf("%d problems %+v, want %d %+v", len(details), details, len(tc.problems), tc.problems)
			}
			for i := range min(len(details), len(tc.problems)) {
				got, want := details[i], tc.problems[i]
				if got.Field != want.field || !strings.Contains(got.Problem, want.contains) {
					t.Errorf("problem %d = %s: %q, want %s: …%s…", i, got.Field, got.Problem, want.field, want.contains)
				}
			}
		})
	}
}
