package imapmail_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
)

// policySettings are settings whose servers are never reached: the fake
// resolver of the tests knows neither name.
func policySettings() imapmail.Settings {
	return imapmail.Settings{IMAPHost: "imap.example.test", IMAPSecurity: imapmail.SecurityTLS,
		SMTPHost: "smtp.example.test", SMTPSecurity: imapmail.SecurityStartTLS,
		Username: "support@example.test", Password: "app-password"}
}

// TestPolicy_RefusesInternalAddresses proves that a host that is, or
// resolves to, an internal address is refused before any connection: the
// loopback listener named by some of the cases never sees one, and the
// names that resolve to loopback on a closed port fail as refused, not as
// unreachable (which a connection attempt would have been). The private
// and link-local addresses are refused the same way and never contacted.
func TestPolicy_RefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	l := egresstest.Listen(t)
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{
		"rebind.example.test":   {netip.MustParseAddr("127.0.0.1")},
		"internal.example.test": {netip.MustParseAddr("10.0.0.1")},
		"metadata.example.test": {netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00::1")},
	})
	production := imapmail.WithPolicy(egress.Policy{Resolver: resolver})
	for _, tc := range []struct {
		host string
		port int
	}{
		{"10.0.0.1", 993},
		{"192.168.1.1", 993},
		{"169.254.169.254", 993},
		{"[::1]", 993},
		{"::ffff:127.0.0.1", 993},
		{"127.0.0.1", l.Port()},
		{"localhost", l.Port()},
		{"rebind.example.test", 993},
		{"internal.example.test", 993},
		{"metadata.example.test", 143},
	} {
		s := policySettings()
		s.IMAPHost, s.IMAPPort = tc.host, tc.port
		server := "imap " + net.JoinHostPort(strings.Trim(tc.host, "[]"), strconv.Itoa(tc.port))
		c := imapmail.New(s, production)
		wantError(t, c.Check(t.Context()), imapmail.ErrorBlocked, server, "connect", false)
		_, err := c.Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
		wantError(t, err, imapmail.ErrorBlocked, server, "connect", false)
		if !errors.Is(err, egress.ErrBlockedAddress) {
			t.Errorf("%s: %v is not an egress.ErrBlockedAddress", tc.host, err)
		}

		smtpPort := tc.port
		if smtpPort == 993 || smtpPort == 143 {
			smtpPort = 587
		}
		s = policySettings()
		s.SMTPHost, s.SMTPPort = tc.host, smtpPort
		server = "smtp " + net.JoinHostPort(strings.Trim(tc.host, "[]"), strconv.Itoa(smtpPort))
		err = imapmail.New(s, production).Send(t.Context(), []string{"customer@example.net"}, reply())
		wantError(t, err, imapmail.ErrorBlocked, server, "connect", false)
	}
	if n := l.Accepted(t); n != 0 {
		t.Fatalf("the loopback listener accepted %d connections, want 0", n)
	}

	// Where loopback is allowed (development, tests), the same settings
	// connect: the listener was reachable all along.
	s := policySettings()
	s.IMAPHost, s.IMAPPort, s.IMAPSecurity = "localhost", l.Port(), imapmail.SecurityNone
	_, err := imapmail.New(s, imapmail.WithPolicy(egress.Policy{AllowLoopback: true, Resolver: resolver})).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
	if imapmail.Classify(err) == imapmail.ErrorBlocked {
		t.Fatalf("loopback allowed: %v", err)
	}
	if n := l.Accepted(t); n != 1 {
		t.Errorf("with loopback allowed the listener accepted %d connections, want 1", n)
	}
	// Private addresses stay refused.
	s.IMAPHost, s.IMAPPort = "internal.example.test", 993
	_, err = imapmail.New(s, imapmail.WithPolicy(egress.Policy{AllowLoopback: true, Resolver: resolver})).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
	wantError(t, err, imapmail.ErrorBlocked, "imap internal.example.test:993", "connect", false)
}

func TestPolicy_MalformedHostIsAValidationError(t *testing.T) {
	s := policySettings()
	s.SMTPHost = "127.1"
	err := imapmail.New(s, imapmailtest.AllowLoopback).Check(t.Context())
	if d := helpdeskflow.ErrorDetails(err); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation || len(d) != 1 || d[0].Field != "smtp_host" ||
		!strings.Contains(d[0].Problem, "non-standard form") {
		t.Fatalf("Check = %v (%+v)", err, d)
	}
}

// TestPolicy_Ports: off loopback, only the mail ports.
func TestPolicy_Ports(t *testing.T) {
	resolver := egresstest.FakeDNS(t, nil)
	production := imapmail.WithPolicy(egress.Policy{Resolver: resolver})
	for _, port := range imapmail.IMAPPorts {
		s := policySettings()
		s.IMAPPort = port
		if err := imapmail.New(s, production).Check(t.Context()); imapmail.Classify(err) != imapmail.ErrorDNS {
			t.Errorf("IMAP port %d: %v, want the (fake) DNS failure", port, err)
		}
	}
	for _, port := range imapmail.SMTPPorts {
		s := policySettings()
		s.SMTPPort = port
		if err := imapmail.New(s, production).Send(t.Context(), []string{"customer@example.net"}, reply()); imapmail.Classify(err) != imapmail.ErrorDNS {
			t.Errorf("SMTP port %d: %v, want the (fake) DNS failure", port, err)
		}
	}
	for _, tc := range []struct {
		imap, smtp int
		server     string
	}{
		{imap: 6379, smtp: 587, server: "imap imap.example.test:6379"},
		{imap: 993, smtp: 22, server: "smtp smtp.example.test:22"},
		{imap: 80, smtp: 443, server: "imap imap.example.test:80"},
	} {
		s := policySettings()
		s.IMAPPort, s.SMTPPort = tc.imap, tc.smtp
		err := imapmail.New(s, production).Check(t.Context())
		wantError(t, err, imapmail.ErrorBlocked, tc.server, "connect", false)
		if !errors.Is(err, imapmail.ErrPortRefused) || !strings.Contains(err.Error(), "is not an") {
			t.Errorf("ports %d, %d: %v, want ErrPortRefused", tc.imap, tc.smtp, err)
		}
	}
}

