package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
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
