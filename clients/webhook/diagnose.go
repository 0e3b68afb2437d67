package webhook

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Finding is Diagnose's verdict.
type Finding string

// Diagnose's findings.
const (
	// FindingOK: a signature matches and the timestamp is within tolerance.
	FindingOK Finding = "ok"
	// FindingMalformedHeader: the header cannot be parsed; Problem says why.
	FindingMalformedHeader Finding = "malformed_header"
	// FindingStaleTimestamp: a signature matches, but the signed time is
	// further from now than the tolerance.
	FindingStaleTimestamp Finding = "stale_timestamp"
	// FindingBodyChanged: the signature matches a recognisably changed
	// variant of the body; BodyChange says which change.
	FindingBodyChanged Finding = "body_changed"
	// FindingWrongSecret: no variant of the body matches with the secret as
	// given (the wrong secret, or a change not recognised); Hints may say
	// what looks wrong with the secret, and SecretFix is set when a cleaned
	// secret does match.
	FindingWrongSecret Finding = "wrong_secret"
)

// Diagnosis is Diagnose's explanation of a signature check, for humans.
// String renders it in words.
type Diagnosis struct {
	Finding Finding
	// Problem says what is wrong with a malformed header.
	Problem string
	// Timestamp is the signed time; Age is now minus it (negative when it
	// lies in the future), Tolerance the tolerance used, and Stale says
	// whether |Age| exceeds it (also reported when the signature fails).
	Timestamp time.Time
	Age       time.Duration
	Tolerance time.Duration
	Stale     bool
	// Signatures is how many v1 signatures the header holds; Matched is
	// the 1-based position of the one that matched (2 during a rotation
	// means the previous secret's), 0 when none did.
	Signatures int
	Matched    int
	// BodyChange describes how the body differs from the signed one, such
	// as "a trailing newline was added".
	BodyChange string
	// SecretFix describes the correction to the secret under which the
	// signature matches, such as "remove the whitespace around the secret".
	SecretFix string
	// Hints are further observations, such as an empty body.
	Hints []string
}

// OK reports whether the signature verifies.
func (d Diagnosis) OK() bool { return d.Finding == FindingOK }

