package oauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// Failure is what a token-endpoint error means for the caller.
type Failure int

// The kinds of failure Classify tells apart.
const (
	// FailureNone: no error.
	FailureNone Failure = iota
	// FailureInvalidGrant: the provider refused the grant — the refresh
	// token (or code) is revoked, expired or unknown (error=invalid_grant,
	// Slack's invalid_refresh_token and kin), or there is no refresh token.
	// Never retry: mark the integration token_expired until the user
	// reconnects.
	FailureInvalidGrant
	// FailureInvalidClient: the provider refused our client
	// (invalid_client, unauthorized_client): a configuration problem that
	// retrying will not fix, and no fault of the user's grant.
	FailureInvalidClient
	// FailureTemporary: a 5xx or 429 answer, a network error, a timeout or
	// the context ending: back off (RetryDelay) and retry.
	FailureTemporary
	// FailureOther: anything else (an unexpected 4xx, an answer that does
	// not parse, a missing PKCE verifier, a bad provider configuration, a
	// token endpoint the outbound address policy refuses).
	FailureOther
)

// String returns the failure's name: none, invalid_grant, invalid_client,
// temporary or other.
func (f Failure) String() string {
	switch f {
	case FailureNone:
		return "none"
	case FailureInvalidGrant:
		return "invalid_grant"
	case FailureInvalidClient:
		return "invalid_client"
	case FailureTemporary:
		return "temporary"
	}
	return "other"
}

// Error codes by meaning: RFC 6749 section 5.2's, then Slack's (which
// answers HTTP 200 with {"ok":false,"error":…}).
var (
	invalidGrantCodes = map[string]bool{
		"invalid_grant":         true,
		"invalid_refresh_token": true, "invalid_code": true, "code_already_used": true,
		"token_revoked": true, "token_expired": true, "account_inactive": true,
	}
	invalidClientCodes = map[string]bool{
		"invalid_client": true, "unauthorized_client": true,
		"invalid_client_id": true, "bad_client_secret": true,
	}
	temporaryCodes = map[string]bool{
		"temporarily_unavailable": true, "server_error": true,
		"ratelimited": true, "internal_error": true, "service_unavailable": true, "request_timeout": true,
	}
)

// Classify says what err, from Exchange or Refresh, means. It looks for an
// *oauth2.RetrieveError with errors.As: a 5xx or 429 status is
// FailureTemporary whatever the body says (wrongly taking a grant for dead
// costs the user a reconnection; wrongly retrying costs a request), then the
// error code decides. Other errors are transport failures (FailureTemporary)
// unless they are certificate errors or ours (FailureOther), and
// ErrNoRefreshToken is FailureInvalidGrant. A token endpoint whose host
// is, or resolves to, an address the outbound address policy refuses
// (egress.ErrBlockedAddress, from a client whose transport is the
// policy's) is FailureOther: retrying will not change it.
func Classify(err error) Failure {
	if err == nil {
		return FailureNone
	}
	if errors.Is(err, ErrNoRefreshToken) {
		return FailureInvalidGrant
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		switch {
		case status == http.StatusTooManyRequests || status >= 500:
			return FailureTemporary
		case invalidGrantCodes[re.ErrorCode]:
			return FailureInvalidGrant
		case invalidClientCodes[re.ErrorCode]:
			return FailureInvalidClient
		case temporaryCodes[re.ErrorCode]:
			return FailureTemporary
		}
		return FailureOther
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalidCert      x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalidCert) || errors.As(err, &verification) {
		return FailureOther
	}
	if errors.Is(err, egress.ErrBlockedAddress) {
		return FailureOther
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &netErr) {
		return FailureTemporary
	}
	return FailureOther
}

// RetryAfter returns how long the provider asked to wait (the Retry-After
// header of the answer in err, in seconds or as an HTTP date), or 0 when it
// did not.
func RetryAfter(err error) time.Duration {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return 0
	}
	v := strings.TrimSpace(re.Response.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

// Backoff bounds for RetryDelay.
const (
	RetryBase = time.Second
	RetryMax  = 5 * time.Minute
)

// RetryDelay returns how long to wait before retry number attempt (0 for the
// first retry) after a FailureTemporary err: RetryBase doubled per attempt up
// to RetryMax, or RetryAfter(err) when the provider asked for longer.
func RetryDelay(err error, attempt int) time.Duration {
	d := RetryMax
	if attempt < 20 {
		d = min(RetryBase<<max(attempt, 0), RetryMax)
	}
	return max(d, RetryAfter(err))
}
