package commands

import (
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/helpdeskflow/helpdeskflow"
)

// Size limits of ticket and customer fields, counted in characters.
const (
	MaxSubjectLen      = 500
	MaxMessageBodyLen  = 50000
	MaxEmailLen        = 254
	MaxNameLen         = 200
	MaxTags            = 50
	MaxTagLen          = 64
	MaxCustomFields    = 100
	MaxCustomFieldKey  = 64
	MaxCustomFieldText = 10000
	MaxExternalIDLen   = 255
)

// Problems collects every field problem of a request, so a client learns
// all of them at once. The zero value is empty and ready to use.
type Problems []helpdeskflow.FieldProblem

// Add records a problem of field, its text formatted like fmt.Sprintf.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, helpdeskflow.FieldProblem{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Err returns nil when there are no problems, else one EValidation error
// listing them all as details.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details", Details: p}
}

// Text checks a text field: present when required, at most max
// characters, valid UTF-8.
func (p *Problems) Text(field, value string, required bool, max int) {
	switch n := utf8.RuneCountInString(value); {
	case required && strings.TrimSpace(value) == "":
		p.Add(field, "required")
	case n > max:
		p.Add(field, "must be at most %d characters, got %d", max, n)
	case !utf8.ValidString(value):
		p.Add(field, "must be valid UTF-8")
	}
}

// Line cleans a single-line plain-text field (CleanLine), trims it and
// checks it, returning the cleaned value. A required field that cleaning
// leaves empty is named as such.
func (p *Problems) Line(field, value string, required bool, max int) string {
	clean := strings.TrimSpace(CleanLine(value))
	switch n := utf8.RuneCountInString(clean); {
	case !utf8.ValidString(value):
		p.Add(field, "must be valid UTF-8")
	case required && clean == "" && strings.TrimSpace(value) != "":
		p.Add(field, "required, and has no text left once HTML tags, comments and control characters are removed")
	case required && clean == "":
		p.Add(field, "required")
	case n > max:
		p.Add(field, "must be at most %d characters, got %d", max, n)
	}
	return clean
}

// Plain refuses a value that cleaning would change, for identifiers and
// keys, which are matched as sent and so are never changed silently.
func (p *Problems) Plain(field, value, what string) {
	if CleanLine(value) != value {
		p.Add(field, "%s must be plain text: no HTML tags or comments, no control characters or line breaks", what)
	}
}

// Email normalizes and checks an email address field, returning the
// normalized address ("" when it has a problem).
func (p *Problems) Email(field, value string) string {
	email := helpdeskflow.NormalizeEmail(value)
	if email == "" {
		p.Add(field, "required")
		return ""
	}
	if n := utf8.RuneCountInString(email); n > MaxEmailLen {
		p.Add(field, "must be at most %d characters, got %d", MaxEmailLen, n)
		return ""
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		p.Add(field, "must be an email address like name@example.com")
		return ""
	}
	return email
}

// OneOf checks that value is one of allowed.
func (p *Problems) OneOf(field, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.Add(field, "must be one of %s", strings.Join(allowed, ", "))
}

// Tags normalizes tags (cleaned as single-line plain text, trimmed,
// lowercased, duplicates dropped, order kept) and checks their count and
// form.
func (p *Problems) Tags(field string, tags []string) []string {
	if len(tags) > MaxTags {
		p.Add(field, "must have at most %d tags, got %d", MaxTags, len(tags))
		return nil
	}
	out := make([]string, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for i, raw := range tags {
		tag := strings.ToLower(strings.TrimSpace(CleanLine(raw)))
		name := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case tag == "" && strings.TrimSpace(raw) != "":
			p.Add(name, "has no text left once HTML tags, comments and control characters are removed")
		case tag == "":
			p.Add(name, "must not be empty")
		case utf8.RuneCountInString(tag) > MaxTagLen:
			p.Add(name, "must be at most %d characters", MaxTagLen)
		case strings.IndexFunc(tag, unicode.IsSpace) >= 0 || strings.Contains(tag, ","):
			p.Add(name, "must not contain white space or commas")
		case !seen[tag]:
			seen[tag] = true
			out = append(out, tag)
		}
	}
	return out
}

// CustomFields checks that custom fields are a bounded map of strings,
// numbers, booleans or nulls with plain-text names, and cleans the string
// values in place (CleanText).
func (p *Problems) CustomFields(field string, fields map[string]any) {
	if len(fields) > MaxCustomFields {
		p.Add(field, "must have at most %d fields, got %d", MaxCustomFields, len(fields))
		return
	}
	// Sorted, so that the problems come in the same order every time.
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		value := fields[key]
		name := field + "." + key
		if key == "" || utf8.RuneCountInString(key) > MaxCustomFieldKey {
			p.Add(name, "field names must be 1 to %d characters", MaxCustomFieldKey)
			continue
		}
		p.Plain(name, key, "the field name")
		switch v := value.(type) {
		case nil, bool, float64:
		case string:
			v = CleanText(v)
			fields[key] = v
			if utf8.RuneCountInString(v) > MaxCustomFieldText {
				p.Add(name, "must be at most %d characters", MaxCustomFieldText)
			}
		default:
			p.Add(name, "must be a string, number, boolean or null")
		}
	}
}

// PlainValues cleans every string in a JSON value (CleanText), however
// deep, in place, and refuses object keys that are not plain text. It
// returns the cleaned value (a string is returned cleaned, as it cannot be
// changed in place).
func (p *Problems) PlainValues(field string, value any) any {
	switch v := value.(type) {
	case string:
		return CleanText(v)
	case map[string]any:
		for _, key := range slices.Sorted(maps.Keys(v)) {
			p.Plain(field+"."+key, key, "the key")
			v[key] = p.PlainValues(field+"."+key, v[key])
		}
	case []any:
		for i := range v {
			v[i] = p.PlainValues(fmt.Sprintf("%s[%d]", field, i), v[i])
		}
	}
	return value
}
