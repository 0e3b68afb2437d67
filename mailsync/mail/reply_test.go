package mail_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

var (
	agent    = mail.Address{Name: "Zoë from Acme Support", Email: "support@acme.example"}
	customer = mail.Address{Name: "Ada Lovelace", Email: "ada@example.com"}
	sentAt   = time.Date(2024, 1, 2, 11, 0, 0, 0, time.FixedZone("CET", 3600))
)

func TestBuildReply_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name          string
		subject       string
		text, html    string
		wantSubject   string
		wantText      string
		wantHTML      string
		wantMultipart bool
	}{
		{name: "TextOnly", subject: "Refund for order 1042", text: "Hello Ada,\n\nyour refund of 120 € is on its way.\n",
			wantSubject: "Re: Refund for order 1042", wantText: "Hello Ada,\n\nyour refund of 120 € is on its way.\n"},
		{name: "AlreadyRe", subject: "RE: Refund", text: "ok", wantSubject: "RE: Refund", wantText: "ok\n"},
		{name: "NumberedRe", subject: "Re[2]: Refund", text: "ok", wantSubject: "Re[2]: Refund", wantText: "ok\n"},
		{name: "GermanAW", subject: "AW: Rückerstattung", text: "ok", wantSubject: "AW: Rückerstattung", wantText: "ok\n"},
		{name: "NonASCIISubject", subject: "Problème de connexion à l'espace client — très long sujet qui doit être replié sur plusieurs lignes",
			text: "Bonjour", wantSubject: "Re: Problème de connexion à l'espace client — très long sujet qui doit être replié sur plusieurs lignes", wantText: "Bonjour\n"},
		{name: "LookalikeEncodedWord", subject: "=?utf-8?q?not_encoded?=", text: "x", wantSubject: "Re: =?utf-8?q?not_encoded?=", wantText: "x\n"},
		{name: "HTMLOnly", subject: "Refund", html: "<p>Hello&nbsp;Ada,</p><p>done: <b>120 €</b></p><ul><li>one</li></ul>",
			wantSubject: "Re: Refund", wantText: "Hello Ada,\ndone: 120 €\n- one\n", wantHTML: "<p>Hello&nbsp;Ada,</p><p>done: <b>120 €</b></p><ul><li>one</li></ul>\n", wantMultipart: true},
		{name: "Both", subject: "Refund", text: "plain " + strings.Repeat("long line ", 20), html: "<p>" + strings.Repeat("x=y ", 40) + "</p>",
			wantSubject: "Re: Refund", wantText: "plain " + strings.Repeat("long line ", 20) + "\n", wantHTML: "<p>" + strings.Repeat("x=y ", 40) + "</p>\n", wantMultipart: true},
		{name: "SubjectWithNewline", subject: "Refund\r\nBcc: evil@example.com", text: "x", wantSubject: "Re: Refund  Bcc: evil@example.com", wantText: "x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs := []string{"first@mail.gmail.com", "<second@mail.gmail.com>"}
			raw, err := mail.BuildReply(agent, []mail.Address{customer, {Name: "Doe, Jane", Email: "jane@example.com"}}, tc.subject,
				"<orig@mail.gmail.com>", refs, tc.text, tc.html, "reply-1@acme.example", sentAt)
			if err != nil {
				t.Fatalf("BuildReply: %v", err)
			}
			checkLines(t, raw)
			m, err := mail.Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, raw)
			}
			eq(t, "From", m.From, agent)
			eq(t, "To", m.To, []mail.Address{customer, {Name: "Doe, Jane", Email: "jane@example.com"}})
			eq(t, "Subject", m.Subject, tc.wantSubject)
			eq(t, "MessageID", m.MessageID, "reply-1@acme.example")
			eq(t, "InReplyTo", m.InReplyTo, "orig@mail.gmail.com")
			eq(t, "References", m.References, []string{"first@mail.gmail.com", "second@mail.gmail.com", "orig@mail.gmail.com"})
			eq(t, "Date", m.Date.Equal(sentAt), true)
			eq(t, "TextBody", m.TextBody, tc.wantText)
			eq(t, "HTMLBody", m.HTMLBody, tc.wantHTML)
			eq(t, "multipart", bytes.Contains(raw, []byte("multipart/alternative")), tc.wantMultipart)
			eq(t, "Warnings", m.Warnings, []string(nil))
			eq(t, "MIME-Version", bytes.Contains(raw, []byte("\r\nMIME-Version: 1.0\r\n")), true)
			eq(t, "Bcc header", bytes.Contains(raw, []byte("\r\nBcc:")), false)
		})
	}
}

// checkLines checks CRLF line ends and RFC 5322's line length limits: at
// most 78 characters for headers here (998 is the hard limit), 76 for
// quoted-printable body lines.
func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF in message")
	}
	header, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, l := range strings.Split(string(raw), "\r\n") {
		limit := 78
		if !strings.Contains(header, l) {
			limit = 76
		}
		if len(l) > limit && !strings.HasPrefix(l, "Content-Type: multipart") {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}
}

func TestBuildReply_References(t *testing.T) {
	var refs []string
	for i := range 60 {
		refs = append(refs, "r"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+"-"+time.Duration(i).String()+"@x.example")
	}
	raw, err := mail.BuildReply(agent, []mail.Address{customer}, "s", refs[59], refs[:59], "t", "", "", sentAt)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, raw)
	m, err := mail.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(m.References), 40; got != want {
		t.Fatalf("len(References) = %d, want %d", got, want)
	}
	eq(t, "first reference", m.References[0], refs[0])
	eq(t, "last reference", m.References[39], refs[59])
	if !regexp.MustCompile(`^[0-9a-f-]{36}@acme\.example$`).MatchString(m.MessageID) {
		t.Errorf("generated MessageID = %q, want <uuid>@acme.example", m.MessageID)
	}
}

func TestBuildReply_ErrValidation(t *testing.T) {
	_, err := mail.BuildReply(mail.Address{Email: "support@acme.example\r\nBcc: x@y"}, []mail.Address{{Email: "nobody"}}, "s", "", nil, "", " ", "bad id@x", sentAt)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Fatalf("code = %q (%v), want %q", got, err, want)
	}
	var e *helpdeskflow.Error
	_ = errorsAs(err, &e)
	var fields []string
	for _, d := range e.Details {
		fields = append(fields, d.Field)
	}
	eq(t, "fields", fields, []string{"from", "to[0]", "body", "message_id"})

	_, err = mail.BuildReply(agent, nil, "s", "", nil, "x", "", "", sentAt)
	eq(t, "no recipient code", helpdeskflow.ErrorCode(err), helpdeskflow.EValidation)
}

func TestNewMessageID(t *testing.T) {
	a, b := mail.NewMessageID("Acme.Example"), mail.NewMessageID("Acme.Example")
	if a == b {
		t.Errorf("two ids are equal: %q", a)
	}
	if !strings.HasSuffix(a, "@acme.example") {
		t.Errorf("id = %q, want suffix @acme.example", a)
	}
	if got := mail.NewMessageID("<bad domain>"); !strings.HasSuffix(got, "@baddomain") {
		t.Errorf("id = %q, want suffix @baddomain", got)
	}
	if got := mail.NewMessageID(""); !strings.HasSuffix(got, "@helpdeskflow.invalid") {
		t.Errorf("id = %q, want suffix @helpdeskflow.invalid", got)
	}
}

func errorsAs(err error, target **helpdeskflow.Error) bool { return errors.As(err, target) }
