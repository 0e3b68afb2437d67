package mail

import (
	"html"
	"regexp"
	"strings"
)

var (
	// attributionStartRE and attributionEndRE recognise the line a mail
	// client writes above a quote ("On Tue, 2 Jan 2024 at 09:15, Ada
	// <ada@example.com> wrote:"), in a few languages.
	attributionStartRE = regexp.MustCompile(`(?i)^\s*(on|le|am|el|il|em|op|den|på)\s`)
	attributionEndRE   = regexp.MustCompile(`(?i)(wrote|a écrit|schrieb|escribió|ha scritto|scritto|escreveu|schreef|skrev)\s*:\s*$`)
	// originalMessageRE is Outlook's separator, in a few languages.
	originalMessageRE = regexp.MustCompile(`(?i)^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht)\s*-{2,}\s*$`)
	// underlineRE is Outlook's rule above the quoted header block.
	underlineRE = regexp.MustCompile(`^\s*_{10,}\s*$`)
	// outlookFromRE and outlookFieldRE recognise the quoted header block
	// Outlook writes ("From: …", "Sent: …", "To: …", "Subject: …").
	outlookFromRE  = regexp.MustCompile(`(?i)^\s*\*?(from|von|de|van|da):\*?\s`)
	outlookFieldRE = regexp.MustCompile(`(?i)^\s*\*?(sent|date|gesendet|datum|envoyé|enviado|inviato|verzonden|to|an|à|para|a|aan|subject|betreff|objet|asunto|oggetto|onderwerp|cc):\*?\s`)
)

// StripQuoted returns the new part of a plain-text reply: it cuts at
// Outlook's "-----Original Message-----" or quoted header block, drops the
// "On … wrote:" line above a quote and every line starting with ">" (so
// answers written between quoted lines are kept), and trims blank lines at
// both ends. Line ends become LF. It is conservative: when nothing would be
// left, it returns the whole text, trimmed. Forwarded messages look like
// quotes to it; do not strip a message whose subject says it is a forward.
func StripQuoted(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	for i := range lines {
		if isOutlookQuoteStart(lines, i) {
			lines = lines[:i]
			break
		}
	}
	var out []string
	for i := 0; i < len(lines); i++ {
		if n := attributionLines(lines, i); n > 0 {
			j := i + n
			for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
				j++
			}
			if j == len(lines) || isQuotedLine(lines[j]) {
				i += n - 1
				continue
			}
			// An attribution followed by an unmarked quote: a top-posted
			// reply, when something was written above it and the line
			// carries a date (so that "On Monday I wrote:" in prose is
			// not taken for one).
			if hasText(out) && strings.ContainsAny(strings.Join(lines[i:i+n], " "), "0123456789") {
				break
			}
		}
		if isQuotedLine(lines[i]) {
			continue
		}
		out = append(out, strings.TrimRight(lines[i], " \t"))
	}
	if got := strings.Trim(strings.Join(out, "\n"), "\n"); strings.TrimSpace(got) != "" {
		return got
	}
	return strings.TrimSpace(text)
}

func isQuotedLine(l string) bool { return strings.HasPrefix(strings.TrimLeft(l, " \t"), ">") }

func hasText(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return true
		}
	}
	return false
}

// attributionLines returns how many lines (1 or 2, as clients wrap long
// ones) the attribution starting at line i spans, or 0.
func attributionLines(lines []string, i int) int {
	if !attributionStartRE.MatchString(lines[i]) {
		return 0
	}
	if attributionEndRE.MatchString(lines[i]) {
		return 1
	}
	if i+1 < len(lines) && len(lines[i])+len(lines[i+1]) < 300 && attributionEndRE.MatchString(lines[i+1]) {
		return 2
	}
	return 0
}

// isOutlookQuoteStart reports whether line i starts Outlook's quoted
// history: the "Original Message" separator, or a From: line followed by
// at least two of Sent/Date, To and Subject within five lines (possibly
// under a line of underscores).
func isOutlookQuoteStart(lines []string, i int) bool {
	if originalMessageRE.MatchString(lines[i]) {
		return true
	}
	start := i
	if underlineRE.MatchString(lines[i]) {
		for start = i + 1; start < len(lines) && strings.TrimSpace(lines[start]) == ""; start++ {
		}
		if start == len(lines) {
			return false
		}
	}
	if !outlookFromRE.MatchString(lines[start]) {
		return false
	}
	fields := 0
	for j := start + 1; j < len(lines) && j <= start+5; j++ {
		if outlookFieldRE.MatchString(lines[j]) {
			fields++
		}
	}
	return fields >= 2
}

