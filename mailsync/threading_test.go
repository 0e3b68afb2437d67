package mailsync_test

import (
	"fmt"
	"testing"
)

// Through the whole sync: a message in a customer's Gmail thread (same
// thread, In-Reply-To the customer's mail) joins the customer's ticket
// only when it comes from the customer and the receiving server (the
// topmost Authentication-Results) did not say DMARC failed; otherwise it
// is a ticket of its own.
func TestGmail_ThreadingChecksTheSender(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.gmail.Deliver(message("Ann <ann@example.com>", "Order 7", "o7@example.com", "", "Where is my order?"), "")
	f.syncOnce(w)

	const (
		pass       = "Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=example.com; dmarc=pass (p=REJECT) header.from=example.com"
		fail       = "Authentication-Results: mx.google.com; spf=fail smtp.mailfrom=example.com; dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=example.com"
		forgedFail = "Authentication-Results: relay.example; dmarc=fail header.from=example.com"
	)
	cases := []struct {
		subject, from, email string
		headers              []string
		joins                bool
	}{
		{"Re: Order 7 (no header)", "ann@example.com", "ann@example.com", nil, true},
		{"Re: Order 7 (dmarc pass)", "Ann <ann@example.com>", "ann@example.com", []string{pass}, true},
		{"Re: Order 7 (fail below the receiving server's pass)", "ann@example.com", "ann@example.com", []string{pass, forgedFail}, true},
		{"Re: Order 7 (dmarc fail)", "Ann <Ann@Example.com>", "ann@example.com", []string{fail}, false},
		{"Re: Order 7 (stranger)", "Mallory <mallory@evil.example>", "mallory@evil.example", []string{pass}, false},
	}
	for i, tc := range cases {
		f.gmail.Deliver(message(tc.from, tc.subject, fmt.Sprintf("a%d@example.com", i), "o7@example.com", "About my order", tc.headers...), "")
	}
	f.syncOnce(w)
	got := f.tickets()
	order := got["Order 7"]
	if len(order) != 1 {
		t.Fatalf("tickets: %v", keys(got))
	}
	joined := 0
	for _, tc := range cases {
		if tc.joins {
			joined++
			if len(got[tc.subject]) != 0 {
				t.Errorf("%q made a ticket of its own", tc.subject)
			}
			continue
		}
		if own := got[tc.subject]; len(own) != 1 || own[0].Customer == nil || own[0].Customer.Email != tc.email {
			t.Errorf("%q: %d tickets of its own (want 1, of its sender)", tc.subject, len(own))
		}
	}
	if len(order[0].Messages) != 1+joined {
		t.Fatalf("the customer's ticket has %d messages, want %d", len(order[0].Messages), 1+joined)
	}
}
