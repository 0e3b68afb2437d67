package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Client.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 4
	DefaultBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	// MaxRetryAfter is the longest Retry-After a call waits for; a longer
	// one ends the call with the 429 (or 503) as its *Error.
	MaxRetryAfter = 2 * time.Minute
)

// Client calls one HelpDeskFlow API with one API key. It is safe for
// concurrent use.
type Client struct {
	base        *url.URL
	key         string
	http        *http.Client
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	// sleep waits d or until ctx ends (tests record it instead).
	sleep func(ctx context.Context, d time.Duration) error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc, whose Timeout bounds each
// request (set one: a zero Timeout waits for ever).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds each request (each attempt of a call) by d; default
// DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		hc := *c.http
		hc.Timeout = d
		c.http = &hc
	}
}

// WithMaxAttempts makes a call try at most n times (at least 1; default
// DefaultMaxAttempts).
func WithMaxAttempts(n int) Option { return func(c *Client) { c.maxAttempts = max(n, 1) } }

// WithBackoff sets the wait before the first retry of a 5xx or connection
// error (doubling with each further retry, up to max, each jittered
// between half and all of it); defaults DefaultBackoff and
// DefaultMaxBackoff.
func WithBackoff(first, max time.Duration) Option {
	return func(c *Client) { c.backoff, c.maxBackoff = first, max }
}

// New returns a client of the API at baseURL (such as
// "https://helpdesk.example.com"; its path, if any, prefixes every route)
// authenticating with apiKey. It fails when baseURL is not an http(s) URL.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL must be an http(s) URL, got %q", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, key: apiKey, http: &http.Client{Timeout: DefaultTimeout}, maxAttempts: DefaultMaxAttempts,
		backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff, sleep: sleepCtx}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an error answer of the API (see the README's error codes).
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the stable error code, such as "validation_failed".
	Code string
	// Message is for people.
	Message string
	// Details names each field's problem (validation_failed,
	// automation_conflict, limit_exceeded, …).
	Details []FieldProblem
	// RuleIDs are the rules of an automation_conflict.
	RuleIDs []string
	// ExistingID names the ticket or customer holding the external_id of a
	// create answered with conflict.
	ExistingID string
	// RequestID is the request's X-Request-Id, for support.
	RequestID string
	// RetryAfter is the wait the server asked for (429, 503), if any.
	RetryAfter time.Duration
}

// FieldProblem is one field's problem in an Error.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	s := fmt.Sprintf("helpdeskflow: %d %s: %s", e.Status, e.Code, e.Message)
	for _, d := range e.Details {
		s += fmt.Sprintf("; %s: %s", d.Field, d.Problem)
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// errorBody is the body of an error answer.
type errorBody struct {
	Error struct {
		Code       string         `json:"code"`
		Message    string         `json:"message"`
		Details    []FieldProblem `json:"details"`
		RuleIDs    []string       `json:"rule_ids"`
		ExistingID string         `json:"existing_id"`
		RequestID  string         `json:"request_id"`
	} `json:"error"`
}

type idempotencyKeyContext struct{}

// WithIdempotencyKey makes the POST or PATCH called with ctx send key as
// its Idempotency-Key (at most 255 characters) instead of a new random
// one: to make a call idempotent across restarts of the caller.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyContext{}, key)
}

// call is one API call: method and path (already escaped), the query, the
// JSON body (nil: none) and where the answer's JSON goes (nil: dropped).
type call struct {
	method string
	path   string
	query  url.Values
	body   any
	out    any
}

// result is what a call's successful answer says besides its body.
type result struct {
	status int
	header http.Header
}

// do runs a call with its retries (see the package doc). It returns the
// answer's status and headers, or *Error for an error answer, or the
// last transport error, or ctx's error.
func (c *Client) do(ctx context.Context, cl call) (result, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return result{}, fmt.Errorf("client: encode the %s %s body: %w", cl.method, cl.path, err)
		}
	}
	key := ""
	if cl.method == http.MethodPost || cl.method == http.MethodPatch {
		key, _ = ctx.Value(idempotencyKeyContext{}).(string)
		if key == "" {
			key = newIdempotencyKey()
		}
	}
	u := *c.base
	u.Path += cl.path
	u.RawQuery = cl.query.Encode()
	var last error
	for attempt := 0; attempt < c.maxAttempts; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, c.wait(attempt, last)); err != nil {
				return result{}, err
			}
		}
		res, err := c.attempt(ctx, cl, u.String(), body, key)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return result{}, ctx.Err()
		}
		if !retryable(err) {
			return result{}, err
		}
		last = err
	}
	return result{}, last
}

// attempt sends the request once and decodes its answer.
func (c *Client) attempt(ctx context.Context, cl call, target string, body []byte, key string) (result, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, rd)
	if err != nil {
		return result{}, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "helpdeskflow-go-client")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return result{}, &transportError{err: fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, &transportError{err: fmt.Errorf("client: %s %s: read the answer: %w", cl.method, cl.path, err)}
	}
	if resp.StatusCode >= 400 {
		return result{}, answerError(resp, raw)
	}
	if cl.out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, cl.out); err != nil {
			return result{}, fmt.Errorf("client: %s %s: decode the answer: %w", cl.method, cl.path, err)
		}
	}
	return result{status: resp.StatusCode, header: resp.Header}, nil
}

// answerError is the *Error of an error answer; a body that is not the
// API's error object (a proxy's page) gives an Error with the status only.
func answerError(resp *http.Response, raw []byte) *Error {
	e := &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: http.StatusText(resp.StatusCode),
		RequestID: resp.Header.Get("X-Request-Id")}
	var b errorBody
	if json.Unmarshal(raw, &b) == nil && b.Error.Code != "" {
		e.Code, e.Message, e.Details, e.RuleIDs, e.ExistingID = b.Error.Code, b.Error.Message, b.Error.Details, b.Error.RuleIDs, b.Error.ExistingID
		if b.Error.RequestID != "" {
			e.RequestID = b.Error.RequestID
		}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// transportError is a request that got no answer (connection refused,
// reset, timeout): worth retrying.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryable reports whether a call that failed with err is tried again:
// no answer, 429 (within MaxRetryAfter), 5xx, and a retry that came while
// the same Idempotency-Key's first request was still running.
func retryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.RetryAfter > MaxRetryAfter:
		return false
	case e.Status == http.StatusTooManyRequests, e.Status >= 500, e.Code == "idempotency_key_in_use":
		return true
	}
	return false
}

// wait is how long to wait before try attempt (from 1) after err: the
// Retry-After the answer named, else (also for a 429 without one) the
// jittered exponential backoff.
func (c *Client) wait(attempt int, err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	d := c.backoff << (attempt - 1)
	if d > c.maxBackoff || d <= 0 {
		d = c.maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newIdempotencyKey is a fresh random Idempotency-Key.
func newIdempotencyKey() string {
	var b [16]byte
	crand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return "hdfgo_" + hex.EncodeToString(b[:])
}
