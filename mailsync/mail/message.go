package mail

import (
	"errors"
	"time"
)

// MaxSize is the largest raw message Parse accepts: 25 MiB, Gmail's own
// limit for a message.
const MaxSize = 25 << 20

// ErrTooLarge is the cause of the EPayloadTooLarge error Parse returns for a
// raw message over MaxSize; test for it with errors.Is.
var ErrTooLarge = errors.New("mail: message over 25 MiB")

// Address is a mailbox: a display name (decoded, may be empty) and an email
// address, trimmed and lowercased.
type Address struct {
	Name  string
	Email string
}

// Attachment describes one attachment of a message: its file name (decoded;
// "" when the message gives none), its media type (lowercased, without
// parameters, such as "application/pdf") and its decoded size in bytes. The
// content itself is not kept.
type Attachment struct {
	Filename    string
	ContentType string
	Size        int
}

// Message is a parsed email. Strings are UTF-8; absent headers are zero
// values.
type Message struct {
	// ID is the provider's id of the message (the Gmail message id). Parse
	// leaves it empty; the caller sets it.
	ID string
	// ThreadID is the provider's thread id (the Gmail thread id). Parse
	// leaves it empty; the caller sets it.
	ThreadID string
	// MessageID is the RFC 5322 Message-Id, without the angle brackets.
	MessageID string
	// InReplyTo is the first Message-Id in In-Reply-To, without brackets.
	InReplyTo string
	// References are the Message-Ids in References, oldest first, without
	// brackets.
	References []string
	// From is the sender. Its Email is empty when the message names none
	// that can be read.
	From Address
	// ReplyTo is the Reply-To header, which contact forms and some
	// mailers use to name the person behind a no-reply sender.
	ReplyTo []Address
	To, Cc  []Address
	Subject string
	// Date is the Date header; when it is missing or unreadable, the date
	// of the newest Received header; otherwise zero (use the provider's
	// receipt time, such as Gmail's internalDate).
	Date time.Time
	// TextBody is the text/plain body and HTMLBody the text/html body, each
	// decoded to UTF-8 with LF line ends. Inline text parts of a
	// multipart/mixed message after the first (a mailing list footer, text
	// around an inline image) are appended to the body of their type.
	// HTMLBody is not sanitized.
	TextBody string
	HTMLBody string
	// Attachments are the parts that are not the bodies, in order:
	// anything with Content-Disposition attachment or a file name, and any
	// part that is neither text/plain nor text/html (inline images,
	// message/rfc822 and so on).
	Attachments []Attachment
	// AutoSubmitted is true for messages no person wrote: an
	// Auto-Submitted header other than "no" (RFC 3834 auto-replies and
	// vacation notices), Precedence bulk, junk, list or auto_reply,
	// X-Autoreply or X-Autorespond, a sender whose local part is
	// mailer-daemon or postmaster, a null Return-Path (<>), or a
	// multipart/report body (delivery and read reports). A sync skips
	// them so that auto-replies and bounces make no tickets and no mail
	// loops. Note that Google Groups mark what they relay "Precedence:
	// list"; a support address that is a group needs its own rule.
	AutoSubmitted bool
	// DMARC is the DMARC result ("pass", "fail", "none", …; see
	// DMARCResult) of the topmost Authentication-Results header: the one
	// the receiving mailbox's own server added last (Gmail's
	// mx.google.com, Microsoft 365, a Postfix or Dovecot server's
	// OpenDMARC). "" when that header records no DMARC result, or there is
	// none. Headers further down were added by servers on the way, or by
	// the sender, and are not read. A sender may put a header of its own
	// on top when the receiving server adds none; only "fail" is acted on
	// (such mail never joins an existing ticket), so a forged header can
	// only hurt its sender.
	DMARC string
	// Warnings lists what Parse had to guess at (an unknown charset, a
	// broken MIME structure, an unreadable header), for logs. A message
	// with warnings is still usable.
	Warnings []string
}
