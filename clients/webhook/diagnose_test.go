package webhook_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func TestDiagnose_BodyChanged(t *testing.T) {
	var indented bytes.Buffer
	if err := json.Indent(&indented, []byte(testBody), "", "  "); err != nil {
		t.Fatal(err)
	}
	goJSON, err := json.Marshal(map[string]string{"subject": "<b>refund</b> & more"})
	if err != nil {
		t.Fatal(err)
	}
	bom := "\xef\xbb\xbf"
	envelope := `{"id":"evt_1","type":"ticket.created","workspace_id":"w1","occurred_at":"2024-04-24T23:06:40.000Z","data":{"priority":"high","subject":"Refund"}}`
	tests := []struct {
		name     string
		signed   string // the body as HelpDeskFlow signed it
		received string // the body as the receiver checked it
		change   string
	}{
		{"trailing newline added", testBody, testBody + "\n", "a trailing newline was added"},
		{"trailing CRLF added", testBody, testBody + "\r\n", "a trailing newline was added"},
		{"trailing newline removed", testBody + "\n", testBody, "a trailing newline was removed"},
		{"trailing whitespace added", testBody, testBody + " \n\n", "trailing whitespace was added"},
		{"LF to CRLF", "line one\nline two\n", "line one\r\nline two\r\n", "line endings were changed from LF to CRLF"},
		{"CRLF to LF", "line one\r\nline two", "line one\nline two", "line endings were changed from CRLF to LF"},
		{"BOM", testBody, bom + testBody, "a UTF-8 byte order mark was added at the start"},
		{"BOM, CRLF and a trailing newline", "a\nb", bom + "a\r\nb\r\n",
			"a UTF-8 byte order mark was added at the start, and line endings were changed from LF to CRLF, and a trailing newline was added"},
		{"JSON indented", testBody, indented.String(), "the JSON was re-formatted (whitespace or indentation added)"},
		{"JSON indented with a BOM", testBody, bom + indented.String(), "a UTF-8 byte order mark was added at the start, and the JSON was re-formatted (whitespace or indentation added)"},
		{"JSON with Python's separators", testBody, `{"id": "evt_1", "type": "ticket.created"}`, "the JSON was re-formatted (whitespace or indentation added)"},
		{"JSON re-encoded without Go's HTML escapes", string(goJSON), `{"subject":"<b>refund</b> & more"}`,
			`the JSON was parsed and re-encoded (string escapes changed, such as \u00e9 for é or < for \u003c)`},
		{"JSON re-encoded with Python's ensure_ascii", `{"subject":"Café"}`, `{"subject": "Caf\u00e9"}`,
			`the JSON was parsed and re-encoded (string escapes changed, such as \u00e9 for é or < for \u003c)`},
		{"JSON keys sorted by the receiver", envelope,
			`{"data":{"priority":"high","subject":"Refund"},"id":"evt_1","occurred_at":"2024-04-24T23:06:40.000Z","type":"ticket.created","workspace_id":"w1"}`,
			"the JSON was parsed and re-encoded (keys re-ordered)"},
		{"JSON keys sorted by the receiver, indented", envelope,
			"{\n  \"data\": {\"priority\": \"high\", \"subject\": \"Refund\"},\n  \"id\": \"evt_1\",\n  \"occurred_at\": \"2024-04-24T23:06:40.000Z\",\n  \"type\": \"ticket.created\",\n  \"workspace_id\": \"w1\"\n}\n",
			"the JSON was parsed and re-encoded (keys re-ordered)"},
		{"JSON sorted when signed, re-ordered by the receiver", `{"a":1,"b":[{"c":true,"d":null}]}`, `{"b":[{"d":null,"c":true}],"a":1}`,
			"the JSON was parsed and re-encoded (keys re-ordered)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := webhook.Sign([]string{testSecret}, testTime, []byte(tt.signed))
			if err := webhook.Verify(header, []byte(tt.received), testSecret, 0, testTime); err == nil {
				t.Fatal("the changed body verifies; the case tests nothing")
			}
			d := webhook.Diagnose(header, []byte(tt.received), testSecret, 0, testTime.Add(time.Second))
			if got, want := d.Finding, webhook.FindingBodyChanged; got != want {
				t.Fatalf("Finding = %s, want %s\n%s", got, want, d)
			}
			if got, want := d.BodyChange, tt.change; got != want {
				t.Errorf("BodyChange = %q\nwant         %q", got, want)
			}
			if got, want := firstLine(d.String()), "body changed: "+tt.change; got != want {
				t.Errorf("String() starts %q\nwant            %q", got, want)
			}
			if d.OK() {
				t.Error("OK() = true")
			}
		})
	}
}

