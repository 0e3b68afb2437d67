package tickets_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

var mailMD = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorIntegration, ID: "google:test"}, Channel: helpdeskflow.ChannelIntegration}

// mailbox is a workspace's mailbox (a connection id) on a real Postgres.
type mailbox struct {
	t         *testing.T
	svc       *tickets.Service
	workspace uuid.UUID
	conn      uuid.UUID
}

func newMailbox(t *testing.T, svc *tickets.Service, workspace uuid.UUID) *mailbox {
	return &mailbox{t: t, svc: svc, workspace: workspace, conn: uuid.New()}
}

// receive imports a message of the mailbox from sender: its id is
// messageID, its Gmail-like thread threadID, and it answers inReplyTo
// ("" for none).
func (m *mailbox) receive(sender, messageID, threadID, inReplyTo string, dmarcFailed bool) tickets.ImportResult {
	m.t.Helper()
	keys := []string{threadID}
	if inReplyTo != "" {
		keys = append(keys, inReplyTo)
	}
	res, err := m.svc.ImportMail(context.Background(), m.workspace, mailMD, tickets.ImportMail{
		ConnectionID: m.conn, ExternalID: "gm-" + messageID, ThreadID: threadID, MessageID: messageID, ThreadKeys: keys,
		From: tickets.CustomerRef{Email: sender}, Subject: "Re: Order 1042", Body: "<p>Hello</p>", DMARCFailed: dmarcFailed,
	})
	if err != nil {
		m.t.Fatal(err)
	}
	return res
}

// The threading rule: mail names a ticket by its thread (a Gmail thread id
// or a Message-Id in In-Reply-To/References) but joins it only when its
// sender is the ticket's customer or has written to the ticket before, and
// its DMARC did not fail; otherwise it makes a new ticket and says why.
func TestImportMail_ThreadJoinChecksTheSender(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	ctx := context.Background()
	ws, _, err := access.New(postgres.Access(store)).CreateWorkspace(ctx, mailMD, "mail")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// sender of the answer; "{c}" is the customer's first address,
		// "{new}" the one it has after an email change (when changeEmail).
		sender       string
		changeEmail  bool
		byThreadOnly bool
		dmarcFailed  bool
		joins        bool
		refused      string
	}{
		{name: "customer", sender: "{c}", joins: true},
		{name: "customer, other case", sender: "upper:{c}", joins: true},
		{name: "customer by the Gmail thread only", sender: "{c}", byThreadOnly: true, joins: true},
		{name: "customer without a DMARC verdict (no Authentication-Results)", sender: "{c}", joins: true},
		{name: "earlier writer: the customer's old address after an email change", sender: "{c}", changeEmail: true, joins: true},
		{name: "customer's new address, never written before", sender: "{new}", changeEmail: true, joins: true},
		{name: "stranger knowing the Message-Id", sender: "mallory@evil.example", refused: tickets.ThreadRefusedSender},
		{name: "stranger in the Gmail thread", sender: "mallory@evil.example", byThreadOnly: true, refused: tickets.ThreadRefusedSender},
		{name: "customer's address failing DMARC", sender: "{c}", dmarcFailed: true, refused: tickets.ThreadRefusedDMARC},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMailbox(t, svc, ws)
			customer := fmt.Sprintf("ann-%d@example.com", i)
			newAddress := fmt.Sprintf("ann-%d@new.example.com", i)
			thread := fmt.Sprintf("thread-%d", i)
			first := m.receive(customer, fmt.Sprintf("q-%d@example.com", i), thread, "", false)
			if !first.Created {
				t.Fatalf("the first mail made no ticket: %+v", first)
			}
			if tc.changeEmail {
				tk, err := svc.GetTicket(ctx, ws, first.TicketID, false)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.UpdateCustomer(ctx, ws, mailMD, tk.Customer.ID, nil, tickets.UpdateCustomer{Email: &newAddress}); err != nil {
					t.Fatal(err)
				}
			}
			sender := tc.sender
			switch sender {
			case "{c}":
				sender = customer
			case "upper:{c}":
				sender = fmt.Sprintf("ANN-%d@Example.COM", i)
			case "{new}":
				sender = newAddress
			}
			inReplyTo := fmt.Sprintf("q-%d@example.com", i)
			if tc.byThreadOnly {
				inReplyTo = ""
			}
			res := m.receive(sender, fmt.Sprintf("r-%d@example.com", i), thread, inReplyTo, tc.dmarcFailed)
			if joined := !res.Created && res.TicketID == first.TicketID; joined != tc.joins || res.ThreadRefused != tc.refused {
				t.Fatalf("answer: %+v (first ticket %s); want joins %v, refused %q", res, first.TicketID, tc.joins, tc.refused)
			}
			tk, err := svc.GetTicket(ctx, ws, first.TicketID, false)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 2, false: 1}[tc.joins]; len(tk.Messages) != want {
				t.Fatalf("the first ticket has %d messages, want %d", len(tk.Messages), want)
			}
			if !tc.joins {
				other, err := svc.GetTicket(ctx, ws, res.TicketID, false)
				if err != nil || other.Customer == nil || other.Customer.Email != helpdeskflow.NormalizeEmail(sender) {
					t.Fatalf("the new ticket: %+v, %v", other, err)
				}
			}
		})
	}
}

// A stranger's mail in a customer's thread makes a ticket of its own,
// recorded under the same thread: later mail still finds the right ticket
// for its sender, the customer's the customer's and the stranger's the
// stranger's.
func TestImportMail_RefusedMailDoesNotCaptureTheThread(t *testing.T) {
	store := testenv.Store(t)
	svc := tickets.New(postgres.Tickets(store))
	ws, _, err := access.New(postgres.Access(store)).CreateWorkspace(context.Background(), mailMD, "mail")
	if err != nil {
		t.Fatal(err)
	}
	m := newMailbox(t, svc, ws)
	original := m.receive("ann@example.com", "q1@example.com", "t1", "", false)
	intruder := m.receive("mallory@evil.example", "x1@evil.example", "t1", "q1@example.com", false)
	if !intruder.Created || intruder.ThreadRefused != tickets.ThreadRefusedSender {
		t.Fatalf("the stranger's mail: %+v", intruder)
	}
	// The customer answers in the same Gmail thread, the newest record of
	// which is now the stranger's ticket's.
	if res := m.receive("ann@example.com", "q2@example.com", "t1", "x1@evil.example", false); res.Created || res.TicketID != original.TicketID {
		t.Fatalf("the customer's next mail: %+v, want ticket %s", res, original.TicketID)
	}
	// The stranger answers in the thread: it joins its own ticket.
	if res := m.receive("mallory@evil.example", "x2@evil.example", "t1", "q2@example.com", false); res.Created || res.TicketID != intruder.TicketID {
		t.Fatalf("the stranger's next mail: %+v, want ticket %s", res, intruder.TicketID)
	}
}
