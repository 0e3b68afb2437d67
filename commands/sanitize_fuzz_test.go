package commands_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/helpdeskflow/helpdeskflow/commands"
)

// bypassPayloads are known XSS and sanitizer-bypass inputs (in the style of
// the OWASP XSS filter evasion cheat sheet, mutation XSS and parser
// differential write-ups). They seed FuzzSanitizeHTML and run as plain test
// cases in TestSanitizeHTML_BypassPayloads.
var bypassPayloads = []string{
	// Plain text and harmless markup, so the fuzzer also mutates from there.
	``,
	`Hello, world.`,
	`<p>My order arrived <b>broken</b> &amp; late.</p>`,
	`<a href="https://example.com/a?b=1&amp;c=2">link</a>`,
	`<img src="https://example.com/x.png" alt="x">`,
	`<blockquote cite="https://example.com">q</blockquote>`,
	`1 < 2 && 3 > 2`,
	`&lt;script&gt;alert(1)&lt;/script&gt;`,

	// Script elements.
	`<script>alert(1)</script>`,
	`<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>`,
	`<ScRiPt>alert(1)</sCrIpT>`,
	`<script/xss src="https://evil.example/xss.js"></script>`,
	`<<script>alert(1);//<</script>`,
	`<script>alert(1)`,
	`<scr<script>ipt>alert(1)</scr</script>ipt>`,
	`<script\x00>alert(1)</script>`,
	"<scr\x00ipt>alert(1)</scr\x00ipt>",
	`<svg><script>alert(1)</script></svg>`,
	`<svg><script href="data:,alert(1)"/></svg>`,
	`<svg><script xlink:href="data:,alert(1)"></script></svg>`,
	`<math><script>alert(1)</script></math>`,
	`</script><script>alert(1)</script>`,
	`<textarea></textarea><script>alert(1)</script>`,
	`<title></title><script>alert(1)</script>`,

	// Event handlers.
	`<img src=x onerror=alert(1)>`,
	`<IMG SRC=x OnErRoR=alert(1)>`,
	`<img src=x onerror="alert(1)"//`,
	`<img src=x onerror=&#x61;&#x6c;&#x65;&#x72;&#x74;(1)>`,
	"<img src=x\x00onerror=alert(1)>",
	"<img src=x\x0conerror=alert(1)>",
	`<img/src=x/onerror=alert(1)>`,
	`<img src="x` + "`" + `onerror=alert(1)">`,
	`<img """><script>alert(1)</script>">`,
	`<svg/onload=alert(1)>`,
	`<svg onload=alert(1)//`,
	`<body onload=alert(1)>`,
	`<p onclick="alert(1)">click</p>`,
	`<div onmouseover="alert(1)">hover</div>`,
	`<details open ontoggle=alert(1)>`,
	`<input autofocus onfocus=alert(1)>`,
	`<select autofocus onfocus=alert(1)>`,
	`<video><source onerror=alert(1)></video>`,
	`<audio src=x onerror=alert(1)>`,
	`<marquee onstart=alert(1)>`,
	`<a href="https://example.com" onmouseover=alert(1)>x</a>`,
	`<x onclick=alert(1)>x</x>`,
	`<img src=x on error=alert(1)>`,
	`<img src=x onerror =alert(1)>`,

	// javascript:, vbscript: and data: URLs.
	`<a href="javascript:alert(1)">x</a>`,
	`<a href="JaVaScRiPt:alert(1)">x</a>`,
	`<a href=" javascript:alert(1)">x</a>`,
	`<a href="jav&#x09;ascript:alert(1)">x</a>`,
	`<a href="jav&#x0A;ascript:alert(1)">x</a>`,
	`<a href="jav&#x0D;ascript:alert(1)">x</a>`,
	"<a href=\"jav\tascript:alert(1)\">x</a>",
	"<a href=\"java\x00script:alert(1)\">x</a>",
	`<a href="&#106;avascript:alert(1)">x</a>`,
	`<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000049&#0000041">x</a>`,
	`<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x31&#x29">x</a>`,
	`<a href="javascript&colon;alert(1)">x</a>`,
	`<a href="javascript&#58;alert(1)">x</a>`,
	`<a href="&#1;javascript:alert(1)">x</a>`,
	`<a href="&#14;javascript:alert(1)">x</a>`,
	`<a href="javas&NewLine;cript:alert(1)">x</a>`,
	`<a href="javas&Tab;cript:alert(1)">x</a>`,
	`<a href="\x01javascript:alert(1)">x</a>`,
	`<a href=javascript:alert(1)>x</a>`,
	`<a href="vbscript:msgbox(1)">x</a>`,
	`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`,
	`<a href="data:text/html,<script>alert(1)</script>">x</a>`,
	`<a href="DATA:text/html,<script>alert(1)</script>">x</a>`,
	`<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">`,
	`<img src="javascript:alert(1)">`,
	`<img src=JaVaScRiPt:alert(1)>`,
	`<img src="jav	ascript:alert(1);">`,
	`<img dynsrc="javascript:alert(1)">`,
	`<img lowsrc="javascript:alert(1)">`,
	`<img srcset="javascript:alert(1) 1x, https://example.com/x.png 2x">`,
	`<img src="x" usemap="#m"><map name="m"><area href="javascript:alert(1)" shape="rect" coords="0,0,10,10"></map>`,
	`<blockquote cite="javascript:alert(1)">q</blockquote>`,
	`<q cite="javascript:alert(1)">q</q>`,
	`<table background="javascript:alert(1)"><tr><td background="javascript:alert(1)">x</td></tr></table>`,
	`<video poster="javascript:alert(1)"></video>`,
	`<a href="https://example.com/" title="javascript:alert(1)">x</a>`,
	`<a href="//evil.example/%0Ajavascript:alert(1)">x</a>`,
	`<a href="javascript://example.com/%0Aalert(1)">x</a>`,
	`<a href="http://example.com/"` + "\x00" + ` href="javascript:alert(1)">x</a>`,
	`<a href="javascript:alert(1)" href="https://example.com">x</a>`,
	`<a href="https://example.com" href="javascript:alert(1)">x</a>`,

	// Dangerous elements.
	`<iframe src="javascript:alert(1)"></iframe>`,
	`<iframe srcdoc="<script>alert(1)</script>"></iframe>`,
	`<iframe srcdoc="&lt;img src=x onerror=alert(1)&gt;"></iframe>`,
	`<IFRAME SRC="https://evil.example"></IFRAME>`,
	`<frameset><frame src="javascript:alert(1)"></frameset>`,
	`<object data="javascript:alert(1)"></object>`,
	`<object type="text/x-scriptlet" data="https://evil.example/x.html"></object>`,
	`<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">`,
	`<embed src="javascript:alert(1)">`,
	`<applet code="X.class"></applet>`,
	`<style>body{background:url(javascript:alert(1))}</style>`,
	`<STYLE>@import'https://evil.example/xss.css';</STYLE>`,
	`<style>li {list-style-image: url("javascript:alert(1)");}</style><ul><li>x</li></ul>`,
	`<link rel="stylesheet" href="javascript:alert(1)">`,
	`<base href="javascript:alert(1)//">`,
	`<base href="https://evil.example/">`,
	`<meta http-equiv="refresh" content="0;url=javascript:alert(1)">`,
	`<meta http-equiv="refresh" content="0;url=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg">`,
	`<meta charset="x-imap4-modified-utf7">`,
	`<form action="javascript:alert(1)"><input type="submit"></form>`,
	`<form><button formaction="javascript:alert(1)">x</button></form>`,
	`<form id="f"></form><button form="f" formaction="javascript:alert(1)">x</button>`,
	`<isindex action="javascript:alert(1)" type="submit">`,
	`<input type="image" src="javascript:alert(1)">`,
	`<template><script>alert(1)</script></template>`,
	`<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>`,
	`<svg><animate attributeName="href" values="javascript:alert(1)"/></svg>`,
	`<svg><set attributeName="onmouseover" to="alert(1)"/></svg>`,
	`<svg><use href="data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'><image href='1' onerror='alert(1)'/></svg>#x"/></svg>`,
	`<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>`,
	`<math href="javascript:alert(1)">x</math>`,
	`<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>`,
	`<xss style="behavior: url(xss.htc);">`,
	`<xml id="x"><x><c><![CDATA[<img src=x onerror=alert(1)>]]></c></x></xml>`,

	// Style attributes.
	`<div style="background:url(javascript:alert(1))">x</div>`,
	`<div style="background-image: url(&#1;javascript:alert(1))">x</div>`,
	`<div style="width: expression(alert(1));">x</div>`,
	`<p style="x:\65xpression(alert(1))">x</p>`,
	`<span style="-moz-binding:url(https://evil.example/xss.xml#xss)">x</span>`,

	// Mutation XSS and parser differentials.
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
	`<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img src=1 onerror=alert(1)&gt;">`,
	`<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>`,
	`<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">`,
	`<svg><p><style><a id="</style><img src=1 onerror=alert(1)>"></p></svg>`,
	`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
	`<noscript><style></noscript><img src=x onerror=alert(1)>`,
	`<noembed><img title="</noembed><img src=x onerror=alert(1)>"></noembed>`,
	`<noframes><img title="</noframes><img src=x onerror=alert(1)>"></noframes>`,
	`<xmp><img title="</xmp><img src=x onerror=alert(1)>"></xmp>`,
	`<textarea><img title="</textarea><img src=x onerror=alert(1)>"></textarea>`,
	`<title><img title="</title><img src=x onerror=alert(1)>"></title>`,
	`<iframe><img title="</iframe><img src=x onerror=alert(1)>"></iframe>`,
	`<plaintext><img src=x onerror=alert(1)>`,
	`<!--<img src="--><img src=x onerror=alert(1)//">`,
	`<!-- --!><img src=x onerror=alert(1)> -->`,
	`<!--><img src=x onerror=alert(1)>-->`,
	`<![CDATA[><img src=x onerror=alert(1)>]]>`,
	`<?xml version="1.0"?><img src=x onerror=alert(1)>`,
	`<!DOCTYPE html><img src=x onerror=alert(1)>`,
	`<p title="a&quot;b"><img src=x onerror=alert(1)></p>`,
	`<a title="` + "`" + `"><img src=x onerror=alert(1)>` + "`" + `">x</a>`,
	`<div id="x"><a title="</div><img src=x onerror=alert(1)>">x</a></div>`,
	`<table><tr><td><a href="https://example.com"><form><img src=x onerror=alert(1)></form></a></td></tr></table>`,
	`<table><script>alert(1)</script></table>`,
	`<table><td><img src=x onerror=alert(1)></table>`,
	`<select><template><style><img src=x onerror=alert(1)>`,
	`<a href="https://example.com/"><a href="javascript:alert(1)">x</a></a>`,
	`<img src=x onerror=alert(1)//`,
	`<img src=x onerror=alert(1)`,
	`<a href="javascript:alert(1)`,
	`<a href='javascript:alert(1)'>x`,
	`<p title="<script>alert(1)</script>">x</p>`,
	`<img alt="<script>alert(1)</script>" src="https://example.com/x.png">`,
	`<p id="'&gt;&lt;img src=x onerror=alert(1)&gt;">x</p>`,
	`<p title=&quot;onerror=alert(1)>x</p>`,
	"<p>\x00<script>alert(1)</script></p>",
	"\x00<img src=x onerror=alert(1)>",
	"<img src=x onerror=alert(1)\x00>",
	"<\x00script>alert(1)</script>",
	"\xef\xbf\xbd<script>alert(1)</script>",
	"\xff<script>alert(1)</script>",
	"<p>\xc3\x28</p>",
	"<a href=\"java\u2028script:alert(1)\">x</a>",
	"<a href=\"\ufeffjavascript:alert(1)\">x</a>",
	`<a href="&Tab;javascript:alert(1)">x</a>`,
	`<a href="javascript&#x3A;alert(1)">x</a>`,
	`<a href="%6A%61%76%61%73%63%72%69%70%74:alert(1)">x</a>`,
	`<a href="java%0ascript:alert(1)">x</a>`,
	`<a href="/\evil.example">x</a>`,
	`<a href="mailto:ada@example.com">mail</a>`,
	`<a href="HTTPS://EXAMPLE.COM/">x</a>`,
	`<a href="#top" name="top">x</a>`,
	`<details open><summary>s</summary>text</details>`,
	`<ol type="a"><li value="3">x</li></ol>`,
	`<time datetime="2026-01-01T00:00:00Z">now</time>`,
	`<table summary="s"><caption>c</caption><colgroup span="2"></colgroup><thead><tr><th abbr="a" scope="col">h</th></tr></thead><tbody><tr><td colspan="2">d</td></tr></tbody></table>`,
	strings.Repeat(`<div>`, 300) + `<img src=x onerror=alert(1)>`,
	strings.Repeat(`<a href="`, 20) + `javascript:alert(1)">x`,
}

