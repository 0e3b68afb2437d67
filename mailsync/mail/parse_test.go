package mail_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf turns a Go raw string into a message with CRLF line ends, as mail
// travels.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const latin1Subject = "From: =?ISO-8859-1?Q?Fran=E7ois_M=FCller?= <francois@exemple.fr>\n" +
	"To: support@acme.example\n" +
	"Subject: =?ISO-8859-1?Q?Probl=E8me_de_connexion_=E0_l'?= =?ISO-8859-1?B?ZXNwYWNlIGNsaWVudA==?=\n" +
	"Date: Thu, 4 Jan 2024 09:00:00 +0100\n" +
	"Message-Id: <1234.latin1@exemple.fr>\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain; charset=ISO-8859-1\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"Je n'arrive pas \xe0 me connecter depuis hier. Merci \x96 Fran\xe7ois\n"

const nestedWithAttachment = `From: "Grace Hopper" <grace@navy.example>
To: support@acme.example
Subject: Invoice attached
Date: Fri, 5 Jan 2024 12:00:00 -0500
Message-ID: <nested-1@navy.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a multi-part message in MIME format.

--outer
Content-Type: multipart/related; boundary="related"

--related
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

UGxlYXNlIGZpbmQgdGhlIGludm9pY2UgYXR0YWNoZWQuCgpHcmFjZQo=

--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<p>Please find the invoice attached.</p><img src="cid:logo@navy">

--alt--

--related
Content-Type: image/png; name="=?UTF-8?B?bG9nbyDinJMucG5n?="
Content-Transfer-Encoding: base64
Content-ID: <logo@navy>
Content-Disposition: inline

iVBORw0KGgo=

--related--

--outer
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfs
j6IKMSAwIG9iago8
PC9UeXBlL0NhdGFs
b2c+PgplbmRvYmoK

--outer
Content-Type: text/plain; charset=us-ascii
Content-Disposition: inline

--
Sent via the Navy list
--outer--
`

const autoReply = `From: Vacation Bot <ada@example.com>
To: support@acme.example
Subject: Automatic reply: Refund for order 1042
Date: Sat, 6 Jan 2024 08:00:00 +0000
Message-ID: <auto-1@example.com>
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday.
`

const bounce = `Return-Path: <>
From: Mail Delivery Subsystem <MAILER-DAEMON@googlemail.com>
To: support@acme.example
Subject: Delivery Status Notification (Failure)
Date: Sat, 6 Jan 2024 09:00:00 +0000
Message-ID: <bounce-1@mx.google.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="rep"

--rep
Content-Type: text/plain; charset=UTF-8

Address not found.
--rep
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
--rep
Content-Type: message/rfc822

From: support@acme.example
Subject: hello

hi
--rep--
`

const noDate = `Received: from mx.example.org by mx.acme.example; Sun, 7 Jan 2024 10:11:12 +0000
From: bob@example.org
To: support@acme.example
Subject: no date here

Hello?
`

const unknownCharset = "From: =?KOI8-R?B?6dfBzg==?= <ivan@example.ru>\n" +
	"To: support@acme.example\n" +
	"Subject: test\n" +
	"Date: Mon, 8 Jan 2024 10:00:00 +0300\n" +
	"Content-Type: text/plain; charset=koi8-r\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"Order 5: \xf0\xd2\xc9\xd7\xc5\xd4\n"

