package imapmail_test

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
)

// reply is an agent's reply to message "q-1", threaded.
func reply() []byte {
	return []byte("From: Support <support@example.test>\r\n" +
		"To: Customer <customer@example.net>\r\n" +
		"Subject: Re: Question 1\r\n" +
		"Message-ID: <reply-1@helpdeskflow.example>\r\n" +
		"In-Reply-To:   <q-1@example.net>\r\n" +
		"References: <q-0@example.net>\r\n <q-1@example.net>\r\n" +
		"Date: Mon, 02 Jun 2025 11:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"Grüße — we fixed it.\r\n" +
		".A line starting with a dot\r\n" +
		"..and two\r\n" +
		"\r\n" +
		"> quoted\r\n")
}

// smtpSetup returns settings for env's IMAP (mailbox) and a new SMTP
// receiver that accepts the same credentials, and the TLS option trusting
// both.
func smtpSetup(t *testing.T, env imapmailtest.Environment, mailbox string, security string, opts imapmailtest.SMTPOptions) (imapmail.Settings, *imapmailtest.SMTPServer, imapmail.Option) {
	t.Helper()
	s := env.Settings(imapmail.SecurityStartTLS, mailbox)
	s.Address = "support@example.test"
	opts.Username, opts.Password = s.Username, s.Password
	srv := imapmailtest.NewSMTPServer(t, opts)
	srv.Apply(&s, security)
	return s, srv, imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM, srv.CAPEM))
}

func TestSend(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	for _, tc := range []struct {
		name     string
		security string
		opts     imapmailtest.SMTPOptions
		mech     string
		tls      bool
	}{
		{"starttls plain", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{}, "PLAIN", true},
		{"starttls login only", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{Mechanisms: []string{"LOGIN"}}, "LOGIN", true},
		{"implicit tls", imapmail.SecurityTLS, imapmailtest.SMTPOptions{ImplicitTLS: true}, "PLAIN", true},
		{"none", imapmail.SecurityNone, imapmailtest.SMTPOptions{NoTLS: true}, "PLAIN", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv, trust := smtpSetup(t, env, "INBOX", tc.security, tc.opts)
			raw := reply()
			to := []string{"customer@example.net", "cc@example.org"}
			if err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Send(t.Context(), to, raw); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages", len(msgs))
			}
			m := msgs[0]
			if m.From != "support@example.test" || !slices.Equal(m.To, to) || m.Mechanism != tc.mech || m.TLS != tc.tls || m.User != env.User {
				t.Errorf("envelope from %q to %v, auth %s as %s, tls %v", m.From, m.To, m.Mechanism, m.User, m.TLS)
			}
			if !bytes.Equal(m.Data, raw) {
				t.Errorf("received data differs:\n%q\nwant\n%q", m.Data, raw)
			}
			if !bytes.Contains(m.Data, []byte("\r\nIn-Reply-To:   <q-1@example.net>\r\nReferences: <q-0@example.net>\r\n <q-1@example.net>\r\n")) {
				t.Errorf("threading headers not preserved byte for byte")
			}
		})
	}
}

func TestSendIntoMailbox(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	s, srv, trust := smtpSetup(t, env, mbox, imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{DeliverTo: mbox, DeliverEnv: env})
	c := imapmail.New(s, imapmailtest.AllowLoopback, trust)
	raw := reply()
	if err := c.Send(t.Context(), []string{"customer@example.net"}, raw); err != nil {
		t.Fatalf("Send: %v", err)
	}
	b, err := c.Fetch(t.Context(), imapmail.Cursor{}, time.Now().Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 1 || b.Messages[0].UID != srv.Messages()[0].UID || !bytes.Equal(b.Messages[0].Raw, raw) {
		t.Fatalf("the delivered reply did not come back intact: %d messages", len(b.Messages))
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	server := func(srv *imapmailtest.SMTPServer) string { return "smtp " + srv.Addr }

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		for _, mech := range []string{"PLAIN", "LOGIN"} {
			s, srv, trust := smtpSetup(t, env, "INBOX", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{Mechanisms: []string{mech}})
			s.Password = "wrong-password"
			err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Send(t.Context(), []string{"customer@example.net"}, reply())
			wantError(t, err, imapmail.ErrorAuth, server(srv), "auth", false)
			if len(srv.Messages()) != 0 {
				t.Error("a message was accepted")
			}
		}
	})
	t.Run("recipient rejected", func(t *testing.T) {
		t.Parallel()
		s, srv, trust := smtpSetup(t, env, "INBOX", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{RejectRecipients: []string{"gone@example.net"}})
		err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Send(t.Context(), []string{"customer@example.net", "gone@example.net"}, reply())
		wantError(t, err, imapmail.ErrorRejected, server(srv), "rcpt to", false)
		if !strings.Contains(err.Error(), "gone@example.net") {
			t.Errorf("error does not name the recipient: %v", err)
		}
		if len(srv.Messages()) != 0 {
			t.Error("a message was accepted although a recipient was refused")
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		s, srv, _ := smtpSetup(t, env, "INBOX", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{})
		err := imapmail.New(s, imapmailtest.AllowLoopback).Send(t.Context(), []string{"customer@example.net"}, reply())
		wantError(t, err, imapmail.ErrorTLS, server(srv), "starttls", false)
	})
	t.Run("no STARTTLS offered", func(t *testing.T) {
		t.Parallel()
		s, srv, trust := smtpSetup(t, env, "INBOX", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{NoTLS: true})
		err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Send(t.Context(), []string{"customer@example.net"}, reply())
		wantError(t, err, imapmail.ErrorTLS, server(srv), "starttls", false)
	})
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		s, _, trust := smtpSetup(t, env, "INBOX", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{})
		s.SMTPPort = closedPort(t)
		err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Send(t.Context(), []string{"customer@example.net"}, reply())
		wantError(t, err, imapmail.ErrorUnreachable, "smtp 127.0.0.1:"+strconv.Itoa(s.SMTPPort), "connect", true)
	})
	t.Run("bad recipient address", func(t *testing.T) {
		t.Parallel()
		s, srv, trust := smtpSetup(t, env, "INBOX", imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{})
		err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Send(t.Context(), []string{"Customer <customer@example.net>"}, reply())
		if err == nil || len(srv.Messages()) != 0 {
			t.Errorf("Send to a non-bare address: %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)

	s, srv, trust := smtpSetup(t, env, mbox, imapmail.SecurityStartTLS, imapmailtest.SMTPOptions{})
	if err := imapmail.New(s, imapmailtest.AllowLoopback, trust).Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("Check sent a message")
	}

	bad := s
	bad.Mailbox = mbox + "-missing"
	wantError(t, imapmail.New(bad, imapmailtest.AllowLoopback, trust).Check(t.Context()), imapmail.ErrorMailbox, "imap "+env.Addr, "examine", false)

	// A wrong password fails both logins; the error names both servers.
	bad = s
	bad.Password = "wrong-password"
	err := imapmail.New(bad, imapmailtest.AllowLoopback, trust).Check(t.Context())
	wantError(t, err, imapmail.ErrorAuth, "imap "+env.Addr, "login", false)
	if !strings.Contains(err.Error(), "smtp "+srv.Addr+": auth: ") {
		t.Errorf("Check error does not report the SMTP failure: %v", err)
	}

	// Only SMTP failing.
	bad = s
	bad.SMTPPort = closedPort(t)
	wantError(t, imapmail.New(bad, imapmailtest.AllowLoopback, trust).Check(t.Context()), imapmail.ErrorUnreachable, "smtp 127.0.0.1:"+strconv.Itoa(bad.SMTPPort), "connect", true)
}
