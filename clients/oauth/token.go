package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// DefaultRefreshMargin is how long before expiry NeedsRefresh asks for a
// refresh when given no margin.
const DefaultRefreshMargin = 5 * time.Minute

// DefaultTimeout bounds a token request when Exchange or Refresh get a nil
// client, or one that sets no Timeout. The token endpoint of a per-shop provider
// holds a user-given shop: in production the client's transport is the
// outbound address policy's (egress.Policy.Transport).
const DefaultTimeout = 30 * time.Second

// maxTokenResponse is the most of a token response that is read (as
// golang.org/x/oauth2 does).
const maxTokenResponse = 1 << 20

// Token is what a token endpoint issued.
type Token struct {
	AccessToken string
	// RefreshToken is the one to use next: the new one when Rotated, else
	// the one the refresh was made with.
	RefreshToken string
	TokenType    string
	// Expiry is when AccessToken expires; zero when the provider gave no
	// expires_in (Slack without rotation, Stripe, Shopify offline tokens).
	Expiry time.Time
	// Scope is what the provider granted, as it wrote it (it may differ
	// from what was asked).
	Scope string
	// Rotated is true when a refresh answer carried a new refresh token,
	// which must replace the old one (atomically with the access token);
	// always true after Exchange when a refresh token was issued.
	Rotated bool
	// Extra holds the answer's other fields: Stripe's stripe_user_id,
	// Slack's team, bot_user_id and authed_user, Google's id_token.
	Extra map[string]any
}

// NewVerifier returns a new PKCE code verifier (32 random bytes, base64url).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// AuthorizationURL returns the URL to send the user's browser to: p's
// authorization endpoint with response_type=code, client_id, redirect_uri,
// scope, state, p.ExtraAuthParams and, when p.PKCE, the S256 code_challenge
// of verifier (which must then be non-empty and go to Exchange).
func AuthorizationURL(p Provider, state string, verifier string) string {
	var opts []oauth2.AuthCodeOption
	for k, v := range p.ExtraAuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	if sep := p.ScopeSeparator; sep != "" && sep != " " && len(p.Scopes) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("scope", strings.Join(p.Scopes, sep)))
	}
	if p.PKCE && verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	return p.config().AuthCodeURL(state, opts...)
}

// Errors of Exchange and Refresh that happen before any request.
var (
	// ErrMissingVerifier: Exchange for a PKCE provider without a verifier.
	ErrMissingVerifier = errors.New("oauth: PKCE code verifier missing")
	// ErrNoRefreshToken: Refresh without a refresh token. Classify calls
	// it FailureInvalidGrant: the connection cannot renew itself.
	ErrNoRefreshToken = errors.New("oauth: no refresh token")
)

