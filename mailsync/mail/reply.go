package mail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/helpdeskflow/helpdeskflow"
)

// ThreadKey returns the keys that tie m to an existing ticket, most
// specific first: the provider thread id, then the Message-Id in
// In-Reply-To, then those in References from the newest to the oldest.
// Empty values and repeats are left out. The sync looks the keys up in
// order and takes the first ticket found; it registers m.ThreadID and
// m.MessageID for the ticket a message creates or joins. Thread ids are
// per mailbox, so keys must be scoped to the connected mailbox. Gmail
// thread ids are hex and Message-Ids contain '@', so the two kinds do not
// collide.
func ThreadKey(m Message) []string {
	var keys []string
	add := func(k string) {
		if k = strings.TrimSpace(k); k != "" {
			keys = appendUnique(keys, k)
		}
	}
	add(m.ThreadID)
	add(m.InReplyTo)
	for i := len(m.References) - 1; i >= 0; i-- {
		add(m.References[i])
	}
	return keys
}

// NewMessageID returns a new, globally unique Message-Id (without angle
// brackets) in domain: a random UUID, '@', and the domain lowercased and
// reduced to letters, digits, dots and hyphens ("helpdeskflow.invalid"
// when nothing is left).
func NewMessageID(domain string) string {
	d := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return -1
	}, strings.ToLower(domain))
	if d = strings.Trim(d, ".-"); d == "" {
		d = "helpdeskflow.invalid"
	}
	return uuid.NewString() + "@" + d
}

// maxReferences is the most Message-Ids BuildReply writes in References:
// the thread's first and the newest, as RFC 5322 3.6.4 allows trimming.
const maxReferences = 40

var replyPrefixRE = regexp.MustCompile(`(?i)^\s*(re|aw|sv|antw|vs|ynt|odp)(\[\d+\]|\(\d+\))?\s*:`)

// ReplySubject returns subject with "Re: " in front, unless it already
// starts with a reply prefix (Re:, RE:, AW:, SV:, Re[2]: and the like).
func ReplySubject(subject string) string {
	subject = strings.TrimSpace(subject)
	if replyPrefixRE.MatchString(subject) {
		return subject
	}
	if subject == "" {
		return "Re:"
	}
	return "Re: " + subject
}

