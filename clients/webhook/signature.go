package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a webhook delivery.
const (
	HeaderSignature  = "X-HDF-Signature"
	HeaderEventID    = "X-HDF-Event-Id"
	HeaderEventType  = "X-HDF-Event-Type"
	HeaderDeliveryID = "X-HDF-Delivery-Id"
	HeaderAttempt    = "X-HDF-Attempt"
)

// SecretPrefix starts every webhook secret. The prefix is part of the
// secret: the HMAC key is the whole string, prefix included.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far the signed timestamp may be from the
// receiver's clock, either way, for Verify to accept it: 5 minutes.
const DefaultTolerance = 5 * time.Minute

// Sentinel errors of Verify, for errors.Is; the *VerifyError that Verify
// returns says more.
var (
	// ErrMalformedHeader: the header is not "t=<unix seconds>,v1=<64 hex
	// digits>[,v1=…]".
	ErrMalformedHeader = errors.New("webhook: malformed signature header")
	// ErrStaleTimestamp: the signature matches but the signed timestamp is
	// further from now than the tolerance (a replay, or a wrong clock).
	ErrStaleTimestamp = errors.New("webhook: signature timestamp outside the tolerance")
	// ErrNoMatchingSignature: no v1 in the header is the body's signature
	// under the secret (wrong secret, or the body is not the raw body that
	// was sent).
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// VerifyError is the error Verify returns. Reason is one of
// ErrMalformedHeader, ErrStaleTimestamp and ErrNoMatchingSignature, and
// errors.Is(err, Reason) holds. Detail says what is wrong with a malformed
// header; Age (now minus the signed time, negative when it lies in the
// future) and Tolerance are set for a stale timestamp.
type VerifyError struct {
	Reason    error
	Detail    string
	Age       time.Duration
	Tolerance time.Duration
}

// Error implements the error interface.
func (e *VerifyError) Error() string {
	switch {
	case e.Reason == ErrStaleTimestamp && e.Age < 0:
		return fmt.Sprintf("%v: signed %s in the future, tolerance %s", e.Reason, formatAge(-e.Age), e.Tolerance)
	case e.Reason == ErrStaleTimestamp:
		return fmt.Sprintf("%v: signed %s ago, tolerance %s", e.Reason, formatAge(e.Age), e.Tolerance)
	case e.Detail != "":
		return fmt.Sprintf("%v: %s", e.Reason, e.Detail)
	}
	return e.Reason.Error()
}

// Is reports whether target is the error's Reason.
func (e *VerifyError) Is(target error) bool { return target == e.Reason }

// Sign returns the X-HDF-Signature header value for body sent at t: the
// Unix time and one v1 signature per secret, in the order given (the
// current secret first, then a previous one during a rotation). With no
// secrets the value has no v1 and will not verify.
func Sign(secrets []string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

// mac is HMAC-SHA256(secret, "<t>.<body>").
func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an X-HDF-Signature header value against the raw request
// body and the webhook's secret. It returns nil when one of the header's v1
// signatures is the body's and the signed time is within tolerance of now
// (either way; tolerance <= 0 means DefaultTolerance). Otherwise it returns
// a *VerifyError whose Reason is ErrMalformedHeader, ErrNoMatchingSignature
// (also for an empty secret) or ErrStaleTimestamp, checked in that order,
// so a stale timestamp is reported only for an authentic signature.
// Signatures are compared in constant time. Keys other than t and v1 are
// ignored, so a later signature scheme can be added alongside v1.
func Verify(header string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	h, err := parseHeader(header)
	if err != nil {
		return err
	}
	if secret == "" {
		return &VerifyError{Reason: ErrNoMatchingSignature, Detail: "the secret is empty"}
	}
	if h.match(secret, body) == 0 {
		return &VerifyError{Reason: ErrNoMatchingSignature}
	}
	if age := now.Sub(h.time()); age > tolerance || age < -tolerance {
		return &VerifyError{Reason: ErrStaleTimestamp, Age: age, Tolerance: tolerance}
	}
	return nil
}

// signatureHeader is a parsed X-HDF-Signature value.
type signatureHeader struct {
	ts   string // the t value as sent: the signed text uses it verbatim
	unix int64
	v1   [][]byte
}

func (h signatureHeader) time() time.Time { return time.Unix(h.unix, 0) }

// match returns the 1-based index of the v1 signature that body signed
// with secret matches, or 0. Every signature is compared, so the time taken
// does not say which one matched.
func (h signatureHeader) match(secret string, body []byte) int {
	want := mac(secret, h.ts, body)
	found := 0
	for i, sig := range h.v1 {
		if hmac.Equal(sig, want) && found == 0 {
			found = i + 1
		}
	}
	return found
}

// maxHeaderLen bounds the header Verify parses (a handful of signatures
// fit many times over).
const maxHeaderLen = 4096

func malformed(format string, args ...any) error {
	return &VerifyError{Reason: ErrMalformedHeader, Detail: fmt.Sprintf(format, args...)}
}

func parseHeader(header string) (signatureHeader, error) {
	var h signatureHeader
	header = strings.TrimSpace(header)
	switch {
	case header == "":
		return h, malformed("the header is empty")
	case len(header) > maxHeaderLen:
		return h, malformed("the header is %d bytes long, more than %d", len(header), maxHeaderLen)
	case hasFoldPrefix(header, HeaderSignature+":"):
		return h, malformed("the value starts with the header name %q; pass only what follows the colon", HeaderSignature+":")
	}
	sawT := false
	for i, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			return h, malformed("element %d (%q) is not key=value", i+1, truncate(part, 40))
		}
		switch strings.TrimSpace(key) {
		case "t":
			if sawT {
				return h, malformed("t appears more than once")
			}
			sawT = true
			value = strings.TrimSpace(value)
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || value[0] == '+' {
				return h, malformed("t=%q is not a Unix time in seconds", truncate(value, 40))
			}
			if n > 1e11 {
				return h, malformed("t=%s is too large for Unix seconds (milliseconds?)", value)
			}
			h.ts, h.unix = value, n
		case "v1":
			value = strings.TrimSpace(value)
			sig, err := hex.DecodeString(value)
			if err != nil || len(sig) != sha256.Size {
				return h, malformed("v1 signature %d is not %d hex digits (%d characters: %q)", len(h.v1)+1, 2*sha256.Size, len(value), truncate(value, 70))
			}
			h.v1 = append(h.v1, sig)
		}
	}
	switch {
	case !sawT:
		return h, malformed("there is no t=<unix seconds>")
	case len(h.v1) == 0:
		return h, malformed("there is no v1=<signature>")
	}
	return h, nil
}

func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// formatAge writes d rounded to the second without trailing zero units:
// 2h3m, 45s, 1h.
func formatAge(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
