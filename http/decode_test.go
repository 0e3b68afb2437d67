package http

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Subject string `json:"subject"`
		Nested  struct {
			Email string `json:"email"`
		} `json:"customer"`
		Tags []string `json:"tags"`
	}
	cases := []struct {
		name, in       string
		code, contains string
	}{
		{"valid", `{"subject": "s", "customer": {"email": "e"}, "tags": ["a"]}`, "", ""},
		{"empty body", ``, helpdeskflow.EInvalidJSON, "empty"},
		{"syntax error on line 2", "{\n \"subject\" \"s\"}", helpdeskflow.EInvalidJSON, "line 2, column 12"},
		{"truncated", "{\"subject\": \"s\"", helpdeskflow.EInvalidJSON, "unexpected end of JSON input"},
		{"not an object", `["a"]`, helpdeskflow.EInvalidJSON, "JSON object"},
		{"trailing comma", `{"subject": "s",}`, helpdeskflow.EInvalidJSON, "line 1, column 17"},
		{"wrong type", `{"subject": 1}`, helpdeskflow.EValidation, "subject"},
		{"wrong nested type", `{"customer": {"email": true}}`, helpdeskflow.EValidation, "customer.email"},
		{"wrong list item type", `{"tags": [1]}`, helpdeskflow.EValidation, "tags"},
		{"unknown field", `{"subjekt": "s"}`, helpdeskflow.EValidation, "subjekt"},
		{"key in body", `{"api_key": "hdf_x"}`, helpdeskflow.EKeyInWrongPlace, "Authorization"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
			var v body
			err := decodeJSON(r, &v)
			if got := helpdeskflow.ErrorCode(err); got != tc.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tc.code)
			}
			text := helpdeskflow.ErrorMessage(err)
			for _, d := range helpdeskflow.ErrorDetails(err) {
				text += " " + d.Field + ": " + d.Problem
			}
			if tc.code != "" && !strings.Contains(text, tc.contains) {
				t.Errorf("error %q does not mention %q", text, tc.contains)
			}
		})
	}

	t.Run("too large by Content-Length", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
		r.ContentLength = MaxBodyBytes + 1
		if got := helpdeskflow.ErrorCode(decodeJSON(r, &struct{}{})); got != helpdeskflow.EPayloadTooLarge {
			t.Errorf("code = %q, want payload_too_large", got)
		}
	})
	t.Run("too large without Content-Length", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(`{"subject": "`+strings.Repeat("a", MaxBodyBytes)+`"}`))
		r.ContentLength = -1
		if got := helpdeskflow.ErrorCode(decodeJSON(r, &struct{}{})); got != helpdeskflow.EPayloadTooLarge {
			t.Errorf("code = %q, want payload_too_large", got)
		}
	})
}
