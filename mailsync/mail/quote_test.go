package mail_test

import (
	"testing"

	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

func TestStripQuoted(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"NoQuote", "Just a question.\nThanks", "Just a question.\nThanks"},
		{"GmailTopPost", "Yes, please.\r\n\r\nOn Mon, Jan 1, 2024 at 6:02 PM Acme <support@acme.example> wrote:\r\n\r\n> Shall we refund?\r\n>\r\n", "Yes, please."},
		{"GmailWrappedAttribution", "Yes.\n\nOn Mon, Jan 1, 2024 at 6:02 PM Acme Support <\nsupport@acme.example> wrote:\n> Shall we?\n", "Yes."},
		{"FrenchAttribution", "Oui.\n\nLe lun. 1 janv. 2024 à 18:02, Acme <support@acme.example> a écrit :\n> Remboursement ?\n", "Oui."},
		{"Interleaved", "On Mon, Jan 1, 2024, Acme wrote:\n> Order number?\n1042\n> Address?\nSame as before\n", "1042\nSame as before"},
		{"OutlookOriginalMessage", "Paid already.\n\n-----Original Message-----\nFrom: Acme\nSent: Tuesday\nPlease pay.\n", "Paid already."},
		{"OutlookHeaderBlock", "Paid already.\n\n________________________________\nFrom: Acme Support <support@acme.example>\nSent: Tuesday, January 2, 2024 5:00 PM\nTo: José\nSubject: Invoice\n\nPlease pay.\n", "Paid already."},
		{"OutlookBoldHeaderBlock", "See below\n\n*From:* Acme\n*Sent:* Tuesday\n*To:* José\n*Subject:* Invoice\n\nPlease pay.", "See below"},
		{"AttributionWithoutMarkers", "Top reply\n\nOn Tue, Jan 2, 2024 at 9:00 AM Bob wrote:\nold text without markers\n", "Top reply"},
		{"OnlyQuotedKeepsAll", "> all of it\n> is quoted", "> all of it\n> is quoted"},
		{"FromLineInProse", "From: my experience, the box was damaged.\nPlease help.", "From: my experience, the box was damaged.\nPlease help."},
		{"AttributionFirstThenText", "On Mon, Jan 1 Ann wrote:\nnot quoted text", "On Mon, Jan 1 Ann wrote:\nnot quoted text"},
		{"ProseAttribution", "Hi,\nOn Monday I wrote:\nmy order is missing", "Hi,\nOn Monday I wrote:\nmy order is missing"},
		{"Empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mail.StripQuoted(tc.in); got != tc.want {
				t.Errorf("StripQuoted(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStripQuotedHTML(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"Gmail", `<div dir="ltr">New</div><div class="gmail_quote"><div class="gmail_attr">On … wrote:</div><blockquote class="gmail_quote"><div>old<div>older</div></div></blockquote></div>`, `<div dir="ltr">New</div>`},
		{"GmailSingleQuotes", `<p>New</p><DIV CLASS='gmail_quote'>old</DIV><p>sig</p>`, `<p>New</p><p>sig</p>`},
		{"Apple", `<div>Fine</div><div><br><blockquote type="cite">On 2 Jan wrote:<br><blockquote type="cite">x</blockquote></blockquote></div>`, `<div>Fine</div><div><br></div>`},
		{"Outlook", `<html><body><div>Paid.</div><div id="appendonsend"></div><hr style="display:inline-block"><div id="divRplyFwdMsg"><b>From:</b> Acme</div><div>Please pay</div></body></html>`, `<html><body><div>Paid.</div>`},
		{"Thunderbird", `<p>ok</p><div class="moz-cite-prefix">On 2 Jan wrote:<br></div><blockquote type="cite">old</blockquote>`, `<p>ok</p>`},
		{"CommentWithTag", `<p>a</p><!-- <div class="gmail_quote"> --><p>b</p>`, `<p>a</p><!-- <div class="gmail_quote"> --><p>b</p>`},
		{"OnlyQuoteKeepsAll", `<div class="gmail_quote">everything</div>`, `<div class="gmail_quote">everything</div>`},
		{"Unclosed", `<p>new</p><div class="gmail_quote"><div>old`, `<p>new</p>`},
		{"NoQuote", `<p>Hello &amp; bye</p>`, `<p>Hello &amp; bye</p>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mail.StripQuotedHTML(tc.in); got != tc.want {
				t.Errorf("StripQuotedHTML(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestThreadKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    mail.Message
		want []string
	}{
		{"All", mail.Message{ThreadID: "18cc0ffee", InReplyTo: "b@x", References: []string{"a@x", "b@x"}}, []string{"18cc0ffee", "b@x", "a@x"}},
		{"NoThread", mail.Message{References: []string{"a@x", "b@x", "c@x"}}, []string{"c@x", "b@x", "a@x"}},
		{"Nothing", mail.Message{MessageID: "own@x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) { eq(t, "ThreadKey", mail.ThreadKey(tc.m), tc.want) })
	}
}
