package tickets_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

var md = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: "k"}, Channel: helpdeskflow.ChannelAPI}

func validTicket() tickets.CreateTicket {
	return tickets.CreateTicket{
		Subject:  "Broken",
		Customer: tickets.CustomerRef{Email: "ada@example.com", Name: "Ada"},
		Message:  tickets.NewTicketMessage{Body: "It broke."},
	}
}

func TestCreateTicket_Validation(t *testing.T) {
	svc := tickets.New(postgres.Tickets(testenv.Store(t)))
	cases := []struct {
		name   string
		modify func(*tickets.CreateTicket)
		fields []string
	}{
		{"everything missing", func(c *tickets.CreateTicket) { *c = tickets.CreateTicket{} }, []string{"subject", "customer.email", "message.body"}},
		{"blank subject", func(c *tickets.CreateTicket) { c.Subject = "   " }, []string{"subject"}},
		{"bad email", func(c *tickets.CreateTicket) { c.Customer.Email = "ada@" }, []string{"customer.email"}},
		{"email with display name", func(c *tickets.CreateTicket) { c.Customer.Email = "Ada <ada@example.com>" }, []string{"customer.email"}},
		{"body of 50,001 characters", func(c *tickets.CreateTicket) { c.Message.Body = strings.Repeat("é", 50001) }, []string{"message.body"}},
		{"bad priority and status", func(c *tickets.CreateTicket) { c.Priority, c.Status = "asap", "closed" }, []string{"priority", "status"}},
		{"bad tags", func(c *tickets.CreateTicket) { c.Tags = []string{"ok", "", "has space"} }, []string{"tags[1]", "tags[2]"}},
		{"nested custom field", func(c *tickets.CreateTicket) { c.CustomFields = map[string]any{"x": map[string]any{}} }, []string{"custom_fields.x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := validTicket()
			tc.modify(&cmd)
			_, err := svc.CreateTicket(context.Background(), uuid.New(), md, cmd)
			if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EValidation {
				t.Fatalf("error code = %q (%v), want %q", got, err, helpdeskflow.EValidation)
			}
			var fields []string
			for _, p := range helpdeskflow.ErrorDetails(err) {
				fields = append(fields, p.Field)
			}
			if got, want := strings.Join(fields, ","), strings.Join(tc.fields, ","); got != want {
				t.Errorf("fields with problems = %s, want %s", got, want)
			}
		})
	}

	t.Run("50,000 multi-byte characters are allowed", func(t *testing.T) {
		cmd := validTicket()
		cmd.Message.Body = strings.Repeat("é", 50000)
		if _, err := svc.CreateTicket(context.Background(), uuid.New(), md, cmd); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCreateTicket_SanitizesAndDefaults(t *testing.T) {
	svc := tickets.New(postgres.Tickets(testenv.Store(t)))
	cmd := validTicket()
	cmd.Message.Body = `<p onclick="x()">Hi <a href="javascript:alert(1)">there</a><script>alert(2)</script> &amp; bye</p>`
	cmd.Tags = []string{" VIP ", "vip", "refund"}
	tk, err := svc.CreateTicket(context.Background(), uuid.New(), md, cmd)
	if err != nil {
		t.Fatal(err)
	}
	body := tk.Messages[0].Body
	for _, bad := range []string{"onclick", "javascript:", "<script", "alert(2)"} {
		if strings.Contains(body, bad) {
			t.Errorf("sanitized body %q still contains %q", body, bad)
		}
	}
	if got, want := tk.Messages[0].BodyText, "Hi there & bye"; got != want {
		t.Errorf("body_text = %q, want %q", got, want)
	}
	if tk.Priority != helpdeskflow.PriorityNormal || tk.Status != helpdeskflow.StatusNew || tk.Version != 1 {
		t.Errorf("defaults: priority %q status %q version %d", tk.Priority, tk.Status, tk.Version)
	}
	if got := strings.Join(tk.Tags, ","); got != "vip,refund" {
		t.Errorf("tags = %s, want vip,refund", got)
	}
}

func TestCreateTicket_ConcurrentSameCustomer(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	workspace := uuid.New()
	spellings := []string{"A@x.com ", "a@X.COM", " a@x.com", "A@X.Com", "a@x.com"}
	const creates = 50
	var wg sync.WaitGroup
	customers := make([]uuid.UUID, creates)
	errs := make([]error, creates)
	for i := range creates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := validTicket()
			cmd.Subject = fmt.Sprintf("ticket %d", i)
			cmd.Customer.Email = spellings[i%len(spellings)]
			tk, err := svc.CreateTicket(context.Background(), workspace, md, cmd)
			customers[i], errs[i] = tk.CustomerID, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if customers[i] != customers[0] {
			t.Fatalf("create %d got customer %s, create 0 got %s: want one customer", i, customers[i], customers[0])
		}
	}
	got, err := svc.GetTicket(context.Background(), workspace, uuid.Nil, false)
	if helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("GetTicket(nil id) = %v, %v; want not_found", got.ID, err)
	}
}