func TestDiagnose(t *testing.T) {
	body := []byte(testBody)
	signed := webhook.Sign([]string{testSecret}, testTime, body)
	rotated := webhook.Sign([]string{"whsec_new", testSecret}, testTime, body)
	tests := []struct {
		name      string
		header    string
		body      string
		secret    string
		now       time.Time
		finding   webhook.Finding
		first     string   // the first line of String()
		contains  []string // further text String() must contain
		secretFix string
	}{
		{name: "ok", header: signed, secret: testSecret, now: testTime.Add(12 * time.Second),
			finding: webhook.FindingOK, first: "signature OK", contains: []string{"signed 12s ago, tolerance 5m0s"}},
		{name: "ok with the previous secret", header: rotated, secret: testSecret, now: testTime,
			finding: webhook.FindingOK, first: "signature OK", contains: []string{"matched signature 2 of 2"}},
		{name: "stale", header: signed, secret: testSecret, now: testTime.Add(2*time.Hour + 3*time.Minute),
			finding: webhook.FindingStaleTimestamp, first: "stale timestamp: signed 2h3m ago, tolerance 5m0s"},
		{name: "future", header: signed, secret: testSecret, now: testTime.Add(-time.Hour),
			finding: webhook.FindingStaleTimestamp, first: "stale timestamp: signed 1h in the future (is a clock wrong?), tolerance 5m0s"},
		{name: "malformed", header: "t=1700000000", secret: testSecret, now: testTime,
			finding: webhook.FindingMalformedHeader, first: "malformed header: there is no v1=<signature>"},
		{name: "malformed: header name", header: "x-hdf-signature: " + signed, secret: testSecret, now: testTime,
			finding: webhook.FindingMalformedHeader, first: `malformed header: the value starts with the header name "X-HDF-Signature:"; pass only what follows the colon`},
		{name: "wrong secret", header: signed, secret: "whsec_other", now: testTime,
			finding: webhook.FindingWrongSecret, first: "wrong secret: the secret does not match, or the body was changed in a way not recognised"},
		{name: "wrong secret and stale", header: signed, secret: "whsec_other", now: testTime.Add(time.Hour),
			finding: webhook.FindingWrongSecret, first: "wrong secret: the secret does not match, or the body was changed in a way not recognised",
			contains: []string{"also: the timestamp is stale: signed 1h ago, tolerance 5m0s"}},
		{name: "body changed and stale", header: signed, body: testBody + "\n", secret: testSecret, now: testTime.Add(time.Hour),
			finding: webhook.FindingBodyChanged, first: "body changed: a trailing newline was added",
			contains: []string{"also: the timestamp is stale"}},
		{name: "secret with a newline", header: signed, secret: testSecret + "\n", now: testTime,
			finding: webhook.FindingWrongSecret, first: "wrong secret: the signature matches once you remove the whitespace around the secret",
			contains: []string{"hint: the secret has surrounding whitespace"}, secretFix: "remove the whitespace around the secret"},
		{name: "secret without its prefix", header: signed, secret: "test", now: testTime,
			finding: webhook.FindingWrongSecret, first: "wrong secret: the signature matches once you add the whsec_ prefix to the secret (it is part of the key)",
			contains: []string{"hint: the secret does not start with whsec_"}, secretFix: "add the whsec_ prefix to the secret (it is part of the key)"},
		{name: "secret without its prefix, with spaces, body changed", header: signed, body: testBody + "\n", secret: " test ", now: testTime,
			finding: webhook.FindingWrongSecret, first: "wrong secret: the signature matches once you remove the whitespace around the secret and add the whsec_ prefix to the secret (it is part of the key)",
			contains: []string{"and the body changed too: a trailing newline was added"}},
		{name: "wrong secret that lacks the prefix", header: signed, secret: "other", now: testTime,
			finding: webhook.FindingWrongSecret, first: "wrong secret: the secret does not match, or the body was changed in a way not recognised",
			contains: []string{"hint: the secret does not start with whsec_"}},
		{name: "empty secret", header: signed, secret: "", now: testTime,
			finding: webhook.FindingWrongSecret, contains: []string{"hint: the secret is empty"}},
		{name: "empty body", header: signed, body: "-", secret: testSecret, now: testTime,
			finding: webhook.FindingWrongSecret, contains: []string{"hint: the body is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body
			switch tt.body {
			case "":
			case "-":
				b = nil
			default:
				b = []byte(tt.body)
			}
			d := webhook.Diagnose(tt.header, b, tt.secret, 0, tt.now)
			s := d.String()
			if got, want := d.Finding, tt.finding; got != want {
				t.Fatalf("Finding = %s, want %s\n%s", got, want, s)
			}
			if got, want := d.OK(), tt.finding == webhook.FindingOK; got != want {
				t.Errorf("OK() = %t, want %t", got, want)
			}
			if tt.first != "" && firstLine(s) != tt.first {
				t.Errorf("String() starts %q\nwant            %q", firstLine(s), tt.first)
			}
			for _, c := range tt.contains {
				if !strings.Contains(s, c) {
					t.Errorf("String() does not contain %q:\n%s", c, s)
				}
			}
			if got, want := d.SecretFix, tt.secretFix; got != want && tt.secretFix != "" {
				t.Errorf("SecretFix = %q, want %q", got, want)
			}
			// Diagnose and Verify agree on whether it verifies.
			err := webhook.Verify(tt.header, b, tt.secret, 0, tt.now)
			if got, want := err == nil, d.OK(); got != want {
				t.Errorf("Verify = %v but Diagnose OK() = %t", err, d.OK())
			}
		})
	}
}