// BuildReply writes an agent's reply as an RFC 5322 message with CRLF line
// ends: From, To, Subject (ReplySubject of subject), Date, Message-ID,
// In-Reply-To (inReplyTo, the original's Message-Id), References (the
// original's references followed by inReplyTo, trimmed to 40),
// MIME-Version, and a quoted-printable UTF-8 body: text/plain alone, or
// multipart/alternative with text/html when bodyHTML is given (a text part
// derived from the HTML when bodyText is empty). Non-ASCII names and
// subjects become RFC 2047 encoded-words; long headers are folded. Ids may
// be given with or without angle brackets; malformed references are left
// out. An empty messageID gets NewMessageID of from's domain; a zero date
// is time.Now(). Line breaks in names and the subject become spaces.
//
// It returns an EValidation error, with one detail per problem, when from
// or a recipient is not an email address, there is no recipient, both
// bodies are empty, or messageID is malformed.
//
// Gmail threads a message sent with a threadId only when its Subject
// matches the thread's; pass the ticket's original subject.
func BuildReply(from Address, to []Address, subject string, inReplyTo string, references []string, bodyText, bodyHTML string, messageID string, date time.Time) ([]byte, error) {
	var problems []helpdeskflow.FieldProblem
	bad := func(field, problem string) {
		problems = append(problems, helpdeskflow.FieldProblem{Field: field, Problem: problem})
	}
	if !validEmail(from.Email) {
		bad("from", fmt.Sprintf("%q is not an email address", from.Email))
	}
	if len(to) == 0 {
		bad("to", "at least one recipient is required")
	}
	for i, a := range to {
		if !validEmail(a.Email) {
			bad(fmt.Sprintf("to[%d]", i), fmt.Sprintf("%q is not an email address", a.Email))
		}
	}
	if strings.TrimSpace(bodyText) == "" && strings.TrimSpace(bodyHTML) == "" {
		bad("body", "the text or the HTML body is required")
	}
	messageID = strings.Trim(strings.TrimSpace(messageID), "<>")
	if messageID == "" {
		_, domain, _ := strings.Cut(strings.TrimSpace(from.Email), "@")
		messageID = NewMessageID(domain)
	} else if !validID(messageID) {
		bad("message_id", fmt.Sprintf("%q is not a Message-Id", messageID))
	}
	if len(problems) > 0 {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the reply cannot be written", Details: problems}
	}
	if date.IsZero() {
		date = time.Now()
	}

	var refs []string
	for _, r := range append(append([]string(nil), references...), inReplyTo) {
		if r = strings.Trim(strings.TrimSpace(r), "<>"); validID(r) {
			// A repeated id moves to its latest place.
			refs = remove(refs, r)
			refs = append(refs, r)
		}
	}
	if len(refs) > maxReferences {
		refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
	}
	inReplyTo = strings.Trim(strings.TrimSpace(inReplyTo), "<>")

	var b bytes.Buffer
	writeHeader(&b, "From", []string{formatAddress(from)})
	toTokens := make([]string, len(to))
	for i, a := range to {
		toTokens[i] = formatAddress(a)
		if i < len(to)-1 {
			toTokens[i] += ","
		}
	}
	writeHeader(&b, "To", toTokens)
	writeHeader(&b, "Subject", strings.Split(encodeText(ReplySubject(oneLine(subject))), " "))
	writeHeader(&b, "Date", []string{date.Format(time.RFC1123Z)})
	writeHeader(&b, "Message-ID", []string{"<" + messageID + ">"})
	if validID(inReplyTo) {
		writeHeader(&b, "In-Reply-To", []string{"<" + inReplyTo + ">"})
	}
	if len(refs) > 0 {
		tokens := make([]string, len(refs))
		for i, r := range refs {
			tokens[i] = "<" + r + ">"
		}
		writeHeader(&b, "References", tokens)
	}
	writeHeader(&b, "MIME-Version", []string{"1.0"})

	if bodyText == "" {
		bodyText = htmlToText(bodyHTML)
	}
	if bodyHTML == "" {
		writeHeader(&b, "Content-Type", []string{"text/plain;", "charset=utf-8"})
		writeHeader(&b, "Content-Transfer-Encoding", []string{"quoted-printable"})
		b.WriteString("\r\n")
		if err := writeQP(&b, bodyText); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	writeHeader(&b, "Content-Type", []string{"multipart/alternative;", `boundary="` + mw.Boundary() + `"`})
	b.WriteString("\r\n")
	for _, part := range []struct{ ct, text string }{{"text/plain; charset=utf-8", bodyText}, {"text/html; charset=utf-8", bodyHTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ct},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, part.text); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// validEmail is a header-safe check, not full RFC 5321 validation: one
// '@' with text on both sides and no spaces, controls or brackets.
func validEmail(e string) bool {
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return false
	}
	return !strings.ContainsAny(e, " \t\r\n<>,;:\"()[]\\")
}

// validID reports whether s can be written as <s> in a header.
func validID(s string) bool {
	if s == "" || len(s) > 250 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// oneLine replaces control characters (line breaks included) with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// encodeText returns s as is when it is printable ASCII, otherwise as
// UTF-8 Q encoded-words (split into words short enough to fold).
func encodeText(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	// An ASCII text that looks like an encoded-word must not be read as
	// one; mime's encoder leaves ASCII alone, so encode it by hand.
	if strings.Contains(s, "=?") {
		var words []string
		for len(s) > 0 {
			n := min(len(s), 45)
			words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
			s = s[n:]
		}
		return strings.Join(words, " ")
	}
	return s
}

// formatAddress writes a mailbox, quoting or encoding the name as needed.
func formatAddress(a Address) string {
	return (&netmail.Address{Name: oneLine(strings.TrimSpace(a.Name)), Address: strings.TrimSpace(a.Email)}).String()
}

// writeHeader writes "Name: tokens…" folded before a token whenever a line
// would pass 78 characters.
func writeHeader(b *bytes.Buffer, name string, tokens []string) {
	b.WriteString(name)
	b.WriteString(":")
	lineLen := len(name) + 1
	for _, t := range tokens {
		if lineLen+1+len(t) > 78 && lineLen > 1 && t != "" {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteString(" ")
		b.WriteString(t)
		lineLen += 1 + len(t)
	}
	b.WriteString("\r\n")
}

// writeQP writes text quoted-printable with CRLF line ends.
func writeQP(w interface{ Write([]byte) (int, error) }, text string) error {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	qw := quotedprintable.NewWriter(w)
	if _, err := qw.Write([]byte(text)); err != nil {
		return err
	}
	return qw.Close()
}

var (
	blockEndRE  = regexp.MustCompile(`(?i)<br\s*/?>|</(p|div|li|tr|h[1-6]|blockquote|pre|table)\s*>`)
	listItemRE  = regexp.MustCompile(`(?i)<li\b[^>]*>`)
	blankLinesR = regexp.MustCompile(`\n{3,}`)
)

// htmlToText renders HTML as plain text, roughly: line breaks for <br>
// and block ends, "- " for list items, tags dropped, entities decoded.
func htmlToText(s string) string {
	s = scriptStyleRE.ReplaceAllString(s, "")
	s = blockEndRE.ReplaceAllString(s, "\n")
	s = listItemRE.ReplaceAllString(s, "- ")
	s = tagRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(html.UnescapeString(s), "\u00a0", " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(blankLinesR.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}

// TextToHTML renders plain text as HTML: escaped, a paragraph per blank-
// line-separated block, line breaks kept as <br>. Empty text is "".
func TextToHTML(text string) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return ""
	}
	var b strings.Builder
	for i, para := range strings.Split(text, "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(strings.Trim(para, "\n")), "\n", "<br>\n"))
		b.WriteString("</p>")
	}
	return b.String()
}
