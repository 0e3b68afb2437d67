package mail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/helpdeskflow/helpdeskflow"
)

// maxDepth bounds the nesting of multiparts; deeper parts are attachments.
const maxDepth = 20

// Parse parses a raw RFC 5322 message with MIME bodies. It returns an
// EPayloadTooLarge error wrapping ErrTooLarge for more than MaxSize bytes,
// and an EValidation error when the header cannot be read at all. Any
// other problem (a broken multipart, an unknown charset or transfer
// encoding, an unreadable date or address) is worked around and noted in
// Message.Warnings. ID and ThreadID are left for the caller to set.
func Parse(raw []byte) (Message, error) {
	if len(raw) > MaxSize {
		return Message{}, &helpdeskflow.Error{Code: helpdeskflow.EPayloadTooLarge,
			Message: fmt.Sprintf("email of %d bytes is over the 25 MiB limit", len(raw)), Err: ErrTooLarge}
	}
	nm, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "email header is unreadable", Err: err}
	}
	p := &parser{}
	p.dec = &mime.WordDecoder{CharsetReader: charsetReader(p.warn)}
	h := nm.Header
	m := &p.msg

	m.Subject = p.header(h.Get("Subject"))
	m.MessageID = firstID(h.Get("Message-Id"))
	m.InReplyTo = firstID(h.Get("In-Reply-To"))
	m.References = allIDs(h.Get("References"))
	if froms := p.addresses("From", h.Get("From")); len(froms) > 0 {
		m.From = froms[0]
	}
	m.ReplyTo = p.addresses("Reply-To", h.Get("Reply-To"))
	m.To = p.addresses("To", strings.Join(h["To"], ", "))
	m.Cc = p.addresses("Cc", strings.Join(h["Cc"], ", "))
	m.Date = p.date(h)

	if ar := h["Authentication-Results"]; len(ar) > 0 {
		m.DMARC = DMARCResult(ar[0])
	}

	mediaType, _ := p.contentType(h.Get("Content-Type"))
	m.AutoSubmitted = autoSubmitted(h, m.From, mediaType)

	p.walk(textproto.MIMEHeader(h), nm.Body, 0, false)
	return *m, nil
}

// parser holds the message being built and the warnings found.
type parser struct {
	msg Message
	dec *mime.WordDecoder
}

// maxWarnings bounds Message.Warnings.
const maxWarnings = 20

func (p *parser) warn(s string) {
	if len(p.msg.Warnings) >= maxWarnings {
		return
	}
	for _, w := range p.msg.Warnings {
		if w == s {
			return
		}
	}
	p.msg.Warnings = append(p.msg.Warnings, s)
}

// latin1WordRE finds encoded-words labelled ISO-8859-1, which
// mime.WordDecoder would decode itself as strict Latin-1; they are
// relabelled so that charsetReader decodes them as Windows-1252.
var latin1WordRE = regexp.MustCompile(`(?i)=\?iso-8859-1([?*])`)

// header decodes an unstructured header value: raw 8-bit bytes (UTF-8, or
// cp1252 when not valid UTF-8) and RFC 2047 encoded-words.
func (p *parser) header(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if !utf8.ValidString(v) {
		v = decodeCP1252([]byte(v))
	}
	v = latin1WordRE.ReplaceAllString(v, "=?windows-1252$1")
	s, err := p.dec.DecodeHeader(v)
	if err != nil {
		p.warn(fmt.Sprintf("header %q: %v; kept undecoded", v, err))
		return v
	}
	return strings.TrimSpace(s)
}

// addresses parses an address list, falling back, address by address, to a
// lenient reading for the malformed ones real mailers send.
func (p *parser) addresses(name, v string) []Address {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if !utf8.ValidString(v) {
		v = decodeCP1252([]byte(v))
	}
	v = latin1WordRE.ReplaceAllString(v, "=?windows-1252$1")
	ap := netmail.AddressParser{WordDecoder: p.dec}
	if list, err := ap.ParseList(v); err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, Address{Name: strings.TrimSpace(a.Name), Email: normEmail(a.Address)})
		}
		return out
	}
	var out []Address
	for _, part := range splitAddresses(v) {
		if a, err := ap.Parse(part); err == nil {
			out = append(out, Address{Name: strings.TrimSpace(a.Name), Email: normEmail(a.Address)})
			continue
		}
		if a, ok := p.lenientAddress(part); ok {
			out = append(out, a)
		}
	}
	p.warn(fmt.Sprintf("header %s is not a valid address list; read leniently", name))
	return out
}

