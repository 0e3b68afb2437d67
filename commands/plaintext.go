package commands

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// CleanLine returns s as single-line plain text, the form every one-line
// text field (subject, names, team, assignee, tags) is stored in:
//   - whatever an HTML parser reads as markup is removed: tags (start, end,
//     self-closing, also one left open at the end, such as "<b and c"),
//     comments, doctypes and processing instructions, judged by the
//     tokenizer of golang.org/x/net/html, which follows the HTML standard
//     as browsers do. What such markup encloses stays, as text: "<b>Hi</b>"
//     is "Hi", "<script>x</script>" is "x";
//   - control characters are removed (C0 and C1, DEL, and the bidirectional
//     embedding, override and isolate controls); line breaks (\n, \r\n,
//     \r, U+2028, U+2029) and tabs become one space each;
//   - invalid UTF-8 bytes become U+FFFD;
//   - everything else stays as typed: "a < b" and "Tom & Jerry" are not
//     changed, and character references such as "&lt;" are neither decoded
//     nor added.
//
// Cleaning is idempotent: CleanLine(CleanLine(s)) == CleanLine(s). It does
// not trim; callers that trim do so afterwards. Safe for concurrent use.
func CleanLine(s string) string { return cleanPlain(s, false) }

// CleanText returns s as multi-line plain text, the form custom field,
// metadata and linked profile string values are stored in: as CleanLine,
// except that line breaks are kept, each as \n (\r\n and \r included), and
// tabs as \t.
func CleanText(s string) string { return cleanPlain(s, true) }

// maxMarkupPasses bounds the tokenizer passes: removing a tag can join the
// text around it into new markup ("<<b>img …>"), so cleaning repeats until
// nothing changes. Inputs built to need more passes get their remaining
// markup-opening "<" characters removed instead, so the cost stays linear.
const maxMarkupPasses = 4

func cleanPlain(s string, multiline bool) string {
	if isPlain(s, multiline) {
		return s
	}
	// Control characters go first: a NUL or a line break inside "<\x00img"
	// keeps the tokenizer from seeing the tag that removing it would leave.
	s = withoutControls(s, multiline)
	for range maxMarkupPasses {
		out, changed := withoutMarkup(s)
		if !changed {
			return out
		}
		s = out
	}
	return withoutMarkupOpeners(s)
}

// isPlain reports whether cleaning leaves s unchanged without looking
// further: valid UTF-8 without '<' or characters that cleaning removes or
// replaces. It does not allocate.
func isPlain(s string, multiline bool) bool {
	for i, r := range s {
		switch {
		case r == '<', r == '\r':
			return false
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return false
			}
		case r == '\n', r == '\t':
			if !multiline {
				return false
			}
		case isLineSeparator(r), isControl(r):
			return false
		}
	}
	return true
}

// withoutControls removes control characters and turns line breaks and
// tabs into spaces (single-line) or \n and \t (multi-line). Invalid UTF-8
// bytes become U+FFFD.
func withoutControls(s string, multiline bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			// The \n that follows stands for both.
		case r == '\n', r == '\r', isLineSeparator(r):
			if multiline {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case r == '\t':
			if multiline {
				b.WriteByte('\t')
			} else {
				b.WriteByte(' ')
			}
		case isControl(r):
		default:
			b.WriteRune(r) // an invalid byte arrives as utf8.RuneError
		}
	}
	return b.String()
}

func isLineSeparator(r rune) bool { return r == '\u2028' || r == '\u2029' }

// isControl reports the characters cleaning removes: Unicode's control
// characters (Cc) and the bidirectional formatting controls that can make
// text display in another order than it is stored.
func isControl(r rune) bool {
	return unicode.IsControl(r) || ('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')
}

// withoutMarkup returns the text tokens of s as written (character
// references untouched), dropping every other token, and whether anything
// was dropped. Elements whose content HTML reads as raw text (script,
// style, title, textarea, plaintext, …) are tokenized like any other, so
// markup inside them is found and removed too.
func withoutMarkup(s string) (string, bool) {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	b.Grow(len(s))
	changed := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			// At the end of the input; what is left unread (a tag never
			// closed) is markup.
			return b.String(), changed || len(z.Raw()) > 0
		case html.TextToken:
			b.Write(z.Raw())
		case html.StartTagToken:
			z.NextIsNotRawText()
			changed = true
		default: // end and self-closing tags, comments, doctypes
			changed = true
		}
	}
}

// withoutMarkupOpeners removes every '<' that would open markup: one that
// is followed, once the others are removed, by an ASCII letter, '/', '!' or
// '?'. What is left has no markup at all.
func withoutMarkupOpeners(s string) string {
	out := []byte(s)
	next := byte(0) // the byte after position i in the output, 0 at the end
	keep := len(out)
	for i := len(out) - 1; i >= 0; i-- {
		c := out[i]
		if c == '<' && opensMarkup(next) {
			continue
		}
		keep--
		out[keep] = c
		next = c
	}
	return string(out[keep:])
}

func opensMarkup(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '/' || c == '!' || c == '?'
}
