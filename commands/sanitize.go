package commands

import (
	"html"
	"strings"

	"github.com/microcosm-cc/bluemonday"
)

// The policies are safe for concurrent use once built.
var (
	ugcPolicy   = bluemonday.UGCPolicy()
	stripPolicy = bluemonday.StrictPolicy()
)

// SanitizeHTML returns body with everything that could run or load active
// content removed (scripts, event-handler attributes, javascript: and data:
// URLs), keeping the formatting of user-generated content.
func SanitizeHTML(body string) string {
	if !hasMarkup(body) {
		return body
	}
	return ugcPolicy.Sanitize(body)
}

// markupChars are the characters that sanitizing can change: HTML's
// special characters, and CR and NUL, which the HTML tokenizer rewrites.
// A text without any of them comes out of either policy unchanged (see
// FuzzSanitizeFastPath), so most messages skip the tokenizer.
const markupChars = "<>&'\"\r\x00"

func hasMarkup(s string) bool { return strings.ContainsAny(s, markupChars) }

// PlainText renders sanitized HTML as plain text: tags dropped, entities
// decoded, runs of white space collapsed.
func PlainText(sanitized string) string {
	text := sanitized
	if hasMarkup(sanitized) {
		text = html.UnescapeString(stripPolicy.Sanitize(sanitized))
	}
	return strings.Join(strings.Fields(text), " ")
}

// SanitizedBody sanitizes a message body that passed validation and refuses
// one that sanitizing leaves empty (only scripts or other unsafe markup),
// naming field.
func SanitizedBody(field, raw string) (string, error) {
	body := SanitizeHTML(raw)
	if strings.TrimSpace(body) == "" {
		var p Problems
		p.Add(field, "has no content left once unsafe HTML (scripts, event handlers, …) is removed")
		return "", p.Err()
	}
	return body, nil
}