// FuzzSanitizeHTML checks the security invariants of SanitizeHTML on any
// input: the output, parsed as a browser would parse it, holds no element
// or attribute that runs script or loads active content, and no URL
// attribute names a javascript:, vbscript: or data: URL. Sanitizing is
// idempotent, and PlainText is well-formed.
func FuzzSanitizeHTML(f *testing.F) {
	for _, p := range bypassPayloads {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, body string) {
		checkSanitized(t, body)
	})
}

// TestSanitizeHTML_BypassPayloads runs the fuzz invariants on the seed
// payloads in a normal test run, with a name per payload.
func TestSanitizeHTML_BypassPayloads(t *testing.T) {
	for i, p := range bypassPayloads {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkSanitized(t, p) })
	}
}

func checkSanitized(t *testing.T, body string) {
	t.Helper()
	clean := commands.SanitizeHTML(body)
	for _, problem := range unsafeHTML(clean) {
		t.Errorf("SanitizeHTML(%q) = %q: %s", body, clean, problem)
	}
	if again := commands.SanitizeHTML(clean); again != clean {
		t.Errorf("SanitizeHTML is not idempotent:\ninput  %q\nonce   %q\ntwice  %q", body, clean, again)
	}

	text := commands.PlainText(clean)
	if utf8.ValidString(body) && !utf8.ValidString(text) {
		t.Errorf("PlainText(%q) = %q: not valid UTF-8 for valid UTF-8 input", clean, text)
	}
	if collapsed := strings.Join(strings.Fields(text), " "); collapsed != text {
		t.Errorf("PlainText(%q) = %q: white space not collapsed", clean, text)
	}
	if plain := strings.Join(strings.Fields(body), " "); isPlainText(body) && text != plain {
		// Text without markup, entities or control characters must come
		// through unchanged apart from white space.
		t.Errorf("PlainText(SanitizeHTML(%q)) = %q, want %q", body, text, plain)
	}
}

