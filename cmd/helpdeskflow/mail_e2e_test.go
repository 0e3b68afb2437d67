package main

import (
	"context"
	"fmt"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestDev_GmailMailBecomesATicket connects Gmail through the API (OAuth
// against a fake provider), delivers a mail to a fake Gmail mailbox and
// waits for the dispatcher's sync to make it a ticket; an agent's reply
// through the API then goes back out through Gmail in the same thread.
func TestDev_GmailMailBecomesATicket(t *testing.T) {
	provider := oauthtest.NewServer()
	t.Cleanup(provider.Close)
	mailbox := gmailtest.NewServer()
	t.Cleanup(mailbox.Close)
	mailbox.SetAddress("support@acme.test")
	mailbox.SetTokenCheck(provider.ValidAccessToken)
	keys, err := secretbox.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HDF_OAUTH_GOOGLE_CLIENT_ID", oauthtest.ClientID)
	t.Setenv("HDF_OAUTH_GOOGLE_CLIENT_SECRET", oauthtest.ClientSecret)
	t.Setenv("HDF_OAUTH_GOOGLE_AUTH_URL", provider.AuthURL())
	t.Setenv("HDF_OAUTH_GOOGLE_TOKEN_URL", provider.TokenURL())
	cfg := testConfig(t)
	cfg.SecretKeys, cfg.GmailAPIURL, cfg.GmailInterval, cfg.PublicURL = keys, mailbox.URL(), "1s", "http://127.0.0.1:8080"
	dev := startDev(t, cfg)

	status, _, started := call(t, "POST", dev.url+"/v1/integrations/google/connect", dev.key, nil)
	if status != 201 {
		t.Fatalf("connect: %d %v", status, started)
	}
	authURL := started["authorization_url"].(string)
	code, err := provider.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	status, _, conn := call(t, "GET", dev.url+"/v1/integrations/google/callback?state="+url.QueryEscape(u.Query().Get("state"))+"&code="+url.QueryEscape(code), "", nil)
	if status != 200 || conn["status"] != "active" {
		t.Fatalf("callback: %d %v; token requests: %+v", status, conn, provider.Requests())
	}
	thread := mailbox.Deliver([]byte("From: Ann <ann@example.com>\r\nTo: support@acme.test\r\nSubject: Where is my order?\r\n"+
		"Message-ID: <o1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOrder 1001 has not arrived.\r\n"), "")

	c, ctx := newAPIClient(t, dev), context.Background()
	var ticketID string
	testenv.Eventually(t, 30*time.Second, func() error {
		ann, ok, err := c.FindCustomerByEmail(ctx, "ann@example.com")
		if err != nil || !ok {
			return fmt.Errorf("no customer yet: %v", err)
		}
		if len(ann.TicketIDs) != 1 {
			return fmt.Errorf("tickets of ann: %v", ann.TicketIDs)
		}
		ticketID = ann.TicketIDs[0]
		return nil
	})
	ticket, err := c.GetTicket(ctx, ticketID, false)
	if err != nil || ticket.Subject != "Where is my order?" || ticket.Channel != "email" {
		t.Fatalf("ticket: %+v %v", ticket, err)
	}
	if _, _, err := c.AddMessage(ctx, ticketID, client.MessageCreate{Body: "It ships today."}); err != nil {
		t.Fatalf("reply: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if sent := mailbox.Sent(); len(sent) != 1 || sent[0].RequestThreadID != thread {
			return fmt.Errorf("sent through Gmail: %+v", sent)
		}
		return nil
	})
}

// TestDev_LocalMailLoop is the walk-through of the README's "Mail on your
// machine" on the test profile's own servers: dev trusts the profile's CA
// (HDF_EXTRA_CA_FILE), the demo workspace connects its Outlook integration
// to the local Dovecot (IMAP over TLS) and Postfix (SMTP with STARTTLS), a
// mail a customer sends by SMTP to the support address becomes a ticket,
// and an agent's reply through the API arrives in the customer's local
// mailbox, in the same thread.
func TestDev_LocalMailLoop(t *testing.T) {
	env := imapmailtest.Env(t)
	loop := imapmailtest.SMTPEnv(t)
	supportBox := imapmailtest.NewMailbox(t, env)
	customer := env.As(imapmailtest.SecondUser, imapmailtest.SecondPassword)
	customerBox := strings.ToLower(supportBox) // addresses may be lowercased on the way
	imapmailtest.DeleteOnCleanup(t, customer, customerBox)
	support, customerAddr := imapmailtest.Address(env.User, supportBox), imapmailtest.Address(customer.User, customerBox)

	cfg := testConfig(t)
	cfg.ExtraCAFile, cfg.OutlookInterval = env.CAFile, "1s"
	dev := startDev(t, cfg)
	imapHost, imapPort, _ := strings.Cut(env.TLSAddr, ":")
	settings := fmt.Sprintf(`{"imap_host": %q, "imap_port": %s, "imap_security": "tls", "smtp_host": %q, "smtp_port": %d, "smtp_security": "starttls", `+
		`"username": %q, "password": %q, "address": %q, "mailbox": %q}`, imapHost, imapPort, loop.Host, loop.Port, env.User, env.Password, support, supportBox)
	status, _, connected := call(t, "POST", dev.url+"/v1/integrations/outlook/connect", dev.key, []byte(settings))
	if conn, _ := connected["connection"].(map[string]any); status != 201 || conn["status"] != "active" {
		t.Fatalf("connect: %d %v", status, connected)
	}

	sendMail(t, loop, env.CAPEM, customer, customerAddr, support, "Subject: Where is my order?\r\nMessage-ID: <loop-1@example.test>\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nOrder 1001 has not arrived.\r\n")
	var ticketID string
	testenv.Eventually(t, 60*time.Second, func() error {
		status, _, list := call(t, "GET", dev.url+"/v1/customers?email="+url.QueryEscape(customerAddr), dev.key, nil)
		if status != 200 {
			return fmt.Errorf("customer: %d %v", status, list)
		}
		data, _ := list["data"].([]any)
		if len(data) != 1 {
			return fmt.Errorf("no customer yet: %v", list)
		}
		ids, _ := data[0].(map[string]any)["ticket_ids"].([]any)
		if len(ids) != 1 {
			return fmt.Errorf("tickets of the customer: %v", list)
		}
		ticketID = ids[0].(string)
		return nil
	})
	status, _, ticket := call(t, "GET", dev.url+"/v1/tickets/"+ticketID, dev.key, nil)
	if status != 200 || ticket["subject"] != "Where is my order?" || ticket["channel"] != "email" {
		t.Fatalf("ticket: %d %v", status, ticket)
	}

	if status, _, body := call(t, "POST", dev.url+"/v1/tickets/"+ticketID+"/messages", dev.key, []byte(`{"body": "It ships today."}`)); status != 201 {
		t.Fatalf("reply: %d %v", status, body)
	}
	var reply string
	testenv.Eventually(t, 60*time.Second, func() error {
		msgs, err := imapmailtest.Messages(customer, customerBox)
		if err != nil || len(msgs) != 1 {
			return fmt.Errorf("the customer's mailbox holds %d messages (%v)", len(msgs), err)
		}
		reply = string(msgs[0])
		return nil
	})
	for _, want := range []string{"It ships today.", "In-Reply-To: <loop-1@example.test>", "Subject: Re: Where is my order?"} {
		if !strings.Contains(reply, want) {
			t.Errorf("the reply in the customer's mailbox lacks %q:\n%s", want, reply)
		}
	}
}

// sendMail sends a message from one test user's address to another's
// through the loop's SMTP server, as a mail client would: STARTTLS
// (trusting caPEM), AUTH PLAIN as the sender's user.
func sendMail(t *testing.T, loop imapmailtest.Loop, caPEM []byte, sender imapmailtest.Environment, from, to, headersAndBody string) {
	t.Helper()
	c, err := smtp.Dial(loop.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tlsConfig := imapmailtest.TLSConfig(caPEM)
	tlsConfig.ServerName = loop.Host
	if err := c.StartTLS(tlsConfig); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", sender.User, sender.Password, loop.Host)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail(from); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatalf("RCPT TO: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: Customer <" + from + ">\r\nTo: <" + to + ">\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\n" + headersAndBody
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}