// TestPolicy_SecurityNone: plain text only to a loopback server, only
// where loopback is allowed.
func TestPolicy_SecurityNone(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{"mail.example.test": {netip.MustParseAddr("127.0.0.1")}})
	s := policySettings()
	s.IMAPSecurity = imapmail.SecurityNone
	err := imapmail.New(s, imapmail.WithPolicy(egress.Policy{Resolver: resolver})).Check(t.Context())
	wantError(t, err, imapmail.ErrorTLS, "imap imap.example.test:143", "connect", false)
	if !errors.Is(err, imapmail.ErrPlaintextRefused) || !strings.Contains(err.Error(), "security none") {
		t.Errorf("security none: %v, want ErrPlaintextRefused", err)
	}
	s = policySettings()
	s.SMTPSecurity = imapmail.SecurityNone
	err = imapmail.New(s, imapmail.WithPolicy(egress.Policy{Resolver: resolver})).Send(t.Context(), []string{"customer@example.net"}, reply())
	wantError(t, err, imapmail.ErrorTLS, "smtp smtp.example.test:587", "connect", false)

	// To the loopback Dovecot, where loopback is allowed, plain text
	// works, also through a name that resolves to loopback.
	s = env.Settings(imapmail.SecurityNone, "INBOX")
	if _, err := imapmail.New(s, imapmailtest.AllowLoopback).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1); err != nil {
		t.Errorf("plain text to loopback: %v", err)
	}
	s.IMAPHost = "mail.example.test"
	if _, err := imapmail.New(s, imapmail.WithPolicy(egress.Policy{AllowLoopback: true, Resolver: resolver})).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1); err != nil {
		t.Errorf("plain text to a name on loopback: %v", err)
	}
}

// TestErrorsHoldNoServerText proves that what a server says — its
// greeting, its answers, whatever service listens on the port — never
// reaches an error's text (what an API answer or a connection's last_error
// shows), only the log.
func TestErrorsHoldNoServerText(t *testing.T) {
	t.Parallel()
	const secret = "Banner-7f3a-internal.corp.example"
	for _, tc := range []struct {
		name     string
		greeting string
		answer   func(string) string
		smtp     bool
		kind     string
		step     string
		said     string // what the cause holds of the server's words
	}{
		{"imap login refused", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] " + secret + " ready", imapmailtest.IMAPRefusing(secret), false, imapmail.ErrorAuth, "login", secret},
		{"imap greeting refused", "* BYE " + secret, imapmailtest.IMAPRefusing(secret), false, imapmail.ErrorProtocol, "greeting", secret},
		{"not imap at all", "SSH-2.0-OpenSSH_9.6 " + secret, imapmailtest.IMAPRefusing(secret), false, imapmail.ErrorProtocol, "greeting", "OpenSSH_9.6"},
		{"smtp auth refused", "220 " + secret + " ESMTP", imapmailtest.SMTPRefusing(secret), true, imapmail.ErrorAuth, "auth", secret},
		{"smtp greeting refused", "554 5.3.2 " + secret, imapmailtest.SMTPRefusing(secret), true, imapmail.ErrorProtocol, "greeting", secret},
		{"not smtp at all", "HTTP/1.1 400 " + secret, imapmailtest.SMTPRefusing(secret), true, imapmail.ErrorProtocol, "greeting", "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host, port := imapmailtest.LineServer(t, tc.greeting, tc.answer)
			s := policySettings()
			s.IMAPHost, s.IMAPPort, s.IMAPSecurity = host, port, imapmail.SecurityNone
			s.SMTPHost, s.SMTPSecurity = "127.0.0.1", imapmail.SecurityNone
			s.SMTPPort = closedPort(t)
			if tc.smtp {
				s.SMTPPort = port
			}
			var logged bytes.Buffer
			c := imapmail.New(s, imapmailtest.AllowLoopback, imapmail.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
			var err error
			if tc.smtp {
				err = c.Send(t.Context(), []string{"customer@example.net"}, reply())
			} else {
				_, err = c.Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
			}
			server := "imap 127.0.0.1:" + strconv.Itoa(port)
			if tc.smtp {
				server = "smtp 127.0.0.1:" + strconv.Itoa(port)
			}
			wantError(t, err, tc.kind, server, tc.step, false)
			if strings.Contains(err.Error(), tc.said) || strings.Contains(err.Error(), "7f3a") {
				t.Errorf("the error shows the server's words: %q", err)
			}
			var e *imapmail.Error
			if !errors.As(err, &e) || !strings.Contains(e.Detail(), tc.said) {
				t.Errorf("Detail() = %q, want the server's words for the log", e.Detail())
			}
			if !strings.Contains(logged.String(), tc.said) {
				t.Errorf("the log does not have the server's words: %q", logged.String())
			}
			// Check reports the same, for both servers.
			if err := c.Check(t.Context()); err == nil || strings.Contains(err.Error(), tc.said) || strings.Contains(err.Error(), "7f3a") {
				t.Errorf("Check = %q", err)
			}
		})
	}
}