// plainTextPayloads seed FuzzCleanPlainText besides bypassPayloads: text
// that must stay as typed, and markup that hides in plain-text fields.
var plainTextPayloads = []string{
	`a < b`, `1<2`, `x <3 y`, `Tom & Jerry`, `&lt;b&gt;`, `a<`, `a</`, `< ada@example.com >`,
	`a <b and c`, `<<b>img src=x onerror=alert(1)>`, "<\x00img src=x onerror=alert(1)>", "<\nimg>",
	"line 1\r\nline 2\ttab\u2028x", "bidi \u202e override", "a\x7fb\u0085c", "\xffbroken",
	strings.Repeat("<", 50) + strings.Repeat("b>", 50) + "img>",
}

// FuzzCleanPlainText checks CleanLine and CleanText on any input: the
// result holds nothing an HTML parser reads as a tag, comment or doctype
// (by the tokenizer, and parsed as a fragment it is text only), no control
// characters (but \n and \t in multi-line text), and valid UTF-8; cleaning
// is idempotent; and text that HTML shows as it is stays unchanged.
func FuzzCleanPlainText(f *testing.F) {
	for _, p := range append(slices.Clone(bypassPayloads), plainTextPayloads...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkPlain(t, s, false)
		checkPlain(t, s, true)
	})
}

