package helpdeskflow

import "unicode/utf8"

// CutUTF8 shortens s to at most n bytes without splitting a UTF-8
// character.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
