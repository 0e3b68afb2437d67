package gmail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is an answer from Google other than 2xx.
type APIError struct {
	// Op is the API method, such as "users.history.list".
	Op string
	// Status is the HTTP status.
	Status int
	// Reason is Google's reason for the first error, such as
	// rateLimitExceeded, userRateLimitExceeded, notFound,
	// failedPrecondition, authError or backendError; "" when the answer
	// names none.
	Reason string
	// StatusName is Google's canonical status, such as RESOURCE_EXHAUSTED.
	StatusName string
	// Message is Google's message, or the start of a non-JSON answer.
	Message string
	// RetryAfter is the Retry-After header as a duration (seconds or an
	// HTTP date); 0 when absent.
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *APIError) Error() string {
	s := fmt.Sprintf("gmail: %s: HTTP %d", e.Op, e.Status)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// googleError is the body of Google's error answers.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Errors  []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"errors"`
		Details []struct {
			Type   string `json:"@type"`
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

func newAPIError(op string, resp *http.Response, body []byte, now time.Time) *APIError {
	e := &APIError{Op: op, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	var g googleError
	if json.Unmarshal(body, &g) == nil && (g.Error.Code != 0 || g.Error.Message != "") {
		e.Message, e.StatusName = g.Error.Message, g.Error.Status
		if len(g.Error.Errors) > 0 {
			e.Reason = g.Error.Errors[0].Reason
		}
		for _, d := range g.Error.Details {
			if e.Reason == "" && strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") {
				e.Reason = d.Reason
			}
		}
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	e.Message = msg
	return e
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when
// absent, unreadable or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// requestError is a request that got no answer from Google.
type requestError struct {
	op  string
	err error
}

func (e *requestError) Error() string { return fmt.Sprintf("gmail: %s: %v", e.op, e.err) }
func (e *requestError) Unwrap() error { return e.err }

// tooLargeError is an answer too large to read: a message over
// MaxMessageSize.
type tooLargeError struct{ op string }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("gmail: %s: the message is over %d MiB", e.op, MaxMessageSize>>20)
}

// IsTooLarge reports whether err is Get's answer for a message over
// MaxMessageSize, which it did not download.
func IsTooLarge(err error) bool {
	var e *tooLargeError
	return errors.As(err, &e)
}

// IsRateLimited reports whether err is Google's rate limit: HTTP 429, or
// 403 with reason rateLimitExceeded or userRateLimitExceeded (or the
// RATE_LIMIT_EXCEEDED of newer answers), and how long to wait: the
// Retry-After header, 0 when Google sent none (the caller then backs off
// on its own, exponentially).
func IsRateLimited(err error) (bool, time.Duration) {
	var e *APIError
	if !errors.As(err, &e) {
		return false, 0
	}
	switch {
	case e.Status == http.StatusTooManyRequests,
		e.Status == http.StatusForbidden && (e.Reason == "rateLimitExceeded" || e.Reason == "userRateLimitExceeded" || e.Reason == "RATE_LIMIT_EXCEEDED"):
		return true, e.RetryAfter
	}
	return false, 0
}

// IsHistoryTooOld reports whether err is history.list's 404 for a
// startHistoryId Gmail no longer has: the sync must fall back to List.
func IsHistoryTooOld(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Op == "users.history.list" && e.Status == http.StatusNotFound
}

// IsUnauthorized reports whether Google refused the credentials (HTTP
// 401): the token expired or was revoked, and the mailbox needs a fresh
// token or to be reconnected.
func IsUnauthorized(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusUnauthorized
}

// IsTemporary reports whether err is worth retrying later: a 5xx answer,
// 408, or a request that got no answer (network error, timeout, a
// truncated body). A cancelled context is not temporary, and neither is a
// rate limit (see IsRateLimited).
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *APIError
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusRequestTimeout
	}
	var re *requestError
	if errors.As(err, &re) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
