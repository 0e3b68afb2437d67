package commands

import (
	"html"
	"math/rand"
	"strings"
	"testing"
)

// FuzzSanitizeFastPath: a text without markup characters is what both
// policies make of it, so SanitizeHTML and PlainText may skip them.
func FuzzSanitizeFastPath(f *testing.F) {
	for _, s := range []string{"", "Hello, world.", "tab\tnew\nline", "\x01\x7f\u2028\ufeff😀", "a;b=c/d`e~f!g#h%i$j", " \x0b\x0c ", "\ufffd\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if hasMarkup(s) {
			return
		}
		if got := ugcPolicy.Sanitize(s); got != s {
			t.Fatalf("the UGC policy makes %q of %q, which has no markup characters", got, s)
		}
		if got, want := html.UnescapeString(stripPolicy.Sanitize(s)), s; got != want {
			t.Fatalf("the strict policy makes %q of %q, which has no markup characters", got, s)
		}
	})
}

// TestSanitizeFastPath_Random runs the fuzz property on 100,000 random
// texts of characters the tokenizer might treat specially.
func TestSanitizeFastPath_Random(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alphabet := []rune("ab cdé\t\n\x01\x7f\u2028\u00a0\ufeff😀;=/`~!#%$()[]{}\\\x0b\x0c日本\u200b\ufffd-?")
	for range 100_000 {
		var b strings.Builder
		for range r.Intn(40) {
			b.WriteRune(alphabet[r.Intn(len(alphabet))])
		}
		s := b.String()
		if got := ugcPolicy.Sanitize(s); got != s {
			t.Fatalf("the UGC policy makes %q of %q", got, s)
		}
		if got := html.UnescapeString(stripPolicy.Sanitize(s)); got != s {
			t.Fatalf("the strict policy makes %q of %q", got, s)
		}
	}
	for _, s := range []string{"a\rb", "a\x00b", "a&amp;b", "it's", `say "hi"`} {
		if !hasMarkup(s) {
			t.Errorf("%q has markup characters, but hasMarkup says no", s)
		}
	}
}
