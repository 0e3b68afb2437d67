package commands_test

import (
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/commands"
)

// TestCleanLine lists what cleaning removes and what it keeps, in both
// forms (single-line unless multiline).
func TestCleanLine(t *testing.T) {
	cases := []struct {
		name, in, want string
		multiline      bool
	}{
		// Markup goes, as an HTML parser reads it; what it encloses stays.
		{name: "an image with an event handler", in: `<img src=x onerror=alert(1)>`, want: ``},
		{name: "a tag inside text", in: `Refund <img src=x onerror=alert(1)>please`, want: `Refund please`},
		{name: "formatting", in: `<b>bold</b> <i>move</i>`, want: `bold move`},
		{name: "a self-closing tag", in: `a<br/>b`, want: `ab`},
		{name: "a script keeps its text, not its tags", in: `<script>alert(1)</script>`, want: `alert(1)`},
		{name: "markup inside a raw-text element", in: `<title><img src=x onerror=alert(1)></title>`, want: ``},
		{name: "markup after plaintext", in: `<plaintext><img src=x onerror=alert(1)>`, want: ``},
		{name: "a comment", in: `a<!-- note -->b`, want: `ab`},
		{name: "a comment never closed", in: `a<!-- note`, want: `a`},
		{name: "a doctype", in: `x<!DOCTYPE html>y`, want: `xy`},
		{name: "a processing instruction", in: `<?xml version="1.0"?>z`, want: `z`},
		{name: "CDATA", in: `<![CDATA[<img src=x onerror=alert(1)>]]>y`, want: `]]>y`},
		{name: "a bogus end tag", in: `x</ b>y`, want: `xy`},
		{name: "a tag left open at the end", in: `a <b and c`, want: `a `},
		{name: "an attribute hiding >", in: `<a title=">">x</a>`, want: `x`},
		{name: "a tag that removing another one forms", in: `<<b>img src=x onerror=alert(1)>`, want: ``},
		{name: "a tag that removing a NUL forms", in: "<\x00img src=x onerror=alert(1)>", want: ``},
		{name: "a tag that removing a newline would form", in: "<\nimg src=x>", want: `< img src=x>`},
		{name: "a split script tag", in: `<scr<script>ipt>alert(1)</script>`, want: `ipt>alert(1)`},

		// Control characters go; line breaks and tabs become spaces.
		{name: "C0, DEL and C1 controls", in: "a\x00b\x07c\x1bd\x7fe\u0085f\u009bg", want: "abcdefg"},
		{name: "bidirectional controls", in: "pay\u202eusd\u2066x\u2069", want: "payusdx"},
		{name: "line breaks and tabs", in: "a\r\nb\nc\rd\te\u2028f\u2029g", want: "a b c d e f g"},
		{name: "invalid UTF-8", in: "a\xffb", want: "a\ufffdb"},

		// Multi-line: line breaks are kept as \n, tabs as \t.
		{name: "multi-line: line breaks and tabs", in: "a\r\nb\rc\u2028d\te\x0bf\x0cg", want: "a\nb\nc\nd\tefg", multiline: true},
		{name: "multi-line: markup", in: "line 1\n<b>line 2</b>\n<!-- x -->", want: "line 1\nline 2\n", multiline: true},

		// Everything else stays as typed.
		{name: "a less-than sign with a space", in: `a < b`, want: `a < b`},
		{name: "a less-than sign before a digit", in: `1<2 and x <3 y`, want: `1<2 and x <3 y`},
		{name: "a less-than sign at the end", in: `a<`, want: `a<`},
		{name: "an end tag opener at the end", in: `a</`, want: `a</`},
		{name: "an ampersand", in: `Tom & Jerry`, want: `Tom & Jerry`},
		{name: "character references", in: `&lt;script&gt; &amp; &#60;`, want: `&lt;script&gt; &amp; &#60;`},
		{name: "greater-than signs and quotes", in: `5 > 4 "quoted" 'single'`, want: `5 > 4 "quoted" 'single'`},
		{name: "spaced angle brackets", in: `< ada@example.com >`, want: `< ada@example.com >`},
		{name: "leading and trailing spaces", in: `  spaced  `, want: `  spaced  `},
		{name: "non-ASCII letters and emoji", in: "Grüße 😀 日本語", want: "Grüße 😀 日本語"},
		{name: "joiners and marks", in: "👩\u200d💻 \u200fשלום", want: "👩\u200d💻 \u200fשלום"},
		{name: "a less-than sign before a non-ASCII letter", in: "x <ü", want: "x <ü"},
		{name: "U+FFFD as typed", in: "a\ufffdb", want: "a\ufffdb"},
		{name: "multi-line: plain lines", in: "line 1\n\tline 2", want: "line 1\n\tline 2", multiline: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clean := commands.CleanLine
			if tc.multiline {
				clean = commands.CleanText
			}
			if got := clean(tc.in); got != tc.want {
				t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
			checkPlain(t, tc.in, tc.multiline)
		})
	}
}

// TestCleanLine_Pathological: inputs built so that every removal forms a
// new tag are cleaned in a bounded number of passes, and still leave no
// markup.
func TestCleanLine_Pathological(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("<", 5000) + strings.Repeat("b>", 5000) + "img src=x onerror=alert(1)>",
		strings.Repeat("<<b>", 2000) + "img src=x onerror=alert(1)>",
		strings.Repeat("<", 10000),
		strings.Repeat("<!--<!--", 1000) + "-->",
	} {
		checkPlain(t, in, false)
		checkPlain(t, in, true)
	}
}
