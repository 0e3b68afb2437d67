package http_test

import (
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
)

// TestIntegrations_OutlookConnectOutboundPolicy: a mail server at an
// internal address is refused with 400 naming the field, before any
// connection; and what a server answers never comes back in the API's
// answer.
func TestIntegrations_OutlookConnectOutboundPolicy(t *testing.T) {
	h := newHarness(t)
	settings := func(imapHost, smtpHost string) map[string]any {
		return map[string]any{"imap_host": imapHost, "imap_security": "tls", "smtp_host": smtpHost, "smtp_security": "starttls",
			"username": "support@acme.test", "password": "app-password"}
	}
	for _, tc := range []struct {
		imap, smtp, field, reason string
	}{
		{"10.0.0.1", "smtp.office365.com", "imap_host", "10.0.0.1 is a private address"},
		{"192.168.1.1", "smtp.office365.com", "imap_host", "private"},
		{"outlook.office365.com", "169.254.169.254", "smtp_host", "link-local"},
		{"[fd00::25]", "smtp.office365.com", "imap_host", "unique local"},
	} {
		r := h.do("POST", "/v1/integrations/outlook/connect", h.adminKey, settings(tc.imap, tc.smtp))
		h.want(r, 400, "validation_failed")
		if !strings.Contains(r.raw, `"field":"`+tc.field+`"`) || !strings.Contains(r.raw, tc.reason) || !strings.Contains(r.raw, "blocked_address") {
			t.Errorf("%s / %s: %s", tc.imap, tc.smtp, r.raw)
		}
	}

	// A server that names itself and its reasons: the answer says only
	// what failed.
	const secret = "dc1-mail.corp.internal Banner-5e6f"
	host, port := imapmailtest.LineServer(t, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] "+secret+" ready", imapmailtest.IMAPRefusing(secret))
	smtpHost, smtpPort := imapmailtest.LineServer(t, "220 "+secret+" ESMTP", imapmailtest.SMTPRefusing(secret))
	body := settings(host, smtpHost)
	body["imap_port"], body["imap_security"] = port, imapmail.SecurityNone
	body["smtp_port"], body["smtp_security"] = smtpPort, imapmail.SecurityNone
	r := h.do("POST", "/v1/integrations/outlook/connect", h.adminKey, body)
	h.want(r, 400, "validation_failed")
	if !strings.Contains(r.raw, `"field":"password"`) || !strings.Contains(r.raw, "authentication failed") {
		t.Errorf("refused login: %s", r.raw)
	}
	if strings.Contains(r.raw, "Banner-5e6f") || strings.Contains(r.raw, "corp.internal") {
		t.Errorf("the answer repeats the server's words: %s", r.raw)
	}
}