const brokenHeaders = `From: Someone <someone@example.com
To: undisclosed-recipients:;
Reply-To: "Form" <form-user@example.net>
Subject: =?utf-8?q?broken_but_fine?=
Date: yesterday
Content-Type: text/plain; charset="utf-8"; format=flowed; delsp
Content-Transfer-Encoding: quoted-printable

Price =3D 5 =E2=82=AC, and a stray =ZZ stays.
`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   []byte
		check func(t *testing.T, m mail.Message)
	}{
		{"GmailReply", readFile(t, "gmail_reply.eml"), func(t *testing.T, m mail.Message) {
			eq(t, "From", m.From, mail.Address{Name: "Ada Lovelace", Email: "ada.lovelace@example.com"})
			eq(t, "To", m.To, []mail.Address{{Name: "Acme Support", Email: "support@acme.example"}})
			eq(t, "Subject", m.Subject, "Re: Refund for order 1042")
			eq(t, "MessageID", m.MessageID, "CAJx=reply+2@mail.gmail.com")
			eq(t, "InReplyTo", m.InReplyTo, "20240101.ticket-1@acme.example")
			eq(t, "References", m.References, []string{"CAF=first@mail.gmail.com", "20240101.ticket-1@acme.example"})
			eq(t, "Date", m.Date.UTC(), time.Date(2024, 1, 2, 9, 15, 47, 0, time.UTC))
			eq(t, "StripQuoted", mail.StripQuoted(m.TextBody), "Thanks — the parcel number is 8812. Café order, sorry!")
			eq(t, "StripQuotedHTML", mail.StripQuotedHTML(m.HTMLBody), `<div dir="ltr">Thanks — the parcel number is 8812. Café order, sorry!</div><br>`+"\n")
			eq(t, "AutoSubmitted", m.AutoSubmitted, false)
			eq(t, "Warnings", len(m.Warnings), 0)
		}},
		{"OutlookReply", readFile(t, "outlook_reply.eml"), func(t *testing.T, m mail.Message) {
			eq(t, "From", m.From, mail.Address{Name: "José García", Email: "jose.garcia@contoso.example"})
			eq(t, "Cc", m.Cc, []mail.Address{{Name: "Boss", Email: "boss@contoso.example"}, {Name: "Doe, Jane", Email: "jane@contoso.example"}})
			eq(t, "Subject", m.Subject, "RE: Facture n° 1042 – déjà payée")
			eq(t, "StripQuoted", mail.StripQuoted(m.TextBody),
				"Bonjour,\n\nLa facture est déjà payée – voir le virement du 2 janvier € 120.\n\nCordialement,\nJosé")
			eq(t, "ThreadKey", mail.ThreadKey(m), []string{"20240102.ticket-9@acme.example"})
		}},
		{"Latin1Subject", []byte(latin1Subject), func(t *testing.T, m mail.Message) {
			eq(t, "From", m.From, mail.Address{Name: "François Müller", Email: "francois@exemple.fr"})
			eq(t, "Subject", m.Subject, "Problème de connexion à l'espace client")
			eq(t, "TextBody", m.TextBody, "Je n'arrive pas à me connecter depuis hier. Merci – François\n")
		}},
		{"NestedMultipartWithAttachment", crlf(nestedWithAttachment), func(t *testing.T, m mail.Message) {
			eq(t, "TextBody", m.TextBody, "Please find the invoice attached.\n\nGrace\n--\nSent via the Navy list")
			eq(t, "HTMLBody", m.HTMLBody, `<p>Please find the invoice attached.</p><img src="cid:logo@navy">`+"\n")
			eq(t, "Attachments", m.Attachments, []mail.Attachment{
				{Filename: "logo ✓.png", ContentType: "image/png", Size: 8},
				{Filename: "Rechnung März.pdf", ContentType: "application/pdf", Size: 48},
			})
		}},
		{"AutoReply", []byte(autoReply), func(t *testing.T, m mail.Message) {
			eq(t, "AutoSubmitted", m.AutoSubmitted, true)
		}},
		{"Bounce", crlf(bounce), func(t *testing.T, m mail.Message) {
			eq(t, "AutoSubmitted", m.AutoSubmitted, true)
			eq(t, "From", m.From.Email, "mailer-daemon@googlemail.com")
			eq(t, "TextBody", m.TextBody, "Address not found.")
			eq(t, "attachment types", []string{m.Attachments[0].ContentType, m.Attachments[1].ContentType},
				[]string{"message/delivery-status", "message/rfc822"})
		}},
		{"MissingDate", []byte(noDate), func(t *testing.T, m mail.Message) {
			eq(t, "Date", m.Date.UTC(), time.Date(2024, 1, 7, 10, 11, 12, 0, time.UTC))
			eq(t, "From", m.From, mail.Address{Email: "bob@example.org"})
			eq(t, "TextBody", m.TextBody, "Hello?\n")
			eq(t, "MessageID", m.MessageID, "")
		}},
		{"UnknownCharset", []byte(unknownCharset), func(t *testing.T, m mail.Message) {
			eq(t, "From", m.From, mail.Address{Name: "\uFFFD\uFFFD\uFFFD\uFFFD", Email: "ivan@example.ru"})
			eq(t, "TextBody", m.TextBody, "Order 5: \uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\n")
			eq(t, "Warnings", len(m.Warnings), 2)
			if !strings.Contains(strings.Join(m.Warnings, "|"), `"koi8-r"`) {
				t.Errorf("Warnings = %q, want a mention of koi8-r", m.Warnings)
			}
		}},
		{"BrokenHeaders", []byte(brokenHeaders), func(t *testing.T, m mail.Message) {
			eq(t, "From", m.From, mail.Address{Email: "someone@example.com"})
			eq(t, "ReplyTo", m.ReplyTo, []mail.Address{{Name: "Form", Email: "form-user@example.net"}})
			eq(t, "Subject", m.Subject, "broken but fine")
			eq(t, "Date", m.Date, time.Time{})
			eq(t, "TextBody", m.TextBody, "Price = 5 €, and a stray =ZZ stays.\n")
			if len(m.Warnings) == 0 {
				t.Error("no warnings for a broken From and Date")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mail.Parse(tc.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, m)
		})
	}
}

func TestParse_ErrTooLarge(t *testing.T) {
	raw := append([]byte("From: a@b.example\r\nSubject: big\r\n\r\n"), make([]byte, mail.MaxSize)...)
	_, err := mail.Parse(raw)
	if !errors.Is(err, mail.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EPayloadTooLarge; got != want {
		t.Errorf("code = %q, want %q", got, want)
	}
}

func TestParse_Unreadable(t *testing.T) {
	_, err := mail.Parse([]byte("this is not\x00 a header\r\n\r\n"))
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Errorf("code = %q (%v), want %q", got, err, want)
	}
}

func TestParse_AutoSubmittedNo(t *testing.T) {
	m, err := mail.Parse([]byte("From: a@b.example\nAuto-Submitted: no\nPrecedence: first-class\n\nhi\n"))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "AutoSubmitted", m.AutoSubmitted, false)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{latin1Subject, nestedWithAttachment, autoReply, bounce, noDate, unknownCharset, brokenHeaders} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := mail.Parse(raw)
		if err != nil {
			return
		}
		_ = mail.StripQuoted(m.TextBody)
		_ = mail.StripQuotedHTML(m.HTMLBody)
	})
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}
