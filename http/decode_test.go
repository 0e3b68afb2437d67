package http

import (
	"net/http/httptest"
	"reflect"
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

// validatedBody is a body with its own validation, as the commands' are.
type validatedBody struct {
	Subject  string   `json:"subject"`
	Count    int      `json:"count"`
	Tags     []string `json:"tags"`
	Customer struct {
		Email string `json:"email"`
	} `json:"customer"`
}

func (b *validatedBody) Validate() error {
	var p []helpdeskflow.FieldProblem
	if b.Subject == "" {
		p = append(p, helpdeskflow.FieldProblem{Field: "subject", Problem: "required"})
	}
	if !strings.Contains(b.Customer.Email, "@") {
		p = append(p, helpdeskflow.FieldProblem{Field: "customer.email", Problem: "must be an email address"})
	}
	if b.Count > 10 {
		p = append(p, helpdeskflow.FieldProblem{Field: "count", Problem: "at most 10"})
	}
	if len(p) == 0 {
		return nil
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid", Details: p}
}

func TestDecodeJSON_EveryProblemAtOnce(t *testing.T) {
	cases := []struct {
		name, in string
		want     []helpdeskflow.FieldProblem
	}{
		{"types, unknown fields and validation", `{"subject": 5, "subjekt": "s", "tags": ["a", {}], "customer": {"email": "x", "mail": 1}, "count": 11}`,
			[]helpdeskflow.FieldProblem{{Field: "subject", Problem: "must be a string, got a number"}, {Field: "subjekt", Problem: "unknown field"},
				{Field: "tags[1]", Problem: "must be a string, got an object"}, {Field: "customer.mail", Problem: "unknown field"},
				{Field: "customer.email", Problem: "must be an email address"}, {Field: "count", Problem: "at most 10"}}},
		{"an object of the wrong type hides its fields' validation", `{"subject": "s", "customer": [], "count": 1.5}`,
			[]helpdeskflow.FieldProblem{{Field: "customer", Problem: "must be an object, got an array"}, {Field: "count", Problem: "must be an integer, got number 1.5"}}},
		{"names in another case", `{"SUBJECT": "s", "Customer": {"Email": 3}}`,
			[]helpdeskflow.FieldProblem{{Field: "customer.email", Problem: "must be a string, got a number"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v validatedBody
			err := decodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(tc.in)), &v)
			if got := helpdeskflow.ErrorCode(err); got != helpdeskflow.EValidation {
				t.Fatalf("code = %q (%v), want validation_failed", got, err)
			}
			if got := helpdeskflow.ErrorDetails(err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("details =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}
