// Package oauthtest is a fake OAuth 2 provider for tests: an httptest server
// on 127.0.0.1 with an authorization endpoint and a token endpoint that
// answer like real providers (RFC 6749 JSON, errors as
// {"error":"invalid_grant","error_description":…} with HTTP 400), check
// client credentials (Basic or form), redirect_uri and PKCE (S256), rotate
// refresh tokens on request, and can be scripted to revoke grants, fail,
// rate-limit or hold a token request open until released. It records every
// token request. It imports no OAuth library, so it checks what a client
// really sends.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
)

// The client credentials a new Server accepts, and the redirect URL and
// scopes of Server.Provider.
const (
	ClientID     = "test-client"
	ClientSecret = "test-secret"
	RedirectURL  = "http://127.0.0.1/v1/integrations/fake/callback"
)

// DefaultExpiresIn is the access tokens' lifetime until ExpiresIn changes it.
const DefaultExpiresIn = time.Hour

// TokenRequest is one request the token endpoint received.
type TokenRequest struct {
	GrantType string
	// ClientID is the client the request named, ClientAuth how:
	// "basic", "form", "both" or "" (none).
	ClientID, ClientAuth string
	Code, CodeVerifier   string
	RedirectURI          string
	RefreshToken         string
	// Status is the HTTP status answered, Error the error code ("" on
	// success).
	Status int
	Error  string
	At     time.Time
}

type grant struct {
	clientID, redirectURI, scope string
	challenge                    string
	used                         bool
}

type refreshGrant struct {
	clientID, scope string
	revoked         bool
}

type failure struct {
	status     int
	code       string
	retryAfter time.Duration
}

// Server is the fake provider. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu           sync.Mutex
	clientID     string
	clientSecret string
	expiresIn    time.Duration
	rotate       bool
	latency      time.Duration
	holds        []chan struct{} // the next token requests to hold, each until its channel closes
	held         int             // token requests held now
	releaseAll   chan struct{}   // closed by Release
	extra        map[string]any
	failures     []failure
	codes        map[string]*grant
	refresh      map[string]*refreshGrant
	access       map[string]time.Time
	requests     []TokenRequest
	refreshes    int
}

// NewServer starts a fake provider accepting ClientID and ClientSecret,
// issuing access tokens valid for DefaultExpiresIn, and not rotating refresh
// tokens. Close it when done.
func NewServer() *Server {
	s := &Server{
		clientID: ClientID, clientSecret: ClientSecret, expiresIn: DefaultExpiresIn,
		codes: map[string]*grant{}, refresh: map[string]*refreshGrant{}, access: map[string]time.Time{},
		releaseAll: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", s.handleAuthorize)
	mux.HandleFunc("/token", s.handleToken)
	s.srv = httptest.NewServer(mux)
	return s
}

// AuthURL is the authorization endpoint.
func (s *Server) AuthURL() string { return s.srv.URL + "/authorize" }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.srv.URL + "/token" }

// Close releases held requests (Release) and shuts the server down.
func (s *Server) Close() {
	s.Release()
	s.srv.Close()
}

// Provider returns a provider named name that uses this server: PKCE on,
// scopes "read" and "write", Basic client authentication, the current
// client credentials and RedirectURL.
func (s *Server) Provider(name string) oauth.Provider {
	s.mu.Lock()
	defer s.mu.Unlock()
	return oauth.Provider{
		Name: name, AuthURL: s.AuthURL(), TokenURL: s.TokenURL(),
		Scopes: []string{"read", "write"}, PKCE: true,
		ClientID: s.clientID, ClientSecret: s.clientSecret, RedirectURL: RedirectURL,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
}

// SetClient replaces the accepted client credentials.
func (s *Server) SetClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientID, s.clientSecret = id, secret
}

// ExpiresIn sets the lifetime of access tokens issued from now on; 0 sends
// no expires_in (a token that does not expire).
func (s *Server) ExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = d
}

// RotateRefreshTokens makes refreshes issue a new refresh token and revoke
// the old one (true), or answer without refresh_token and keep it (false,
// the default, as Google does).
func (s *Server) RotateRefreshTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// SetExtra adds fields to every successful token answer (Stripe's
// stripe_user_id, Slack's team…).
func (s *Server) SetExtra(fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = maps.Clone(fields)
}

// Latency delays every token answer by d (to make requests overlap).
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// HoldNext makes the next token request (whatever it is) wait, unanswered
// and unprocessed, until the returned function (or Release) is called or
// its client gives up; later requests are answered as usual unless held
// too. A held request is processed when released, so it sees the grants
// as they are then (a refresh token rotated meanwhile is refused).
func (s *Server) HoldNext() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.holds = append(s.holds, ch)
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Held returns how many token requests are being held now.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Release lets every held token request go on, and forgets holds that no
// request has met yet.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.releaseAll)
	s.releaseAll = make(chan struct{})
	s.holds = nil
}

