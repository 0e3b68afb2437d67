package imapmail_test

import (
	"errors"
	"net/textproto"
	"reflect"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
)

func validSettings() imapmail.Settings {
	return imapmail.Settings{
		IMAPHost: "outlook.office365.com", SMTPHost: "smtp.office365.com",
		Username: "support@example.com", Password: "app-password",
	}
}

func TestValidateDefaults(t *testing.T) {
	s := validSettings()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	want := validSettings()
	want.IMAPPort, want.IMAPSecurity = 993, imapmail.SecurityTLS
	want.SMTPPort, want.SMTPSecurity = 587, imapmail.SecurityStartTLS
	want.Address, want.Mailbox = "support@example.com", "INBOX"
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}

	s = validSettings()
	s.IMAPSecurity, s.SMTPSecurity = imapmail.SecurityStartTLS, imapmail.SecurityTLS
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.IMAPPort != 143 || s.SMTPPort != 465 {
		t.Errorf("ports %d/%d, want 143/465", s.IMAPPort, s.SMTPPort)
	}

	s = validSettings()
	s.IMAPSecurity, s.SMTPSecurity, s.IMAPPort, s.Address, s.Mailbox = imapmail.SecurityNone, imapmail.SecurityNone, 1143, "help@example.org", "Support/Tickets"
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.IMAPPort != 1143 || s.SMTPPort != 587 || s.Address != "help@example.org" || s.Mailbox != "Support/Tickets" {
		t.Errorf("explicit values changed: %+v", s)
	}
}

func TestValidateProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *imapmail.Settings)
		fields []string
	}{
		{"ok", func(s *imapmail.Settings) {}, nil},
		{"ok IPv4 host", func(s *imapmail.Settings) { s.IMAPHost = "127.0.0.1" }, nil},
		{"ok IPv6 host", func(s *imapmail.Settings) { s.IMAPHost = "::1"; s.SMTPHost = "[::1]" }, nil},
		{"ok trailing dot", func(s *imapmail.Settings) { s.IMAPHost = "mail.example.com." }, nil},
		{"everything missing", func(s *imapmail.Settings) { *s = imapmail.Settings{} },
			[]string{"imap_host", "smtp_host", "username", "password", "address"}},
		{"scheme", func(s *imapmail.Settings) { s.IMAPHost = "imaps://outlook.office365.com" }, []string{"imap_host"}},
		{"space", func(s *imapmail.Settings) { s.SMTPHost = "smtp.office365.com " }, []string{"smtp_host"}},
		{"host with port", func(s *imapmail.Settings) { s.IMAPHost = "outlook.office365.com:993" }, []string{"imap_host"}},
		{"host with path", func(s *imapmail.Settings) { s.SMTPHost = "smtp.office365.com/x" }, []string{"smtp_host"}},
		{"bad label", func(s *imapmail.Settings) { s.IMAPHost = "mail..example.com" }, []string{"imap_host"}},
		{"bad char", func(s *imapmail.Settings) { s.IMAPHost = "mail!.example.com" }, []string{"imap_host"}},
		{"ports", func(s *imapmail.Settings) { s.IMAPPort, s.SMTPPort = -1, 65536 }, []string{"imap_port", "smtp_port"}},
		{"security", func(s *imapmail.Settings) { s.IMAPSecurity, s.SMTPSecurity = "ssl", "TLS" }, []string{"imap_security", "smtp_security"}},
		{"password line break", func(s *imapmail.Settings) { s.Password = "a\r\nb" }, []string{"password"}},
		{"username not email, no address", func(s *imapmail.Settings) { s.Username = "DOMAIN\\support" }, []string{"address"}},
		{"username not email, address given", func(s *imapmail.Settings) { s.Username, s.Address = "support", "support@example.com" }, nil},
		{"address with name", func(s *imapmail.Settings) { s.Address = "Support <support@example.com>" }, []string{"address"}},
		{"address not email", func(s *imapmail.Settings) { s.Address = "support" }, []string{"address"}},
		{"mailbox control char", func(s *imapmail.Settings) { s.Mailbox = "IN\nBOX" }, []string{"mailbox"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSettings()
			tc.change(&s)
			err := s.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var he *helpdeskflow.Error
			if !errors.As(err, &he) || he.Code != helpdeskflow.EValidation {
				t.Fatalf("Validate = %v, want a %s *helpdeskflow.Error", err, helpdeskflow.EValidation)
			}
			var got []string
			for _, p := range he.Details {
				if p.Problem == "" {
					t.Errorf("field %s has no problem text", p.Field)
				}
				got = append(got, p.Field)
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields %v, want %v (details %+v)", got, tc.fields, he.Details)
			}
		})
	}
}

func TestNewInvalidSettings(t *testing.T) {
	c := imapmail.New(imapmail.Settings{})
	if err := c.Check(t.Context()); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Errorf("Check = %v, want the validation error", err)
	}
	if _, err := c.Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1); err == nil {
		t.Error("Fetch with invalid settings succeeded")
	}
}

func TestClassifyTemporary(t *testing.T) {
	for _, tc := range []struct {
		err       error
		kind      string
		temporary bool
	}{
		{nil, "", false},
		{&imapmail.Error{Kind: imapmail.ErrorRejected, Err: &textproto.Error{Code: 450, Msg: "mailbox busy"}}, imapmail.ErrorRejected, true},
		{&imapmail.Error{Kind: imapmail.ErrorRejected, Err: &textproto.Error{Code: 550, Msg: "no such user"}}, imapmail.ErrorRejected, false},
		{&imapmail.Error{Kind: imapmail.ErrorProtocol, Err: &textproto.Error{Code: 421, Msg: "try later"}}, imapmail.ErrorProtocol, true},
		{&imapmail.Error{Kind: imapmail.ErrorAuth, Err: errors.New("x")}, imapmail.ErrorAuth, false},
		{&imapmail.Error{Kind: imapmail.ErrorUnreachable, Err: errors.New("x")}, imapmail.ErrorUnreachable, true},
		{errors.Join(&imapmail.Error{Kind: imapmail.ErrorMailbox, Err: errors.New("x")}, &imapmail.Error{Kind: imapmail.ErrorAuth}), imapmail.ErrorMailbox, false},
		{errors.New("anything"), imapmail.ErrorProtocol, false},
	} {
		if got := imapmail.Classify(tc.err); got != tc.kind {
			t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.kind)
		}
		if got := imapmail.Temporary(tc.err); got != tc.temporary {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.temporary)
		}
	}
}