// TestCleanPlainText_Payloads runs the fuzz invariants on the seeds.
func TestCleanPlainText_Payloads(t *testing.T) {
	for i, p := range append(slices.Clone(bypassPayloads), plainTextPayloads...) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkPlain(t, p, false)
			checkPlain(t, p, true)
		})
	}
}

func checkPlain(t *testing.T, s string, multiline bool) {
	t.Helper()
	clean, name := commands.CleanLine, "CleanLine"
	if multiline {
		clean, name = commands.CleanText, "CleanText"
	}
	out := clean(s)
	if markup := markupIn(out); markup != "" {
		t.Errorf("%s(%q) = %q: holds markup %s", name, s, out, markup)
	}
	if !utf8.ValidString(out) {
		t.Errorf("%s(%q) = %q: not valid UTF-8", name, s, out)
	}
	for _, r := range out {
		allowed := multiline && (r == '\n' || r == '\t')
		if (unicode.IsControl(r) && !allowed) || (!multiline && (r == '\u2028' || r == '\u2029')) ||
			('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069') {
			t.Errorf("%s(%q) = %q: holds control character %U", name, s, out, r)
			break
		}
	}
	if again := clean(out); again != out {
		t.Errorf("%s is not idempotent:\ninput  %q\nonce   %q\ntwice  %q", name, s, out, again)
	}
	if harmless(s, multiline) && out != s {
		t.Errorf("%s(%q) = %q: harmless text changed", name, s, out)
	}
}