// wait holds a token request when HoldNext asked for it; false when its
// client gave up meanwhile.
func (s *Server) wait(r *http.Request) bool {
	s.mu.Lock()
	if len(s.holds) == 0 {
		s.mu.Unlock()
		return true
	}
	release, all := s.holds[0], s.releaseAll
	s.holds = s.holds[1:]
	s.held++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()
	select {
	case <-release:
		return true
	case <-all:
		return true
	case <-r.Context().Done():
		return false
	}
}

// Revoke makes refreshToken answer invalid_grant from now on.
func (s *Server) Revoke(refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.refresh[refreshToken]; ok {
		g.revoked = true
	} else {
		s.refresh[refreshToken] = &refreshGrant{revoked: true}
	}
}

// RevokeAll revokes every grant and access token issued so far, as a user
// removing the app's access does: refreshes answer invalid_grant and
// ValidAccessToken is false for the old access tokens.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.refresh {
		g.revoked = true
	}
	clear(s.access)
}

// FailNext makes the next token request (whatever it is) answer status with
// {"error": errCode}, or with a plain-text body when errCode is "". Calls
// queue: each scripted failure answers one request, in order.
func (s *Server) FailNext(status int, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status: status, code: errCode})
}

// RateLimitNext makes the next token request answer 429 with a Retry-After
// of retryAfter (whole seconds, rounded up) and {"error":"rate_limited"}.
// It queues with FailNext.
func (s *Server) RateLimitNext(retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status: http.StatusTooManyRequests, code: "rate_limited", retryAfter: retryAfter})
}

// Requests returns a copy of every token request received, oldest first.
func (s *Server) Requests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.requests...)
}

// Refreshes returns how many refresh_token requests reached the token
// endpoint, answered with success or not.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// ValidAccessToken reports whether token was issued by this server and has
// not expired.
func (s *Server) ValidAccessToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[token]
	return ok && (exp.IsZero() || time.Now().Before(exp))
}

// Authorize does what a browser and a consenting user do with authURL: it
// checks the URL is this server's authorization endpoint with
// response_type=code, the client id, a redirect_uri and, when present, an
// S256 code_challenge, and returns a one-time code bound to the client,
// redirect URI, scope and challenge.
func (s *Server) Authorize(authURL string) (code string, err error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	want, _ := url.Parse(s.AuthURL())
	if u.Scheme != want.Scheme || u.Host != want.Host || u.Path != want.Path {
		return "", fmt.Errorf("oauthtest: %q is not this server's authorization endpoint %q", authURL, s.AuthURL())
	}
	return s.authorize(u.Query())
}

func (s *Server) authorize(q url.Values) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case q.Get("response_type") != "code":
		return "", fmt.Errorf("oauthtest: response_type %q, want code", q.Get("response_type"))
	case q.Get("client_id") != s.clientID:
		return "", fmt.Errorf("oauthtest: unknown client_id %q", q.Get("client_id"))
	case q.Get("redirect_uri") == "":
		return "", errors.New("oauthtest: redirect_uri missing")
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		return "", fmt.Errorf("oauthtest: code_challenge_method %q, want S256", q.Get("code_challenge_method"))
	case q.Get("code_challenge") == "" && q.Get("code_challenge_method") != "":
		return "", errors.New("oauthtest: code_challenge_method without code_challenge")
	}
	code := "code-" + random()
	s.codes[code] = &grant{
		clientID: s.clientID, redirectURI: q.Get("redirect_uri"),
		scope: q.Get("scope"), challenge: q.Get("code_challenge"),
	}
	return code, nil
}

// handleAuthorize is the browser's side: it redirects to redirect_uri with
// a code and the state (or error=… when Authorize would fail).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code, err := s.authorize(q)
	target, perr := url.Parse(q.Get("redirect_uri"))
	if perr != nil || q.Get("redirect_uri") == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	v := target.Query()
	if err != nil {
		v.Set("error", "invalid_request")
		v.Set("error_description", err.Error())
	} else {
		v.Set("code", code)
	}
	if st := q.Get("state"); st != "" {
		v.Set("state", st)
	}
	target.RawQuery = v.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// tokenError is an RFC 6749 error answer.