// Exchange trades an authorization code (and, when p.PKCE, the verifier that
// was sealed in the state) for tokens at p's token endpoint, through client
// (nil: a client with DefaultTimeout). Errors: a p.Validate error,
// ErrMissingVerifier, or the endpoint's failure wrapped — an
// *oauth2.RetrieveError or a transport error; Classify tells them apart
// (invalid_grant here means a bad, used or expired code: start again).
func Exchange(ctx context.Context, p Provider, code, verifier string, client *http.Client) (Token, error) {
	if err := p.Validate(); err != nil {
		return Token{}, err
	}
	var opts []oauth2.AuthCodeOption
	if p.PKCE {
		if verifier == "" {
			return Token{}, fmt.Errorf("oauth: %s exchange: %w", p.Name, ErrMissingVerifier)
		}
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	ctx, capture := withCapture(ctx, client)
	tok, err := p.config().Exchange(ctx, code, opts...)
	if err != nil {
		return Token{}, fmt.Errorf("oauth: %s code exchange: %w", p.Name, err)
	}
	t := fromOAuth2(tok, capture.fields())
	t.Rotated = t.RefreshToken != ""
	return t, nil
}

// Refresh gets a new access token for refreshToken at p's token endpoint,
// through client (nil: a client with DefaultTimeout). When the answer has no
// refresh_token (Google, usually) the old one is kept and Rotated is false;
// a new one sets Rotated, and the old one may be dead already, so the
// caller must store the new one before anything else. Errors: a p.Validate
// error, ErrNoRefreshToken, or the endpoint's failure wrapped (see
// Classify: FailureInvalidGrant means revoked or expired — mark the
// integration token_expired and never retry; FailureTemporary means back off
// with RetryDelay and retry).
func Refresh(ctx context.Context, p Provider, refreshToken string, client *http.Client) (Token, error) {
	if err := p.Validate(); err != nil {
		return Token{}, err
	}
	if refreshToken == "" {
		return Token{}, fmt.Errorf("oauth: %s refresh: %w", p.Name, ErrNoRefreshToken)
	}
	ctx, capture := withCapture(ctx, client)
	// An expired token without an access token makes the source refresh.
	src := p.config().TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return Token{}, fmt.Errorf("oauth: %s refresh: %w", p.Name, err)
	}
	fields := capture.fields()
	t := fromOAuth2(tok, fields)
	newRT, _ := fields["refresh_token"].(string)
	t.Rotated = newRT != "" && newRT != refreshToken
	// golang.org/x/oauth2 keeps the old refresh token too; the contract
	// should not rest on that.
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// NeedsRefresh reports whether a token expiring at expiry should be refreshed
// at now: from margin before expiry on (margin <= 0 means
// DefaultRefreshMargin). A zero expiry never expires.
func NeedsRefresh(expiry, now time.Time, margin time.Duration) bool {
	if expiry.IsZero() {
		return false
	}
	if margin <= 0 {
		margin = DefaultRefreshMargin
	}
	return !now.Before(expiry.Add(-margin))
}

// standardFields are the token answer's fields Token has a place for.
var standardFields = map[string]bool{
	"access_token": true, "refresh_token": true, "token_type": true, "expires_in": true, "scope": true,
}

func fromOAuth2(tok *oauth2.Token, fields map[string]any) Token {
	t := Token{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Expiry:       tok.Expiry,
	}
	if s, ok := fields["scope"].(string); ok {
		t.Scope = s
	}
	for k, v := range fields {
		if !standardFields[k] {
			if t.Extra == nil {
				t.Extra = map[string]any{}
			}
			t.Extra[k] = v
		}
	}
	return t
}

// capture keeps the body of the last successful token response, because
// oauth2.Token only answers Extra(key) for keys one already knows.
type capture struct {
	base http.RoundTripper

	mu          sync.Mutex
	body        []byte
	contentType string
}

// withCapture returns ctx carrying a copy of client (nil: one with
// DefaultTimeout; a client without a Timeout gets DefaultTimeout too)
// whose transport records the last token answer.
func withCapture(ctx context.Context, client *http.Client) (context.Context, *capture) {
	var c http.Client
	if client != nil {
		c = *client
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	cp := &capture{base: c.Transport}
	if cp.base == nil {
		cp.base = http.DefaultTransport
	}
	c.Transport = cp
	return context.WithValue(ctx, oauth2.HTTPClient, &c), cp
}

// RoundTrip reads the whole (bounded) body here, so that a connection
// failing mid-body is a transport error (FailureTemporary), not a parse one.
func (c *capture) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		c.mu.Lock()
		c.body, c.contentType = body, resp.Header.Get("Content-Type")
		c.mu.Unlock()
	}
	return resp, nil
}

// fields parses the recorded answer the way golang.org/x/oauth2 does: a
// form for form and text content types, else JSON.
func (c *capture) fields() map[string]any {
	c.mu.Lock()
	body, ct := c.body, c.contentType
	c.mu.Unlock()
	media, _, _ := mime.ParseMediaType(ct)
	out := map[string]any{}
	if media == "application/x-www-form-urlencoded" || media == "text/plain" {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return out
		}
		for k, v := range vals {
			out[k] = v[0]
		}
		return out
	}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		maps.Copy(out, m)
	}
	return out
}
