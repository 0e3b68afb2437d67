package http

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/helpdeskflow/helpdeskflow"
)

// codes maps every error code to its HTTP status; this is the only place
// that decides it.
var codes = map[string]int{
	helpdeskflow.EInvalidJSON:        http.StatusBadRequest,
	helpdeskflow.EValidation:         http.StatusBadRequest,
	helpdeskflow.EKeyInWrongPlace:    http.StatusBadRequest,
	helpdeskflow.EUnauthorized:       http.StatusUnauthorized,
	helpdeskflow.EForbidden:          http.StatusForbidden,
	helpdeskflow.ENotFound:           http.StatusNotFound,
	helpdeskflow.EMethodNotAllowed:   http.StatusMethodNotAllowed,
	helpdeskflow.EVersionConflict:    http.StatusConflict,
	helpdeskflow.EPreconditionFailed: http.StatusPreconditionFailed,
	helpdeskflow.EConflict:           http.StatusConflict,
	helpdeskflow.EAutomationConflict: http.StatusConflict,
	helpdeskflow.EPayloadTooLarge:    http.StatusRequestEntityTooLarge,
	helpdeskflow.ERateLimited:        http.StatusTooManyRequests,
	helpdeskflow.EUnavailable:        http.StatusServiceUnavailable,
	helpdeskflow.EProjectionBehind:   http.StatusServiceUnavailable,
	helpdeskflow.EInternal:           http.StatusInternalServerError,

	helpdeskflow.ELimitExceeded:        http.StatusUnprocessableEntity,
	helpdeskflow.EIdempotencyKeyReused: http.StatusUnprocessableEntity,
	helpdeskflow.EIdempotencyKeyInUse:  http.StatusConflict,
}

// StatusOf returns the HTTP status for err's code.
func StatusOf(err error) int {
	if status, ok := codes[helpdeskflow.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

// errorDetail is the error object of an answer. RuleIDs is set on
// automation_conflict only: the rules involved, beside the code.
// ExistingID is set on the conflict of a create whose external_id a
// ticket or customer holds already: that one's id.
type errorDetail struct {
	Code       string                      `json:"code"`
	Message    string                      `json:"message"`
	RuleIDs    []string                    `json:"rule_ids,omitempty"`
	ExistingID string                      `json:"existing_id,omitempty"`
	Details    []helpdeskflow.FieldProblem `json:"details,omitempty"`
	RequestID  string                      `json:"request_id"`
}

// toErrorDetail is err as the error object of an answer to r.
func toErrorDetail(r *http.Request, err error) errorDetail {
	d := errorDetail{Code: helpdeskflow.ErrorCode(err), Message: helpdeskflow.ErrorMessage(err),
		Details: helpdeskflow.ErrorDetails(err), RequestID: requestIDOf(r.Context())}
	if d.Code == helpdeskflow.EAutomationConflict {
		d.RuleIDs = ruleIDs(err)
	}
	if id, ok := helpdeskflow.ErrorExistingID(err); ok {
		d.ExistingID = id.String()
	}
	return d
}

// writeError answers with err's status and the error body. Causes of
// internal errors are logged, never shown.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status := StatusOf(err)
	code := helpdeskflow.ErrorCode(err)
	// projection_behind is the answer a client asked for (min_position,
	// max_wait), not a failure to log.
	if status >= 500 && code != helpdeskflow.EProjectionBehind {
		logRequest(r.Context(), logger, slog.LevelError, "request failed", "method", r.Method, "path", r.URL.Path,
			"code", code, helpdeskflow.LogError, err)
	}
	if code == helpdeskflow.EAutomationConflict {
		// The guide promises that logs show the rules involved.
		logRequest(r.Context(), logger, slog.LevelWarn, "automation conflict", "method", r.Method, "path", r.URL.Path,
			"rule_ids", ruleIDs(err), helpdeskflow.LogError, helpdeskflow.ErrorMessage(err))
	}
	writeJSON(w, status, errorBody{Error: toErrorDetail(r, err)})
}

// ruleIDs returns the rule ids an EAutomationConflict names, never nil.
func ruleIDs(err error) []string {
	ids := helpdeskflow.ErrorRuleIDs(err)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// encodeJSON is body as writeJSON writes it.
func encodeJSON(body any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(body) //nolint:errcheck // the API's JSON types always encode
	return b.Bytes()
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Message bodies are HTML: keep them readable rather than \u003c-escaped
	// (the answer is application/json, never rendered as HTML).
	enc.SetEscapeHTML(false)
	enc.Encode(body) //nolint:errcheck // the client went away; nothing to do
}

// writeListOf is writeList for items, each shown as toJSON shows it; no
// items is an empty list, never null.
func writeListOf[T, J any](w http.ResponseWriter, items []T, toJSON func(T) J, next string) {
	data := make([]J, len(items))
	for i, item := range items {
		data[i] = toJSON(item)
	}
	writeList(w, data, next)
}

// writeList answers 200 with a list page: {"data": data, "next_cursor":
// next, or null on the last page}.
func writeList(w http.ResponseWriter, data any, next string) {
	var cursor *string
	if next != "" {
		cursor = &next
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": cursor})
}