// splitAddresses splits an address list at commas outside quotes and
// angle brackets.
func splitAddresses(v string) []string {
	var out []string
	quoted, angle, start := false, 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			angle++
		case c == '>' && !quoted && angle > 0:
			angle--
		case c == ',' && !quoted && angle == 0:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	out = append(out, v[start:])
	return out
}

// lenientAddress reads `Name <email>` or a bare email out of a malformed
// address.
func (p *parser) lenientAddress(s string) (Address, bool) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "<"); i >= 0 {
		if j := strings.Index(s[i:], ">"); j > 0 {
			email := normEmail(s[i+1 : i+j])
			if strings.Contains(email, "@") {
				name := strings.Trim(strings.TrimSpace(s[:i]), `"' `)
				return Address{Name: p.header(name), Email: email}, true
			}
		}
	}
	for _, f := range strings.Fields(s) {
		f = strings.Trim(f, `<>()[],;:"'`)
		if strings.Contains(f, "@") {
			return Address{Email: normEmail(f)}, true
		}
	}
	return Address{}, false
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

var idRE = regexp.MustCompile(`<([^<>\s]+)>`)

// allIDs returns the Message-Ids in a References-like header, without
// brackets; ids written without brackets are taken word by word.
func allIDs(v string) []string {
	var out []string
	if ms := idRE.FindAllStringSubmatch(v, -1); len(ms) > 0 {
		for _, m := range ms {
			out = appendUnique(out, m[1])
		}
		return out
	}
	for _, f := range strings.Fields(v) {
		if f = strings.Trim(f, "<>,;"); strings.Contains(f, "@") {
			out = appendUnique(out, f)
		}
	}
	return out
}

// firstID returns the first Message-Id of a header, without brackets.
func firstID(v string) string {
	if ids := allIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return strings.Trim(strings.TrimSpace(v), "<>")
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// dateLayouts are the forms of broken Date headers seen in the wild that
// net/mail refuses.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700 (MST)",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon, 2 Jan 06 15:04:05 -0700",
	time.RFC3339,
}

func parseDate(v string) (time.Time, bool) {
	v = strings.Join(strings.Fields(v), " ")
	if v == "" {
		return time.Time{}, false
	}
	if t, err := netmail.ParseDate(v); err == nil {
		return t, true
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// date reads the Date header, falling back to the newest Received header.
func (p *parser) date(h netmail.Header) time.Time {
	if v := h.Get("Date"); v != "" {
		if t, ok := parseDate(v); ok {
			return t
		}
		p.warn(fmt.Sprintf("unreadable Date %q", v))
	}
	for _, r := range h["Received"] {
		if i := strings.LastIndex(r, ";"); i >= 0 {
			if t, ok := parseDate(r[i+1:]); ok {
				return t
			}
		}
	}
	return time.Time{}
}

// contentType returns the lowercased media type and parameters, text/plain
// when absent and, for a malformed header, whatever precedes the ';'.
func (p *parser) contentType(v string) (string, map[string]string) {
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		before, _, _ := strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(before))
		if params == nil {
			params = map[string]string{}
		}
		if !strings.Contains(mt, "/") {
			mt = "application/octet-stream"
		}
		// A malformed parameter list loses the boundary and charset that
		// mime refused; recover them by hand.
		for k, re := range paramREs {
			if _, ok := params[k]; !ok {
				if m := re.FindStringSubmatch(v); m != nil {
					params[k] = m[2] + m[3]
				}
			}
		}
	}
	return mt, params
}

// paramREs read the parameters that matter out of a Content-Type that
// mime.ParseMediaType refuses.
var paramREs = map[string]*regexp.Regexp{
	"boundary": regexp.MustCompile(`(?i)\bboundary\s*=\s*("([^"]*)"|([^;\s]+))`),
	"charset":  regexp.MustCompile(`(?i)\bcharset\s*=\s*("([^"]*)"|([^;\s]+))`),
	"name":     regexp.MustCompile(`(?i)\bname\s*=\s*("([^"]*)"|([^;\s]+))`),
}

