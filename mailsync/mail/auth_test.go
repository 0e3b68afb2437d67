package mail_test

import (
	"testing"

	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

func TestDMARCResult(t *testing.T) {
	for _, tc := range []struct{ name, header, want string }{
		{"gmail pass", "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=s1 header.b=abc;\r\n" +
			"       spf=pass (google.com: domain of ann@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=ann@example.com;\r\n" +
			"       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com", "pass"},
		{"gmail fail", "mx.google.com; spf=softfail smtp.mailfrom=ann@example.com; dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=example.com", "fail"},
		{"microsoft 365, no service id", "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=none (message not signed) " +
			"header.d=none;dmarc=fail action=none header.from=example.com;compauth=fail reason=001", "fail"},
		{"opendmarc", "mail.acme.test; dmarc=none (p=none dis=none) header.from=example.org", "none"},
		{"upper case and spaces around =", "mx.example; DMARC = FAIL header.from=example.com", "fail"},
		{"with a method version", "mx.example 1; dmarc/1=pass header.from=example.com", "pass"},
		{"temporary error", "mx.example; dmarc=temperror header.from=example.com", "temperror"},
		{"in a comment only", "mx.example; spf=pass (the old dmarc=fail; ignore) smtp.mailfrom=a@example.com", ""},
		{"in a quoted string only", `mx.example; x-note="; dmarc=fail" ; spf=pass smtp.mailfrom=a@example.com`, ""},
		{"nested comments", "mx.example; spf=pass (a (b; dmarc=fail) c) smtp.mailfrom=x@example.com; dmarc=pass header.from=example.com", "pass"},
		{"no result", "mx.example; none", ""},
		{"empty", "", ""},
		{"dmarc as a property, not a method", "mx.example; arc=pass header.dmarc=fail", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mail.DMARCResult(tc.header); got != tc.want {
				t.Errorf("DMARCResult(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

// Parse reads the topmost Authentication-Results header only: the one the
// receiving server added last. Lower ones (another hop, or the sender)
// do not count.
func TestParse_DMARCFromTheTopmostHeader(t *testing.T) {
	for _, tc := range []struct{ name, headers, want string }{
		{"receiving server says fail", "Authentication-Results: mx.google.com; dmarc=fail header.from=example.com\n" +
			"Authentication-Results: relay.example; dmarc=pass header.from=example.com\n", "fail"},
		{"a lower header says fail", "Authentication-Results: mx.google.com; dmarc=pass header.from=example.com\n" +
			"Authentication-Results: forged.example; dmarc=fail header.from=example.com\n", "pass"},
		{"top header without dmarc", "Authentication-Results: mx.example; spf=pass smtp.mailfrom=ann@example.com\n" +
			"Authentication-Results: relay.example; dmarc=fail header.from=example.com\n", ""},
		{"no header", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mail.Parse(crlf("From: ann@example.com\nTo: support@acme.example\nSubject: Hi\n" + tc.headers +
				"Content-Type: text/plain\n\nHello\n"))
			if err != nil {
				t.Fatal(err)
			}
			if m.DMARC != tc.want {
				t.Errorf("DMARC = %q, want %q", m.DMARC, tc.want)
			}
		})
	}
}
