package mailsync

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"strings"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// Reasons an imported message makes nothing.
const (
	SkipAutoSubmitted = "auto_submitted"
	SkipOwnMessage    = "from_mailbox"
	SkipNoSender      = "no_sender"
	SkipUnreadable    = "unreadable"
	SkipInvalid       = "invalid"
	SkipTooLarge      = "too_large"
)

// noSubject stands for a missing subject.
const noSubject = "(no subject)"

// convert turns a parsed message of the mailbox with address into an
// import. externalID is the message's id in the mailbox. A message no
// person wrote, one the mailbox sent itself, or one without a sender is
// imported as skipped, with why; nothing else is refused: long fields are
// cut to the limits (with a note in the body) rather than lost.
func convert(connectionID uuid.UUID, externalID, address string, m mail.Message) tickets.ImportMail {
	in := tickets.ImportMail{
		ConnectionID: connectionID, ExternalID: externalID, ThreadID: m.ThreadID, MessageID: m.MessageID,
		ThreadKeys: mail.ThreadKey(m), DMARCFailed: m.DMARC == "fail",
	}
	switch {
	case m.From.Email == "":
		in.Skip = SkipNoSender
	case strings.EqualFold(m.From.Email, address):
		in.Skip = SkipOwnMessage
	case m.AutoSubmitted:
		in.Skip = SkipAutoSubmitted
	}
	// Cleaned here as the import will clean them, so that a subject of
	// nothing but markup becomes noSubject rather than an invalid import.
	in.From = tickets.CustomerRef{Email: m.From.Email, Name: helpdeskflow.CutUTF8(strings.TrimSpace(commands.CleanLine(m.From.Name)), commands.MaxNameLen)}
	in.Subject = helpdeskflow.CutUTF8(strings.TrimSpace(commands.CleanLine(m.Subject)), commands.MaxSubjectLen)
	if in.Subject == "" {
		in.Subject = noSubject
	}
	full, reply := bodies(m)
	in.Body, in.ReplyBody = fitBody(strings.ToValidUTF8(full, "\uFFFD")), fitBody(strings.ToValidUTF8(reply, "\uFFFD"))
	in.Subject, in.From.Name = strings.ToValidUTF8(in.Subject, "\uFFFD"), strings.ToValidUTF8(in.From.Name, "\uFFFD")
	return in
}

// bodies renders a message's body as HTML, whole and without the quoted
// history a reply carries, with a note listing its attachments (their
// content is not kept).
func bodies(m mail.Message) (full, reply string) {
	if strings.TrimSpace(m.HTMLBody) != "" {
		full, reply = m.HTMLBody, mail.StripQuotedHTML(m.HTMLBody)
	} else {
		full, reply = mail.TextToHTML(m.TextBody), mail.TextToHTML(mail.StripQuoted(m.TextBody))
	}
	if strings.TrimSpace(reply) == "" {
		reply = full
	}
	if note := attachmentNote(m.Attachments); note != "" {
		full += note
		reply += note
	}
	if strings.TrimSpace(full) == "" {
		full, reply = "<p>(empty message)</p>", "<p>(empty message)</p>"
	}
	return full, reply
}

func attachmentNote(list []mail.Attachment) string {
	var names []string
	for _, a := range list {
		name := strings.TrimSpace(commands.CleanLine(a.Filename))
		if name == "" {
			name = a.ContentType
		}
		names = append(names, fmt.Sprintf("%s (%s)", html.EscapeString(name), size(a.Size)))
	}
	if len(names) == 0 {
		return ""
	}
	return "<p><em>Attachments not imported: " + strings.Join(names, ", ") + "</em></p>"
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// truncatedNote ends a body cut to the limit.
const truncatedNote = "<p><em>(message truncated: it was longer than the help desk keeps)</em></p>"

// fitBody cuts an HTML body to the message body limit, at a rune
// boundary, with a note. The cut may leave an element open; the sanitizer
// closes it.
func fitBody(s string) string {
	if len(s) <= commands.MaxMessageBodyLen {
		return s
	}
	return helpdeskflow.CutUTF8(s, commands.MaxMessageBodyLen-len(truncatedNote)-1) + truncatedNote
}

// unreadable is the skip reason of a message mail.Parse refused: too
// large, or unreadable.
func unreadable(err error) string {
	if errors.Is(err, mail.ErrTooLarge) {
		return SkipTooLarge + ": " + err.Error()
	}
	return SkipUnreadable + ": " + err.Error()
}

// rfcExternalID is the id of a message in a mailbox without ids of its
// own (IMAP, whose UIDs change with UIDVALIDITY): its Message-Id, or a
// hash of the message when it has none.
func rfcExternalID(m mail.Message, raw []byte) string {
	if m.MessageID != "" {
		return "<" + m.MessageID + ">"
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}