type tokenError struct {
	status      int
	code, descr string
	// retryAfter is the Retry-After header in seconds, or "".
	retryAfter string
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	if !s.wait(r) {
		return
	}
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.PostForm
	req := TokenRequest{
		GrantType: f.Get("grant_type"), Code: f.Get("code"), CodeVerifier: f.Get("code_verifier"),
		RedirectURI: f.Get("redirect_uri"), RefreshToken: f.Get("refresh_token"), At: time.Now(),
	}
	if req.GrantType == "refresh_token" {
		s.refreshes++
	}
	answer, terr := s.token(r, &req)
	if terr != nil && terr.retryAfter != "" {
		w.Header().Set("Retry-After", terr.retryAfter)
	}
	switch {
	case terr != nil && terr.code == "":
		req.Status = terr.status
		http.Error(w, terr.descr, terr.status)
	case terr != nil:
		req.Status, req.Error = terr.status, terr.code
		body := map[string]any{"error": terr.code}
		if terr.descr != "" {
			body["error_description"] = terr.descr
		}
		if terr.status == http.StatusOK {
			body["ok"] = false // Slack's shape
		}
		if terr.status == http.StatusUnauthorized && req.ClientAuth == "basic" {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
		}
		writeJSON(w, terr.status, body)
	default:
		req.Status = http.StatusOK
		writeJSON(w, http.StatusOK, answer)
	}
	s.requests = append(s.requests, req)
}

// token answers one token request; s.mu is held.
func (s *Server) token(r *http.Request, req *TokenRequest) (map[string]any, *tokenError) {
	f := r.PostForm
	user, pass, basic := r.BasicAuth()
	if basic {
		// RFC 6749 section 2.3.1: form-encode, then Basic.
		user, _ = url.QueryUnescape(user)
		pass, _ = url.QueryUnescape(pass)
	}
	_, formID := f["client_id"]
	_, formSecret := f["client_secret"]
	switch {
	case basic && formSecret:
		req.ClientAuth = "both"
	case basic:
		req.ClientAuth = "basic"
	case formID || formSecret:
		req.ClientAuth, user, pass = "form", f.Get("client_id"), f.Get("client_secret")
	}
	req.ClientID = user

	if len(s.failures) > 0 {
		fl := s.failures[0]
		s.failures = s.failures[1:]
		return nil, s.scripted(fl)
	}
	switch {
	case req.ClientAuth == "both":
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request", descr: "client authenticated twice"}
	case req.ClientAuth == "" || !equal(user, s.clientID) || !equal(pass, s.clientSecret):
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", descr: "client authentication failed"}
	}

	switch req.GrantType {
	case "authorization_code":
		g, ok := s.codes[req.Code]
		switch {
		case !ok || g.used:
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "unknown or used code"}
		case g.clientID != user:
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "code issued to another client"}
		case g.redirectURI != req.RedirectURI:
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "redirect_uri does not match"}
		case g.challenge == "" && req.CodeVerifier != "":
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "code_verifier without code_challenge"}
		case g.challenge != "" && req.CodeVerifier == "":
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "code_verifier missing"}
		case g.challenge != "" && !equal(challenge(req.CodeVerifier), g.challenge):
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "code_verifier does not match"}
		}
		g.used = true
		rt := "rt-" + random()
		s.refresh[rt] = &refreshGrant{clientID: user, scope: g.scope}
		return s.issue(rt, g.scope), nil
	case "refresh_token":
		g, ok := s.refresh[req.RefreshToken]
		switch {
		case !ok || g.revoked:
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "refresh token revoked or unknown"}
		case g.clientID != user:
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", descr: "refresh token issued to another client"}
		}
		if !s.rotate {
			return s.issue("", g.scope), nil
		}
		g.revoked = true
		rt := "rt-" + random()
		s.refresh[rt] = &refreshGrant{clientID: user, scope: g.scope}
		return s.issue(rt, g.scope), nil
	case "":
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request", descr: "grant_type missing"}
	}
	return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", descr: req.GrantType}
}

func (s *Server) scripted(fl failure) *tokenError {
	te := &tokenError{status: fl.status, code: fl.code}
	if fl.code == "" {
		te.descr = http.StatusText(fl.status)
	} else {
		te.descr = "scripted failure"
	}
	if fl.retryAfter > 0 {
		te.retryAfter = strconv.Itoa(int((fl.retryAfter + time.Second - 1) / time.Second))
	}
	return te
}

// issue returns a success answer with a new access token, and refreshToken
// when not empty; s.mu is held.
func (s *Server) issue(refreshToken, scope string) map[string]any {
	at := "at-" + random()
	out := map[string]any{}
	maps.Copy(out, s.extra)
	out["access_token"] = at
	out["token_type"] = "Bearer"
	var exp time.Time
	if s.expiresIn > 0 {
		out["expires_in"] = int(s.expiresIn / time.Second)
		exp = time.Now().Add(s.expiresIn)
	}
	s.access[at] = exp
	if refreshToken != "" {
		out["refresh_token"] = refreshToken
	}
	if scope != "" {
		out["scope"] = scope
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
