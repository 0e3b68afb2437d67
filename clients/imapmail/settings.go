package imapmail

import (
	"net"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/helpdeskflow/helpdeskflow"
)

// Security of a connection.
const (
	// SecurityTLS: TLS from the first byte (IMAP 993, SMTP 465).
	SecurityTLS = "tls"
	// SecurityStartTLS: plain connection upgraded by STARTTLS before
	// logging in (IMAP 143, SMTP 587); a server that does not offer
	// STARTTLS is an ErrorTLS failure, never a fallback to plain text.
	SecurityStartTLS = "starttls"
	// SecurityNone: no encryption at all; the password crosses the
	// network in clear. For tests and servers on a trusted network only.
	SecurityNone = "none"
)

// Default ports and mailbox that Validate fills in.
const (
	DefaultIMAPPortTLS = 993 // SecurityTLS
	DefaultIMAPPort    = 143 // SecurityStartTLS, SecurityNone
	DefaultSMTPPortTLS = 465 // SecurityTLS
	DefaultSMTPPort    = 587 // SecurityStartTLS, SecurityNone (submission)
	DefaultMailbox     = "INBOX"
)

// Settings is how to reach one mailbox: the IMAP server mail is fetched
// from, the SMTP server replies are sent through, and the account. For
// Outlook/Microsoft 365: outlook.office365.com, 993, tls and
// smtp.office365.com, 587, starttls, with the account's email address and
// an app password.
type Settings struct {
	IMAPHost     string `json:"imap_host"`
	IMAPPort     int    `json:"imap_port"`
	IMAPSecurity string `json:"imap_security"`
	SMTPHost     string `json:"smtp_host"`
	SMTPPort     int    `json:"smtp_port"`
	SMTPSecurity string `json:"smtp_security"`
	// Username logs in to both servers.
	Username string `json:"username"`
	// Password is the app password (never logged, never in errors).
	Password string `json:"password"`
	// Address is the mailbox's email address: the envelope sender of
	// replies. Defaults to Username when that is an email address.
	Address string `json:"address"`
	// Mailbox is the IMAP mailbox fetched, "INBOX" by default.
	Mailbox string `json:"mailbox"`
}

// Validate fills in defaults and checks s. Defaults: a security left empty
// is SecurityTLS for IMAP and SecurityStartTLS for SMTP; a port left 0 is
// the usual one for the security (IMAP 993 for tls, else 143; SMTP 465 for
// tls, else 587); Mailbox "INBOX"; Address the Username when that is a bare
// email address. Nothing is trimmed.
//
// When s is invalid, Validate returns a *helpdeskflow.Error with Code
// helpdeskflow.EValidation whose Details name every bad field by its JSON
// name: imap_host and smtp_host (required; a host name or IP address, no
// scheme, port, path or spaces), imap_port and smtp_port (1 to 65535),
// imap_security and smtp_security (tls, starttls or none), username and
// password (required, no line breaks), address (a bare email address;
// required when the username is not one) and mailbox (no control
// characters, at most 1000 bytes). The defaults are filled in even then.
func (s *Settings) Validate() error {
	var problems []helpdeskflow.FieldProblem
	bad := func(field, problem string) {
		problems = append(problems, helpdeskflow.FieldProblem{Field: field, Problem: problem})
	}

	if s.IMAPSecurity == "" {
		s.IMAPSecurity = SecurityTLS
	}
	if s.SMTPSecurity == "" {
		s.SMTPSecurity = SecurityStartTLS
	}
	if s.IMAPPort == 0 {
		s.IMAPPort = DefaultIMAPPort
		if s.IMAPSecurity == SecurityTLS {
			s.IMAPPort = DefaultIMAPPortTLS
		}
	}
	if s.SMTPPort == 0 {
		s.SMTPPort = DefaultSMTPPort
		if s.SMTPSecurity == SecurityTLS {
			s.SMTPPort = DefaultSMTPPortTLS
		}
	}
	if s.Mailbox == "" {
		s.Mailbox = DefaultMailbox
	}
	if s.Address == "" && isBareAddress(s.Username) {
		s.Address = s.Username
	}

	for _, h := range []struct{ field, host string }{{"imap_host", s.IMAPHost}, {"smtp_host", s.SMTPHost}} {
		if p := hostProblem(h.host); p != "" {
			bad(h.field, p)
		}
	}
	for _, p := range []struct {
		field string
		port  int
	}{{"imap_port", s.IMAPPort}, {"smtp_port", s.SMTPPort}} {
		if p.port < 1 || p.port > 65535 {
			bad(p.field, "must be between 1 and 65535")
		}
	}
	for _, sec := range []struct{ field, security string }{{"imap_security", s.IMAPSecurity}, {"smtp_security", s.SMTPSecurity}} {
		switch sec.security {
		case SecurityTLS, SecurityStartTLS, SecurityNone:
		default:
			bad(sec.field, "must be tls, starttls or none")
		}
	}
	switch {
	case s.Username == "":
		bad("username", "required")
	case strings.ContainsAny(s.Username, "\r\n\x00"):
		bad("username", "must not contain line breaks")
	case !utf8.ValidString(s.Username):
		bad("username", "must be valid UTF-8")
	}
	switch {
	case s.Password == "":
		bad("password", "required")
	case strings.ContainsAny(s.Password, "\r\n\x00"):
		bad("password", "must not contain line breaks")
	}
	switch {
	case s.Address == "":
		bad("address", "required: the username is not an email address")
	case !isBareAddress(s.Address):
		bad("address", "must be a bare email address such as support@example.com")
	}
	switch {
	case len(s.Mailbox) > 1000:
		bad("mailbox", "must be at most 1000 bytes")
	case !utf8.ValidString(s.Mailbox) || strings.IndexFunc(s.Mailbox, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		bad("mailbox", "must not contain control characters")
	}

	if len(problems) > 0 {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid mail server settings", Details: problems}
	}
	return nil
}

// hostProblem says what is wrong with a host setting, "" if nothing.
func hostProblem(h string) string {
	switch {
	case h == "":
		return "required"
	case strings.Contains(h, "://"):
		return "must be a host name without a scheme (no imaps:// or https://)"
	case strings.ContainsAny(h, " \t\r\n"):
		return "must not contain spaces"
	}
	if ip := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"); net.ParseIP(ip) != nil {
		return ""
	}
	if strings.ContainsAny(h, ":/") {
		return "must be a host name or IP address alone (the port is a separate field)"
	}
	if len(h) > 253 {
		return "must be at most 253 characters"
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "must be a valid host name such as mail.example.com"
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "must be a valid host name such as mail.example.com"
			}
		}
	}
	return ""
}

// isBareAddress reports whether s is an email address alone: no display
// name, no angle brackets, no spaces.
func isBareAddress(s string) bool {
	if s == "" || strings.ContainsAny(s, " <>\r\n\t") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s, "@")
}

// hostIP strips the brackets of an IPv6 literal host.
func hostIP(h string) string {
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}
