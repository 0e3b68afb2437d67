package helpdeskflow

import (
	"encoding/json"
	"sort"
)

// createdFieldChanges lists the members of a creation event's data, each
// changed from null to its value as written, sorted by name. Data is the
// stored data: valid JSON, which Postgres checks when the event is
// appended. It splits the top-level object itself, which takes a fraction
// of the CPU of decoding it into a map (the audit describes every
// creation this way); anything it does not expect (not an object, a key
// with an escape or a byte beyond ASCII) goes to json.Unmarshal, so the
// result is what decoding into a map gives. The values share data's memory.
func createdFieldChanges(e Event) ([]FieldChange, error) {
	if changes, ok := splitMembers(e.Data); ok {
		return changes, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
	}
	changes := make([]FieldChange, 0, len(fields))
	for name, value := range fields {
		changes = append(changes, FieldChange{Field: name, Old: json.RawMessage("null"), New: value})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
	return changes, nil
}

// splitMembers splits a JSON object into its members as field changes
// from null, sorted by name, a repeated name keeping its last value (as
// decoding into a map does); false when data is not an object whose keys
// are plain ASCII or when its structure ends early.
func splitMembers(data []byte) ([]FieldChange, bool) {
	s := memberScanner{data: data}
	if !s.next('{') {
		return nil, false
	}
	changes := make([]FieldChange, 0, 16)
	if !s.next('}') {
		for {
			key, ok := s.key()
			if !ok || !s.next(':') {
				return nil, false
			}
			s.space()
			start := s.i
			if !s.skipValue() {
				return nil, false
			}
			changes = append(changes, FieldChange{Field: key, Old: json.RawMessage("null"), New: json.RawMessage(data[start:s.i:s.i])})
			if s.next('}') {
				break
			}
			if !s.next(',') {
				return nil, false
			}
		}
	}
	s.space()
	if s.i != len(data) {
		return nil, false
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
	// A repeated name: the last value wins, as in a map.
	out := changes[:0]
	for i, c := range changes {
		if i+1 < len(changes) && changes[i+1].Field == c.Field {
			continue
		}
		out = append(out, c)
	}
	return out, true
}

// memberScanner walks JSON that is known to be valid.
type memberScanner struct {
	data []byte
	i    int
}

func (s *memberScanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c; false when c does not follow.
func (s *memberScanner) next(c byte) bool {
	s.space()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// key reads a member's name: a string of printable ASCII without escapes.
func (s *memberScanner) key() (string, bool) {
	if !s.next('"') {
		return "", false
	}
	for j := s.i; j < len(s.data); j++ {
		switch c := s.data[j]; {
		case c == '"':
			k := string(s.data[s.i:j])
			s.i = j + 1
			return k, true
		case c == '\\' || c < ' ' || c > '~':
			return "", false
		}
	}
	return "", false
}

// skipValue moves past one value: a string (escapes included), an object
// or array (the strings inside them included), or a number or literal.
func (s *memberScanner) skipValue() bool {
	if s.i >= len(s.data) {
		return false
	}
	switch s.data[s.i] {
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
		s.i++
	}
	return false
}

// skipString moves past a string starting at s.i.
func (s *memberScanner) skipString() bool {
	for j := s.i + 1; j < len(s.data); j++ {
		switch s.data[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return true
		}
	}
	return false
}
