package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	slackapi "github.com/slack-go/slack"
)

// Outcome is what a Slack call's result means for the integration, as
// Classify decides it. The strings are stable and may be stored or logged.
type Outcome string

// The outcomes of a Slack call.
const (
	// OutcomeOK: the call succeeded.
	OutcomeOK Outcome = "ok"
	// OutcomeNeedsRevalidation: Slack refused the token (invalid_auth,
	// not_authed, token_revoked, token_expired, account_inactive or
	// missing_scope). The caller marks the integration needs_revalidation
	// and pauses its notifications until AuthTest succeeds again; retrying
	// with the same token is pointless.
	OutcomeNeedsRevalidation Outcome = "needs_revalidation"
	// OutcomeRateLimited: HTTP 429 (or Slack's "ratelimited" error). Retry
	// after RetryAfter(err).
	OutcomeRateLimited Outcome = "rate_limited"
	// OutcomeChannelProblem: the channel is missing, archived, or the bot is
	// not in it (channel_not_found, not_in_channel, is_archived). A
	// configuration problem: not retried until the channel setting changes.
	OutcomeChannelProblem Outcome = "channel_problem"
	// OutcomeTemporary: a 5xx answer, a Slack-side internal error, a network
	// error or a timeout. Retry with backoff.
	OutcomeTemporary Outcome = "temporary"
	// OutcomeFailed: anything else (a malformed request, an answer that is
	// not Slack's JSON, an unexpected error code). Not retried.
	OutcomeFailed Outcome = "failed"
)

// revalidationCodes are Slack's answers meaning the token itself is no good.
var revalidationCodes = map[string]bool{
	"invalid_auth":     true,
	"not_authed":       true,
	"token_revoked":    true,
	"token_expired":    true,
	"account_inactive": true,
	"missing_scope":    true,
}

// channelCodes are Slack's answers meaning the configured channel cannot
// take the message.
var channelCodes = map[string]bool{
	"channel_not_found": true,
	"not_in_channel":    true,
	"is_archived":       true,
}

// temporaryCodes are Slack's answers (with HTTP 200) for trouble on its side.
var temporaryCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// Error is the error Client methods return for a failed call. Callers
// normally need only Classify, Code and RetryAfter; Err keeps the cause
// (a slack-go or net/http error) for logs. It never contains the token.
type Error struct {
	// Method is the Slack Web API method, such as "chat.postMessage".
	Method string
	// Code is Slack's error string, such as "invalid_auth"; "" when Slack
	// did not answer with one (HTTP errors, network errors).
	Code string
	// Outcome is the classification of the failure.
	Outcome Outcome
	// RetryAfter is Slack's Retry-After for OutcomeRateLimited; 0 when
	// Slack did not say.
	RetryAfter time.Duration
	// Err is the underlying error.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("slack: %s: %s", e.Method, e.Code)
	}
	return fmt.Sprintf("slack: %s: %v", e.Method, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// newError wraps a failed call's error, classifying it once.
func newError(method string, err error) *Error {
	outcome, code, retryAfter := classify(err)
	return &Error{Method: method, Code: code, Outcome: outcome, RetryAfter: retryAfter, Err: err}
}

// Classify returns what err means for the integration: OutcomeOK for nil,
// the Outcome of the first *Error in err's chain, and otherwise a
// classification of err itself (slack-go errors, network errors, context
// errors), OutcomeFailed when nothing matches. A cancelled or expired
// context is OutcomeTemporary: the notification was not the problem.
func Classify(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Outcome
	}
	outcome, _, _ := classify(err)
	return outcome
}

// Code returns Slack's error string for err, such as "invalid_auth" or
// "channel_not_found", or "" when err is nil or Slack did not answer with
// an error string (HTTP and network errors).
func Code(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	_, code, _ := classify(err)
	return code
}

// RetryAfter returns how long Slack asked to wait before the next call for
// a rate-limited err, and 0 for any other error or when Slack did not say.
func RetryAfter(err error) time.Duration {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	_, _, d := classify(err)
	return d
}

// classify maps a slack-go or transport error to an outcome, Slack's error
// string and the Retry-After.
func classify(err error) (Outcome, string, time.Duration) {
	if err == nil {
		return OutcomeOK, "", 0
	}
	if r, ok := errors.AsType[slackapi.SlackErrorResponse](err); ok {
		return codeOutcome(r.Err), r.Err, 0
	}
	if r, ok := errors.AsType[*slackapi.SlackErrorResponse](err); ok && r != nil {
		return codeOutcome(r.Err), r.Err, 0
	}
	if r, ok := errors.AsType[*slackapi.RateLimitedError](err); ok && r != nil {
		return OutcomeRateLimited, "", r.RetryAfter
	}
	if s, ok := errors.AsType[slackapi.StatusCodeError](err); ok {
		return statusOutcome(s.Code), "", 0
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return OutcomeTemporary, "", 0
	}
	// Every transport failure from http.Client.Do is a *url.Error, which is
	// a net.Error; a connection cut while the answer is read ends in an
	// unexpected EOF.
	if _, ok := errors.AsType[net.Error](err); ok {
		return OutcomeTemporary, "", 0
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return OutcomeTemporary, "", 0
	}
	return OutcomeFailed, "", 0
}

// codeOutcome classifies one of Slack's error strings.
func codeOutcome(code string) Outcome {
	switch {
	case revalidationCodes[code]:
		return OutcomeNeedsRevalidation
	case channelCodes[code]:
		return OutcomeChannelProblem
	case code == "ratelimited":
		return OutcomeRateLimited
	case temporaryCodes[code]:
		return OutcomeTemporary
	default:
		return OutcomeFailed
	}
}

// statusOutcome classifies a non-200 HTTP status.
func statusOutcome(status int) Outcome {
	switch {
	case status == http.StatusTooManyRequests:
		return OutcomeRateLimited
	case status >= 500:
		return OutcomeTemporary
	default:
		return OutcomeFailed
	}
}