// StripQuotedHTML returns the new part of an HTML reply: it removes Gmail's
// <div class="gmail_quote">, Yahoo's yahoo_quoted, Thunderbird's
// moz-cite-prefix and Apple Mail's <blockquote type="cite"> elements, and
// cuts at Outlook's divRplyFwdMsg / appendonsend markers. It works on the
// tag structure without a full HTML parser, so the result may have
// unclosed tags; sanitize it afterwards (the sanitizer balances them). When
// no visible text would be left, it returns the input unchanged. Forwards
// are kept inside gmail_quote too; do not strip them.
func StripQuotedHTML(s string) string {
	out := s
	if i := findTag(out, isOutlookCut); i >= 0 {
		out = strings.TrimRight(out[:i], " \t\r\n")
		// Outlook puts a rule above the quoted header block.
		if j := strings.LastIndex(strings.ToLower(out), "<hr"); j >= 0 {
			if k := strings.Index(out[j:], ">"); k >= 0 && strings.TrimSpace(out[j+k+1:]) == "" {
				out = out[:j]
			}
		}
	}
	out = removeElements(out, isQuoteElement)
	if visibleText(out) == "" {
		return s
	}
	return out
}

// tag is an HTML tag found by nextTag: its byte range, lowercased name,
// whether it closes an element, and its raw attributes.
type tag struct {
	start, end int
	name       string
	closing    bool
	selfClose  bool
	attrs      string
}

// nextTag finds the first tag at or after from, skipping comments.
func nextTag(s string, from int) (tag, bool) {
	for i := from; i < len(s); i++ {
		if s[i] != '<' {
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				return tag{}, false
			}
			i += 4 + end + 2
			continue
		}
		j := i + 1
		t := tag{start: i}
		if j < len(s) && s[j] == '/' {
			t.closing = true
			j++
		}
		k := j
		for k < len(s) && (isAlnum(s[k]) || s[k] == '-' || s[k] == ':') {
			k++
		}
		if k == j {
			continue
		}
		t.name = strings.ToLower(s[j:k])
		var quote byte
		for e := k; e < len(s); e++ {
			switch c := s[e]; {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '>':
				t.attrs = s[k:e]
				t.end = e + 1
				t.selfClose = strings.HasSuffix(strings.TrimSpace(t.attrs), "/")
				return t, true
			}
		}
		return tag{}, false
	}
	return tag{}, false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

var attrRE = regexp.MustCompile(`(?i)([a-z_:][a-z0-9_:.\-]*)\s*=\s*("([^"]*)"|'([^']*)'|([^\s"'>]+))`)

// attr returns the value of the named attribute ("" when absent).
func attr(attrs, name string) string {
	for _, m := range attrRE.FindAllStringSubmatch(attrs, -1) {
		if strings.EqualFold(m[1], name) {
			return m[3] + m[4] + m[5]
		}
	}
	return ""
}

func hasClass(t tag, class string) bool {
	for _, c := range strings.Fields(attr(t.attrs, "class")) {
		if strings.EqualFold(c, class) {
			return true
		}
	}
	return false
}

func isQuoteElement(t tag) bool {
	if t.name == "blockquote" && strings.EqualFold(attr(t.attrs, "type"), "cite") {
		return true
	}
	return hasClass(t, "gmail_quote") || hasClass(t, "yahoo_quoted") || hasClass(t, "moz-cite-prefix")
}

func isOutlookCut(t tag) bool {
	switch strings.ToLower(attr(t.attrs, "id")) {
	case "divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container":
		return true
	}
	return false
}

// findTag returns the start of the first opening tag matching, or -1.
func findTag(s string, match func(tag) bool) int {
	for pos := 0; ; {
		t, ok := nextTag(s, pos)
		if !ok {
			return -1
		}
		if !t.closing && match(t) {
			return t.start
		}
		pos = t.end
	}
}

// removeElements removes every element whose opening tag matches, with its
// content; an element never closed runs to the end. It runs in one pass
// over the tags of s, plus one scan per removed element.
func removeElements(s string, match func(tag) bool) string {
	var out strings.Builder
	last := 0
	for pos := 0; ; {
		t, ok := nextTag(s, pos)
		if !ok {
			break
		}
		if t.closing || t.selfClose || !match(t) {
			pos = t.end
			continue
		}
		end := len(s)
		depth := 1
		for p := t.end; ; {
			u, ok := nextTag(s, p)
			if !ok {
				break
			}
			p = u.end
			if u.name != t.name || u.selfClose {
				continue
			}
			if u.closing {
				depth--
			} else {
				depth++
			}
			if depth == 0 {
				end = u.end
				break
			}
		}
		out.WriteString(s[last:t.start])
		last, pos = end, end
	}
	if last == 0 {
		return s
	}
	out.WriteString(s[last:])
	return out.String()
}

var (
	tagRE         = regexp.MustCompile(`(?s)<[^>]*>`)
	scriptStyleRE = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
)

// visibleText returns the text an HTML fragment shows, roughly.
func visibleText(s string) string {
	s = scriptStyleRE.ReplaceAllString(s, "")
	s = tagRE.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	return strings.TrimSpace(strings.ReplaceAll(s, "\u00a0", " "))
}