// String renders the diagnosis as a first line saying the finding (such as
// "signature OK", "stale timestamp: signed 2h3m ago, tolerance 5m0s" or
// "body changed: a trailing newline was added"), followed by lines of
// further detail and hints.
func (d Diagnosis) String() string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	switch d.Finding {
	case FindingOK:
		line("signature OK")
	case FindingMalformedHeader:
		line("malformed header: %s", d.Problem)
	case FindingStaleTimestamp:
		line("stale timestamp: %s", d.ageText())
	case FindingBodyChanged:
		line("body changed: %s", d.BodyChange)
		line("verify the raw request body exactly as received, before any parsing or re-encoding")
	case FindingWrongSecret:
		if d.SecretFix != "" {
			line("wrong secret: the signature matches once you %s", d.SecretFix)
			if d.BodyChange != "" {
				line("and the body changed too: %s", d.BodyChange)
			}
		} else {
			line("wrong secret: the secret does not match, or the body was changed in a way not recognised")
		}
	default:
		line("%s", d.Finding)
	}
	if d.Finding != FindingMalformedHeader {
		if d.Matched > 0 && d.Signatures > 1 {
			line("matched signature %d of %d (the header carries one per secret during a rotation; the first is the newest)", d.Matched, d.Signatures)
		}
		if d.Finding != FindingStaleTimestamp {
			if d.Stale {
				line("also: the timestamp is stale: %s", d.ageText())
			} else {
				line("timestamp %s: %s", d.Timestamp.UTC().Format(time.RFC3339), d.ageText())
			}
		}
	}
	for _, h := range d.Hints {
		line("hint: %s", h)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (d Diagnosis) ageText() string {
	return fmt.Sprintf("%s, tolerance %s", d.relativeAge(), d.Tolerance)
}

func (d Diagnosis) relativeAge() string {
	if d.Age < 0 {
		return "signed " + formatAge(-d.Age) + " in the future (is a clock wrong?)"
	}
	return "signed " + formatAge(d.Age) + " ago"
}

// Diagnose explains, for a human, whether and why header does not verify
// for body and secret, as Verify would decide it (tolerance <= 0 means
// DefaultTolerance). When no signature matches it re-checks the signature
// over variants of the body that common mistakes produce — a trailing
// newline added or removed, LF turned into CRLF or back, a UTF-8 byte
// order mark, JSON re-encoded compactly, indented, with Python's
// separators, with different string escapes or sorted keys — and over the
// secret without surrounding whitespace or with the whsec_ prefix it lacks,
// and reports the first that matches. It does not change its arguments and
// is not meant for the request path: it computes dozens of HMACs.
func Diagnose(header string, body []byte, secret string, tolerance time.Duration, now time.Time) Diagnosis {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	d := Diagnosis{Tolerance: tolerance}
	h, err := parseHeader(header)
	if err != nil {
		var ve *VerifyError
		errors.As(err, &ve)
		d.Finding, d.Problem = FindingMalformedHeader, ve.Detail
		return d
	}
	d.Signatures = len(h.v1)
	return diagnoseMatch(d, h.time(), now, body, secret, h.match)
}

// DiagnoseStandard is Diagnose for the Standard Webhooks headers (the
// values of webhook-id, webhook-timestamp and webhook-signature), as
// VerifyStandard would decide them, with the same variants of the body and
// the secret. It adds a hint when the secret is not one the Standard
// Webhooks libraries accept (a secret issued before HelpDeskFlow followed
// the spec: rotate it).
func DiagnoseStandard(msgID, timestamp, signature string, body []byte, secret string, tolerance time.Duration, now time.Time) Diagnosis {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	d := Diagnosis{Tolerance: tolerance}
	h, err := parseStandard(msgID, timestamp, signature)
	if err != nil {
		var ve *VerifyError
		errors.As(err, &ve)
		d.Finding, d.Problem = FindingMalformedHeader, ve.Detail
		return d
	}
	d.Signatures = len(h.v1)
	d = diagnoseMatch(d, time.Unix(h.unix, 0), now, body, secret, h.match)
	if t := strings.TrimSpace(secret); t != "" && !IsStandardSecret(t) {
		d.Hints = append(d.Hints, "the secret is not "+SecretPrefix+" followed by standard base64, which the Standard Webhooks libraries require: a secret issued before HelpDeskFlow followed the spec; rotate it (POST /v1/webhooks/{id}/rotate-secret)")
	}
	return d
}

// diagnoseMatch completes d (the parsed signature count set) for a
// signature signed at signed: match returns the 1-based index of the
// signature that body signed with secret matches, or 0.
func diagnoseMatch(d Diagnosis, signed, now time.Time, body []byte, secret string, match func(secret string, body []byte) int) Diagnosis {
	d.Timestamp = signed
	d.Age = now.Sub(d.Timestamp)
	d.Stale = d.Age > d.Tolerance || d.Age < -d.Tolerance
	d.Hints = secretHints(secret)
	if len(body) == 0 {
		d.Hints = append(d.Hints, "the body is empty: was the request body read (or parsed) before it was verified?")
	}

	if secret != "" {
		if d.Matched = match(secret, body); d.Matched > 0 {
			d.Finding = FindingOK
			if d.Stale {
				d.Finding = FindingStaleTimestamp
			}
			return d
		}
	}
	variants := bodyVariants(body)
	for _, s := range secretVariants(secret) {
		for _, v := range variants {
			if s.fix == "" && v.change == "" {
				continue // checked above
			}
			if n := match(s.secret, v.body); n > 0 {
				d.Matched, d.BodyChange, d.SecretFix = n, v.change, s.fix
				d.Finding = FindingBodyChanged
				if s.fix != "" {
					d.Finding = FindingWrongSecret
				}
				return d
			}
		}
	}
	d.Finding = FindingWrongSecret
	return d
}

type secretVariant struct{ secret, fix string }

func secretVariants(secret string) []secretVariant {
	var out []secretVariant
	if secret != "" {
		out = append(out, secretVariant{secret, ""})
	}
	trimmed := strings.TrimSpace(secret)
	if trimmed != secret && trimmed != "" {
		out = append(out, secretVariant{trimmed, "remove the whitespace around the secret"})
	}
	if trimmed != "" && !strings.HasPrefix(trimmed, SecretPrefix) {
		fix := "add the " + SecretPrefix + " prefix to the secret (it is part of the key)"
		if trimmed != secret {
			fix = "remove the whitespace around the secret and " + fix
		}
		out = append(out, secretVariant{SecretPrefix + trimmed, fix})
	}
	return out
}

func secretHints(secret string) []string {
	var hints []string
	trimmed := strings.TrimSpace(secret)
	switch {
	case secret == "":
		return []string{"the secret is empty"}
	case trimmed == "":
		return []string{"the secret is only whitespace"}
	}
	if trimmed != secret {
		hints = append(hints, fmt.Sprintf("the secret has surrounding whitespace (%q); the key is the secret exactly as shown when the webhook was created", secret))
	}
	if !strings.HasPrefix(trimmed, SecretPrefix) {
		hints = append(hints, "the secret does not start with "+SecretPrefix+"; webhook secrets do, and the prefix is part of the HMAC key")
	}
	return hints
}

type bodyVariant struct {
	body   []byte
	change string
}

// bodyVariants returns guesses at the body as signed, each with how the
// given body would have been derived from it; the identity is first.
func bodyVariants(body []byte) []bodyVariant {
	var out []bodyVariant
	seen := map[string]bool{}
	add := func(b []byte, change ...string) {
		var parts []string
		for _, c := range change {
			if c != "" {
				parts = append(parts, c)
			}
		}
		if seen[string(b)] {
			return
		}
		seen[string(b)] = true
		out = append(out, bodyVariant{b, strings.Join(parts, ", and ")})
	}

	type step struct {
		apply  func([]byte) []byte
		change string
	}
	identity := step{func(b []byte) []byte { return b }, ""}
	boms := []step{identity, {func(b []byte) []byte {
		if rest, ok := bytes.CutPrefix(b, bom); ok {
			return rest
		}
		return nil
	}, "a UTF-8 byte order mark was added at the start"}}
	newlines := []step{identity,
		{func(b []byte) []byte {
			if !bytes.Contains(b, []byte("\r\n")) {
				return nil
			}
			return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		}, "line endings were changed from LF to CRLF"},
		{func(b []byte) []byte {
			if !bytes.Contains(b, []byte("\n")) || bytes.Contains(b, []byte("\r\n")) {
				return nil
			}
			return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
		}, "line endings were changed from CRLF to LF"},
	}
	trailing := []step{identity,
		{func(b []byte) []byte {
			if rest, ok := bytes.CutSuffix(b, []byte("\r\n")); ok {
				return rest
			}
			if rest, ok := bytes.CutSuffix(b, []byte("\n")); ok {
				return rest
			}
			return nil
		}, "a trailing newline was added"},
		{func(b []byte) []byte { return append(bytes.Clone(b), '\n') }, "a trailing newline was removed"},
		{func(b []byte) []byte {
			t := bytes.TrimRight(b, " \t\r\n")
			if len(t) == len(b) || len(b)-len(t) == 1 {
				return nil
			}
			return t
		}, "trailing whitespace was added"},
	}
	for _, s1 := range boms {
		b1 := s1.apply(body)
		if b1 == nil {
			continue
		}
		for _, s2 := range newlines {
			b2 := s2.apply(b1)
			if b2 == nil {
				continue
			}
			for _, s3 := range trailing {
				if b3 := s3.apply(b2); b3 != nil {
					add(b3, s1.change, s2.change, s3.change)
				}
			}
		}
	}

	// JSON re-encodings: the given body parsed and written again by
	// the receiver's framework; the signed one is Go's compact encoding.
	core := bytes.TrimSpace(bytes.TrimPrefix(body, bom))
	if !json.Valid(core) {
		return out
	}
	prefix := ""
	if bytes.HasPrefix(body, bom) {
		prefix = "a UTF-8 byte order mark was added at the start"
	}
	var compact bytes.Buffer
	if json.Compact(&compact, core) == nil {
		add(compact.Bytes(), prefix, "the JSON was re-formatted (whitespace or indentation added)")
	}
	tree, err := parseJSON(core)
	if err != nil {
		return out
	}
	const (
		escapes = "the JSON was parsed and re-encoded (string escapes changed, such as \\u00e9 for é or < for \\u003c)"
		order   = "the JSON was parsed and re-encoded (keys re-ordered)"
	)
	for _, v := range []struct {
		style  jsonStyle
		change string
	}{
		{jsonStyle{escapeHTML: true}, escapes},
		{jsonStyle{}, escapes},
		// A receiver that sorts keys: the envelope's own order at the
		// top, the data's (often sorted already) below.
		{jsonStyle{escapeHTML: true, envelopeOrder: true}, order},
		{jsonStyle{envelopeOrder: true}, order},
		{jsonStyle{escapeHTML: true, envelopeOrder: true, sortKeys: true}, order},
		{jsonStyle{escapeHTML: true, sortKeys: true}, order},
		{jsonStyle{sortKeys: true}, order},
	} {
		var buf bytes.Buffer
		tree.encode(&buf, v.style, true)
		add(buf.Bytes(), prefix, v.change)
	}
	return out
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// envelopeKeys is the order of a delivery's top-level keys.
var envelopeKeys = []string{"id", "type", "schema_version", "workspace_id", "occurred_at", "data"}

type jsonStyle struct {
	escapeHTML    bool
	sortKeys      bool // every object's keys sorted (Go's map encoding)
	envelopeOrder bool // the top-level object's keys in envelopeKeys order
}

// jsonNode is a parsed JSON value that keeps the order of object keys and
// the text of numbers.
type jsonNode struct {
	delim  json.Delim // '{' or '[' for a container, 0 for a scalar
	keys   []string
	values []*jsonNode
	scalar any // string, json.Number, bool or nil
}

func parseJSON(data []byte) (*jsonNode, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parseJSONValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return n, nil
}

func parseJSONValue(dec *json.Decoder, depth int) (*jsonNode, error) {
	if depth > 1000 {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return &jsonNode{scalar: tok}, nil
	}
	n := &jsonNode{delim: d}
	for dec.More() {
		if d == '{' {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := k.(string)
			n.keys = append(n.keys, key)
		}
		v, err := parseJSONValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		n.values = append(n.values, v)
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return nil, err
	}
	return n, nil
}

// encode writes n compactly as Go's encoder would in style.
func (n *jsonNode) encode(buf *bytes.Buffer, style jsonStyle, top bool) {
	switch n.delim {
	case '[':
		buf.WriteByte('[')
		for i, v := range n.values {
			if i > 0 {
				buf.WriteByte(',')
			}
			v.encode(buf, style, false)
		}
		buf.WriteByte(']')
		return
	case '{':
		idx := make([]int, len(n.keys))
		for i := range idx {
			idx[i] = i
		}
		rank := func(i int) int {
			if top && style.envelopeOrder {
				if r := slices.Index(envelopeKeys, n.keys[i]); r >= 0 {
					return r
				}
				return len(envelopeKeys)
			}
			return 0
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			if c := cmp.Compare(rank(a), rank(b)); c != 0 || !style.sortKeys {
				return c
			}
			return strings.Compare(n.keys[a], n.keys[b])
		})
		buf.WriteByte('{')
		for j, i := range idx {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(encodeString(n.keys[i], style.escapeHTML))
			buf.WriteByte(':')
			n.values[i].encode(buf, style, false)
		}
		buf.WriteByte('}')
		return
	}
	switch v := n.scalar.(type) {
	case string:
		buf.Write(encodeString(v, style.escapeHTML))
	case json.Number:
		buf.WriteString(v.String())
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	default:
		buf.WriteString("null")
	}
}

func encodeString(s string, escapeHTML bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
