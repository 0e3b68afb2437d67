package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/helpdeskflow/helpdeskflow"
)

// MaxBodyBytes is the largest request body accepted; larger ones are
// refused with 413 payload_too_large before any parsing.
const MaxBodyBytes = 1 << 20

// validator is a request body that can check its own fields without
// looking anything up (the commands' bodies), listing every problem as
// EValidation.
type validator interface {
	Validate() error
}

// decodeJSON reads r's body into v. It refuses, in this order: a body over
// MaxBodyBytes (EPayloadTooLarge), malformed JSON or anything but an
// object (EInvalidJSON naming line and column), a top-level api_key field
// (EKeyInWrongPlace: keys go in the Authorization header only). When the
// body then does not decode into v (an unknown field, a value of the wrong
// type), every such problem is found at once (see jsonCheck), the rest of
// the body is decoded and, when v is a validator, checked too, and the
// answer is one EValidation naming every problem: the decoding ones, and
// the validation ones of the fields that did decode.
func decodeJSON(r *http.Request, v any) error {
	body, err := readBody(r, MaxBodyBytes)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// decodeBody is decodeJSON on a body already read: a request's, or one
// item of a batch request's.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return helpdeskflow.Errorf(helpdeskflow.EInvalidJSON, "the request body is empty; send a JSON object")
	}
	// Nearly every request decodes at once. A struct refuses unknown
	// fields, so a body that decodes into one has no api_key; the checks
	// below run, in their order, for the rest.
	if reflect.TypeOf(v).Elem().Kind() == reflect.Struct {
		if err := decodeStrict(body, v); err == nil {
			return nil
		}
		reflect.ValueOf(v).Elem().SetZero() // the failed decoding filled in part of it
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return jsonError(body, err)
	}
	if _, ok := top["api_key"]; ok {
		return helpdeskflow.Errorf(helpdeskflow.EKeyInWrongPlace, "API keys are accepted only in the Authorization header (Bearer), never in the body")
	}
	err := decodeStrict(body, v)
	if err == nil {
		return nil
	}
	var check jsonCheck
	decodable, _ := check.value("", bytes.TrimSpace(body), reflect.TypeOf(v).Elem())
	if len(check.problems) == 0 {
		return err // not expected: the walk finds what decoding finds
	}
	problems := check.problems
	target := reflect.ValueOf(v).Elem()
	target.SetZero() // the failed decoding filled in part of it
	if decodeStrict(decodable, v) == nil {
		if val, ok := v.(validator); ok {
			err := val.Validate()
			if helpdeskflow.ErrorCode(err) == helpdeskflow.EValidation {
				for _, p := range helpdeskflow.ErrorDetails(err) {
					if !under(p.Field, check.problems) {
						problems = append(problems, p)
					}
				}
			}
		}
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details", Details: problems}
}

// decodeStrict decodes body into v, refusing unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err)
	}
	return nil
}

// under reports whether field is one of the fields of problems or inside
// one of them (customer.email is inside customer, tags[1] inside tags):
// its validation problem would only repeat that the value did not decode.
func under(field string, problems []helpdeskflow.FieldProblem) bool {
	for _, p := range problems {
		if field == p.Field || strings.HasPrefix(field, p.Field+".") || strings.HasPrefix(field, p.Field+"[") {
			return true
		}
	}
	return false
}

// readBody reads r's whole body, refusing one over limit bytes
// (EPayloadTooLarge) before reading more than that.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge(limit)
		}
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInvalidJSON, Message: "could not read the request body", Err: err}
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return helpdeskflow.Errorf(helpdeskflow.EPayloadTooLarge, "the request body is larger than %d bytes", limit)
}

// jsonError turns a decoding error into the client's error: where the
// syntax breaks, or which field has the wrong type or is unknown.
func jsonError(body []byte, err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		// Offset counts the offending byte itself; point at it.
		line, col := lineColumn(body, max(syntaxErr.Offset-1, 0))
		return &helpdeskflow.Error{Code: helpdeskflow.EInvalidJSON,
			Message: fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col, syntaxErr.Error()), Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := lineColumn(body, int64(len(body)))
		return &helpdeskflow.Error{Code: helpdeskflow.EInvalidJSON,
			Message: fmt.Sprintf("malformed JSON at line %d, column %d: unexpected end of input", line, col), Err: err}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &helpdeskflow.Error{Code: helpdeskflow.EInvalidJSON, Message: "the request body must be a JSON object", Err: err}
		}
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details", Err: err,
			Details: []helpdeskflow.FieldProblem{{Field: typeErr.Field, Problem: "must be " + goKind(typeErr.Type) + ", got " + typeErr.Value}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details", Err: err,
			Details: []helpdeskflow.FieldProblem{{Field: field, Problem: "unknown field"}}}
	default:
		return &helpdeskflow.Error{Code: helpdeskflow.EInvalidJSON, Message: "malformed JSON: " + err.Error(), Err: err}
	}
}

// lineColumn returns the 1-based line and column of byte offset in body.
func lineColumn(body []byte, offset int64) (int, int) {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	before := body[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// bodyHasAPIKey reports whether r's body is a JSON object with a top-level
// api_key field. It is asked only for requests without a usable key, to
// tell the client where the key went wrong; it reads at most MaxBodyBytes.
func bodyHasAPIKey(r *http.Request) bool {
	if r.Body == nil || r.ContentLength > MaxBodyBytes {
		return false
	}
	// The body of a request without a valid key is never decoded as a
	// command: its top-level keys are read as a stream, values skipped
	// token by token, until api_key turns up or the object ends.
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBodyBytes))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if key == "api_key" {
			return true
		}
		if skipJSONValue(dec) != nil {
			return false
		}
	}
	return false
}

// skipJSONValue reads past the next value of dec.
func skipJSONValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
