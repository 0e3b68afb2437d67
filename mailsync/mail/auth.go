package mail

import (
	"regexp"
	"strings"
)

// dmarcRE matches a resinfo whose method is dmarc (RFC 8601 2.2: method,
// optional version, "=", result), once comments are removed.
var dmarcRE = regexp.MustCompile(`(?i)^\s*dmarc\s*(?:/\s*[0-9]+\s*)?=\s*([a-z]+)`)

// DMARCResult returns the DMARC result an Authentication-Results header
// value (RFC 8601) records: "pass", "fail", "none", "temperror",
// "permerror" or another result word, lowercased; "" when it records no
// DMARC result. Comments and quoted strings are skipped, so "(dmarc=fail)"
// in a comment is not a result, and the authentication service id may be
// missing, as Microsoft 365 leaves it out.
func DMARCResult(header string) string {
	for _, resinfo := range strings.Split(stripComments(header), ";") {
		if m := dmarcRE.FindStringSubmatch(resinfo); m != nil {
			return strings.ToLower(m[1])
		}
	}
	return ""
}

// stripComments removes RFC 5322 comments (nested parentheses, with
// backslash escapes) from a header value, and the contents of quoted
// strings, in which nothing is a comment or a separator.
func stripComments(v string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (depth > 0 || quoted):
			i++
		case quoted:
			if c == '"' {
				quoted = false
				b.WriteString(`""`)
			}
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
		case depth > 0:
		case c == '"':
			quoted = true
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
