package helpdeskflow

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Error codes. The http package maps each to one HTTP status; the strings are
// part of the public API contract and never change.
const (
	EInvalidJSON      = "invalid_json"
	EValidation       = "validation_failed"
	EKeyInWrongPlace  = "key_in_wrong_place"
	EUnauthorized     = "unauthorized"
	EForbidden        = "forbidden"
	ENotFound         = "not_found"
	EMethodNotAllowed = "method_not_allowed"
	EVersionConflict  = "version_conflict"
	// EPreconditionFailed: the If-Match version is not the current one.
	EPreconditionFailed = "precondition_failed"
	EConflict           = "conflict"
	// EAutomationConflict: automation rules contradict each other or the
	// ticket's state; RuleIDs name the rules, Details each field they
	// conflict over.
	EAutomationConflict = "automation_conflict"
	ERateLimited        = "rate_limited"
	// ELimitExceeded: a documented total (tags or metadata keys per
	// customer, messages per ticket, …) would be passed; Details name the
	// limit and the current count.
	ELimitExceeded   = "limit_exceeded"
	EPayloadTooLarge = "payload_too_large"
	EUnavailable     = "unavailable"
	EInternal        = "internal"
	// EProjectionBehind: a list read asked for a position (min_position)
	// the read model has not reached within the wait it allowed.
	EProjectionBehind = "projection_behind"
)

// Idempotency-Key error codes: EIdempotencyKeyReused when a key is sent
// again with a different request, EIdempotencyKeyInUse while the key's
// first request is still running.
const (
	EIdempotencyKeyReused = "idempotency_key_reused"
	EIdempotencyKeyInUse  = "idempotency_key_in_use"
)

// ErrUnknownEventType is the cause of the EInternal error that ApplyTicket
// and ApplyCustomer return for an event type they do not know (a newer
// producer, not a broken event); test for it with errors.Is.
var ErrUnknownEventType = errors.New("unknown event type")

// FieldProblem names one field of a request and what is wrong with it.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// Error is the application error. Code is one of the E* constants, Message is
// safe to show to API clients, Details lists per-field problems for
// EValidation (and the conflicting fields of EAutomationConflict), RuleIDs
// names the automation rules of an EAutomationConflict, ExistingID names
// the ticket or customer that already holds an external id (EConflict of a
// create), and Err keeps the underlying cause for logs (never shown).
type Error struct {
	Code       string
	Message    string
	Details    []FieldProblem
	RuleIDs    []uuid.UUID
	ExistingID uuid.UUID
	Err        error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorDetails returns the field problems of the first *Error in err's chain.
func ErrorDetails(err error) []FieldProblem {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}

// ErrorRuleIDs returns the automation rule ids of the first *Error in err's
// chain (set on EAutomationConflict).
func ErrorRuleIDs(err error) []uuid.UUID {
	var e *Error
	if errors.As(err, &e) {
		return e.RuleIDs
	}
	return nil
}

// ErrorExistingID returns the id of the ticket or customer that already
// holds an external id, named by the first *Error in err's chain (set on
// the EConflict of a create), and whether there is one.
func ErrorExistingID(err error) (uuid.UUID, bool) {
	var e *Error
	if errors.As(err, &e) && e.ExistingID != uuid.Nil {
		return e.ExistingID, true
	}
	return uuid.Nil, false
}
