package imapmail_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
)

// slowSettings are settings for a slow server's IMAP and SMTP sides.

// loopbackAllowed lets the client reach the slow servers, which listen on
// loopback and speak plain text (allowed only to loopback).
var loopbackAllowed = imapmail.WithPolicy(egress.Policy{AllowLoopback: true})

func slowSettings(imapSrv, smtpSrv *imapmailtest.SlowServer) imapmail.Settings {
	s := imapmail.Settings{Username: "user", Password: "pass", Address: "support@example.test"}
	if imapSrv != nil {
		imapSrv.ApplyIMAP(&s)
	} else {
		s.IMAPHost, s.IMAPSecurity = "127.0.0.1", imapmail.SecurityNone
	}
	if smtpSrv != nil {
		smtpSrv.ApplySMTP(&s)
	} else {
		s.SMTPHost, s.SMTPSecurity = "127.0.0.1", imapmail.SecurityNone
	}
	return s
}

// safety bounds a test's call by a context far longer than any step
// deadline the test sets, so that a client that never gives up by itself
// fails the test (its call ends by the context) instead of hanging it.
func safety(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantStepTimeout fails unless err is a timeout of step that the client
// decided on its own (the step's deadline), not the end of ctx.
func wantStepTimeout(t *testing.T, ctx context.Context, err error, protocol, step string) {
	t.Helper()
	if ctx.Err() != nil {
		t.Fatalf("the call ended only with the test's context (%v): no step deadline stopped it", err)
	}
	var e *imapmail.Error
	if !errors.As(err, &e) || e.Kind != imapmail.ErrorTimeout || e.Protocol != protocol || e.Step != step || !imapmail.Temporary(err) {
		t.Fatalf("error %v, want a temporary %s timeout at step %q", err, protocol, step)
	}
	if !strings.Contains(err.Error(), "took longer than") {
		t.Errorf("error %q does not say the step took too long", err)
	}
}

// A server that answers one byte at a time keeps a step going no longer
// than its deadline: bytes arriving do not extend it. (The drip is much
// faster than the deadline, so that a client whose clock restarted with
// every byte would run until the test's context ends.)
func TestFetchSlowDripTimesOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ drip, step string }{
		{imapmailtest.DripGreeting, "greeting"},
		{imapmailtest.DripExamine, "examine"},
		{imapmailtest.DripBody, "fetch"},
	} {
		t.Run(tc.drip, func(t *testing.T) {
			t.Parallel()
			srv := imapmailtest.NewSlowIMAP(t, tc.drip, 10*time.Millisecond)
			ctx := safety(t)
			_, err := imapmail.New(slowSettings(srv, nil), loopbackAllowed, imapmail.WithTimeout(time.Second, time.Second)).
				Fetch(ctx, imapmail.Cursor{}, time.Time{}, 10)
			wantStepTimeout(t, ctx, err, "imap", tc.step)
			select {
			case <-srv.Dripping():
			default:
				t.Fatal("the server never dripped: the test proves nothing")
			}
		})
	}
}

func TestSendSlowDripTimesOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ drip, step string }{
		{imapmailtest.DripGreeting, "greeting"},
		{imapmailtest.DripDataReply, "data"},
	} {
		t.Run(tc.drip, func(t *testing.T) {
			t.Parallel()
			srv := imapmailtest.NewSlowSMTP(t, tc.drip, 20*time.Millisecond)
			ctx := safety(t)
			err := imapmail.New(slowSettings(nil, srv), loopbackAllowed, imapmail.WithTimeout(time.Second, 300*time.Millisecond)).
				Send(ctx, []string{"customer@example.net"}, reply())
			wantStepTimeout(t, ctx, err, "smtp", tc.step)
			select {
			case <-srv.Dripping():
			default:
				t.Fatal("the server never dripped: the test proves nothing")
			}
		})
	}
}

// The context bounds a whole conversation too: a send whose context ends
// while the server drips stops then, however long its steps may take.
func TestSendSlowDripStopsWithTheContext(t *testing.T) {
	t.Parallel()
	srv := imapmailtest.NewSlowSMTP(t, imapmailtest.DripDataReply, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-srv.Dripping()
		cancel()
	}()
	err := imapmail.New(slowSettings(nil, srv), loopbackAllowed).Send(ctx, []string{"customer@example.net"}, reply())
	if !errors.Is(err, context.Canceled) || imapmail.Classify(err) != imapmail.ErrorTimeout || imapmail.Temporary(err) {
		t.Fatalf("error %v: want the cancellation, classified timeout, not temporary", err)
	}
	if srv.Messages() != 1 {
		t.Fatalf("the server read %d messages", srv.Messages())
	}
}