// markupIn describes the first markup an HTML parser finds in s: a token
// of the tokenizer other than text, or a node other than text when s is
// parsed as the content of a <div>. It returns "" for plain text.
func markupIn(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if raw := z.Raw(); len(raw) > 0 {
				return fmt.Sprintf("%q left open at the end", raw)
			}
			break
		}
		if tt != html.TextToken {
			return fmt.Sprintf("%v token %q", tt, z.Raw())
		}
	}
	div := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), div)
	if err != nil {
		return "unparsable: " + err.Error()
	}
	for _, n := range nodes {
		if n.Type != html.TextNode {
			return fmt.Sprintf("node %q (type %d) when parsed", n.Data, n.Type)
		}
	}
	return ""
}

// harmless reports whether s is text HTML shows as typed and that holds
// nothing cleaning removes: valid UTF-8, every '<' followed by something
// that cannot open markup, no control characters (but \n and \t when
// multiline) and no bidirectional controls or line separators.
func harmless(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		switch {
		case r == '<':
			if next := s[i+1:]; next != "" && (next[0] == '/' || next[0] == '!' || next[0] == '?' ||
				('a' <= next[0]|0x20 && next[0]|0x20 <= 'z')) {
				return false
			}
		case r == '\n' || r == '\t':
			if !multiline {
				return false
			}
		case unicode.IsControl(r), r == '\u2028', r == '\u2029', '\u202a' <= r && r <= '\u202e', '\u2066' <= r && r <= '\u2069':
			return false
		}
	}
	return true
}

// isPlainText reports whether s is valid UTF-8 text that HTML would show
// as it is: no markup, no character references, no control characters.
func isPlainText(s string) bool {
	if !utf8.ValidString(s) || strings.ContainsAny(s, "<&") {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// forbiddenElements run script, load active content, change how the rest
// of the page is parsed or resolved, or submit data.
var forbiddenElements = map[string]bool{
	"script": true, "style": true, "iframe": true, "frame": true, "frameset": true,
	"object": true, "embed": true, "applet": true, "param": true,
	"base": true, "meta": true, "link": true,
	"form": true, "input": true, "button": true, "select": true, "textarea": true, "isindex": true,
	"svg": true, "math": true, "template": true,
	"noscript": true, "noembed": true, "noframes": true, "xmp": true, "plaintext": true, "title": true,
}

// forbiddenAttributes carry markup, script or styles (event handlers, every
// on* attribute, are checked separately).
var forbiddenAttributes = map[string]bool{
	"srcdoc": true, "formaction": true, "style": true,
}

// urlAttributes hold a URL (or, for srcset, a list of them) a browser may
// follow or load.
var urlAttributes = map[string]bool{
	"href": true, "xlink:href": true, "src": true, "srcset": true, "action": true, "formaction": true,
	"cite": true, "background": true, "poster": true, "data": true, "codebase": true,
	"classid": true, "longdesc": true, "lowsrc": true, "dynsrc": true, "usemap": true,
	"ping": true, "manifest": true, "icon": true, "profile": true, "archive": true, "itemtype": true,
}

// unsafeHTML parses sanitized HTML the ways a page may use it (inside a
// <div> as innerHTML, and as a whole document) and returns a description of
// every unsafe element, attribute or URL it finds. Because the parser has
// decoded character references and attribute quoting, entity tricks cannot
// hide anything from it. A second round (render, then parse again) catches
// mutation XSS, where markup changes meaning when re-serialized.
func unsafeHTML(s string) []string {
	var problems []string
	div := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), div)
	if err != nil {
		return []string{fmt.Sprintf("parse as fragment: %v", err)}
	}
	for _, n := range nodes {
		problems = append(problems, unsafeNodes(n)...)
	}
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return append(problems, fmt.Sprintf("parse as document: %v", err))
	}
	problems = append(problems, unsafeNodes(doc)...)

	var rendered strings.Builder
	for _, n := range nodes {
		if err := html.Render(&rendered, n); err != nil {
			return append(problems, fmt.Sprintf("render: %v", err))
		}
	}
	reparsed, err := html.ParseFragment(strings.NewReader(rendered.String()), div)
	if err != nil {
		return append(problems, fmt.Sprintf("parse rendered fragment: %v", err))
	}
	for _, n := range reparsed {
		for _, p := range unsafeNodes(n) {
			problems = append(problems, "after render and reparse: "+p)
		}
	}
	return problems
}