// walk visits a MIME entity: multiparts part by part, leaves as bodies or
// attachments.
func (p *parser) walk(h textproto.MIMEHeader, body io.Reader, depth int, inAlternative bool) {
	mt, params := p.contentType(h.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") && depth < maxDepth {
		if b := params["boundary"]; b != "" {
			mr := multipart.NewReader(body, b)
			for n := 0; ; n++ {
				part, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					if n == 0 {
						p.warn(fmt.Sprintf("%s without readable parts: %v", mt, err))
					} else {
						p.warn(fmt.Sprintf("%s ends early: %v", mt, err))
					}
					return
				}
				p.walk(part.Header, part, depth+1, mt == "multipart/alternative")
			}
		}
		p.warn(mt + " without a boundary; read as text")
		mt = "text/plain"
	}
	data, err := io.ReadAll(body)
	if err != nil {
		p.warn(fmt.Sprintf("part %s is truncated: %v", mt, err))
	}
	data = p.decodeTransfer(h.Get("Content-Transfer-Encoding"), data)

	disposition, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	filename = p.header(filename)
	isText := mt == "text/plain" || mt == "text/html"
	if disposition == "attachment" || filename != "" || !isText {
		p.msg.Attachments = append(p.msg.Attachments, Attachment{Filename: filename, ContentType: mt, Size: len(data)})
		return
	}

	label := params["charset"]
	if label == "" && mt == "text/html" {
		if m := metaCharsetRE.FindSubmatch(data[:min(len(data), 2048)]); m != nil {
			label = string(m[1])
		}
	}
	text, known := decodeCharset(label, data)
	if !known {
		p.warn(fmt.Sprintf("unsupported charset %q in a %s part: decoded best-effort, non-ASCII replaced with U+FFFD", label, mt))
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	target := &p.msg.TextBody
	if mt == "text/html" {
		target = &p.msg.HTMLBody
	}
	switch {
	case *target == "":
		*target = text
	case !inAlternative:
		if !strings.HasSuffix(*target, "\n") {
			*target += "\n"
		}
		*target += text
	}
}

var metaCharsetRE = regexp.MustCompile(`(?i)<meta[^>]+charset\s*=\s*["']?([a-z0-9_.:\-]+)`)

// decodeTransfer undoes a Content-Transfer-Encoding, leniently.
func (p *parser) decodeTransfer(cte string, data []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return decodeBase64(data)
	case "quoted-printable":
		return decodeQP(data)
	case "", "7bit", "8bit", "binary":
		return data
	default:
		p.warn(fmt.Sprintf("unknown Content-Transfer-Encoding %q; kept as is", cte))
		return data
	}
}

// decodeBase64 decodes base64 ignoring line breaks, stray characters and
// missing padding; a broken tail is dropped.
func decodeBase64(data []byte) []byte {
	clean := make([]byte, 0, len(data))
	for _, c := range data {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// decodeQP decodes quoted-printable, keeping an '=' that starts no valid
// escape as a literal (as most mail readers do) and dropping the trailing
// whitespace of lines (RFC 2045 6.7).
func decodeQP(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		line := data
		rest := []byte(nil)
		eol := []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest = data[:i], data[i+1:]
			eol = []byte("\n")
			if bytes.HasSuffix(line, []byte("\r")) {
				line = line[:len(line)-1]
				eol = []byte("\r\n")
			}
		}
		line = bytes.TrimRight(line, " \t")
		soft := bytes.HasSuffix(line, []byte("="))
		if soft {
			line = line[:len(line)-1]
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
				out = append(out, unhex(line[i+1])<<4|unhex(line[i+2]))
				i += 2
				continue
			}
			out = append(out, c)
		}
		if !soft {
			out = append(out, eol...)
		}
		data = rest
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// autoSubmitted reports whether the message was sent by a machine; see
// Message.AutoSubmitted.
func autoSubmitted(h netmail.Header, from Address, mediaType string) bool {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" {
		// "no", possibly followed by a comment, is the only human value.
		if kw := strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '(' || r == ' ' || r == '\t' }); len(kw) == 0 || kw[0] != "no" {
			return true
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list", "auto_reply":
		return true
	}
	if h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" {
		return true
	}
	if local, _, ok := strings.Cut(from.Email, "@"); ok && (local == "mailer-daemon" || local == "postmaster") {
		return true
	}
	if rp := h["Return-Path"]; len(rp) > 0 && strings.TrimSpace(rp[0]) == "<>" {
		return true
	}
	return mediaType == "multipart/report"
}