func unsafeNodes(n *html.Node) []string {
	var problems []string
	for d := range n.Descendants() {
		problems = append(problems, unsafeNode(d)...)
	}
	return append(problems, unsafeNode(n)...)
}

func unsafeNode(n *html.Node) []string {
	if n.Type != html.ElementNode {
		return nil
	}
	var problems []string
	name := strings.ToLower(n.Data)
	if forbiddenElements[name] {
		problems = append(problems, fmt.Sprintf("element <%s>", name))
	}
	if n.Namespace != "" {
		problems = append(problems, fmt.Sprintf("foreign (%s) element <%s>", n.Namespace, name))
	}
	for _, a := range n.Attr {
		key := strings.ToLower(a.Key)
		if a.Namespace != "" {
			key = strings.ToLower(a.Namespace) + ":" + key
		}
		local := key[strings.LastIndexByte(key, ':')+1:]
		switch {
		case strings.HasPrefix(local, "on"):
			problems = append(problems, fmt.Sprintf("event handler attribute %s on <%s>", key, name))
		case forbiddenAttributes[local]:
			problems = append(problems, fmt.Sprintf("attribute %s on <%s>", key, name))
		}
		if !urlAttributes[key] && !urlAttributes[local] {
			continue
		}
		urls := []string{a.Val}
		if local == "srcset" || local == "ping" || local == "archive" {
			urls = strings.FieldsFunc(a.Val, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		}
		for _, u := range urls {
			if scheme := activeScheme(u); scheme != "" {
				problems = append(problems, fmt.Sprintf("%s URL in %s=%q on <%s>", scheme, key, a.Val, name))
			}
		}
	}
	return problems
}

// activeScheme returns the scheme of u if it is javascript:, vbscript: or
// data:, as a browser would read it: character references are already
// decoded by the parser; white space and control characters, which URL
// parsers strip or skip, are removed; case is ignored.
func activeScheme(u string) string {
	u = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\ufeff' {
			return -1
		}
		return r
	}, u)
	u = strings.ToLower(u)
	for _, scheme := range []string{"javascript:", "vbscript:", "data:"} {
		if strings.HasPrefix(u, scheme) {
			return scheme
		}
	}
	return ""
}

// TestUnsafeHTML_Detects checks the checker: unsanitized payloads, entity
// and white space tricks included, must be reported, and safe markup not.
func TestUnsafeHTML_Detects(t *testing.T) {
	unsafe := []string{
		`<script>alert(1)</script>`,
		`<img src=x onerror=alert(1)>`,
		`<svg/onload=alert(1)>`,
		`<a href="jav&#x09;ascript:alert(1)">x</a>`,
		`<a href="&#106;avascript:alert(1)">x</a>`,
		`<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">x</a>`,
		`<a href="javascript&colon;alert(1)">x</a>`,
		`<a href=" &#1;JAVASCRIPT:alert(1)">x</a>`,
		`<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>`,
		`<a href="VBScript:msgbox(1)">x</a>`,
		`<img srcset="https://example.com/a.png 1x, javascript:alert(1) 2x">`,
		`<iframe srcdoc="x"></iframe>`,
		`<p style="color:red">x</p>`,
		`<button formaction="https://example.com">x</button>`,
		`<blockquote cite="javascript:alert(1)">x</blockquote>`,
		`<table background="javascript:alert(1)"><tr><td>x</td></tr></table>`,
		`<base href="https://evil.example/">`,
		`<meta http-equiv="refresh" content="0">`,
		`<form></form>`,
		`<object></object>`,
		`<embed>`,
		`<style></style>`,
		`<math></math>`,
		`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
		`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
	}
	for _, s := range unsafe {
		if len(unsafeHTML(s)) == 0 {
			t.Errorf("unsafeHTML(%q) found nothing", s)
		}
	}
	safe := []string{
		``,
		`<p>Hi <a href="https://example.com/?a=1&amp;b=2" rel="nofollow">there</a> &lt;script&gt;</p>`,
		`<a href="/relative/javascript:alert(1)">x</a>`,
		`<a href="#data:x">x</a>`,
		`<a href="&amp;#106;avascript:alert(1)">x</a>`,
		`<img src="https://example.com/x.png" alt="onerror=alert(1)">`,
		`<p title="javascript:alert(1)">x</p>`,
	}
	for _, s := range safe {
		if problems := unsafeHTML(s); len(problems) != 0 {
			t.Errorf("unsafeHTML(%q) = %q, want nothing", s, problems)
		}
	}
}
