package oauthtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
)

type answer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// post sends form to the token endpoint, with Basic credentials unless
// basic is nil, and fails the test unless the status is want.
func post(t *testing.T, srv *oauthtest.Server, form url.Values, basic []string, want int) (answer, http.Header) {
	t.Helper()
	a, status, h, err := send(srv, form, basic)
	if err != nil {
		t.Fatal(err)
	}
	if status != want {
		t.Fatalf("status %d (%+v), want %d", status, a, want)
	}
	return a, h
}

// send is post for any goroutine: it returns what post checks.
func send(srv *oauthtest.Server, form url.Values, basic []string) (answer, int, http.Header, error) {
	var a answer
	req, err := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return a, 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return a, 0, nil, err
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return a, resp.StatusCode, resp.Header, err
		}
	}
	return a, resp.StatusCode, resp.Header, nil
}

var creds = []string{oauthtest.ClientID, oauthtest.ClientSecret}

func authURL(srv *oauthtest.Server, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {oauthtest.ClientID}, "redirect_uri": {oauthtest.RedirectURL}, "scope": {"a b"}}
	for k, v := range extra {
		q[k] = v
	}
	return srv.AuthURL() + "?" + q.Encode()
}

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func TestServer_AuthorizationCode(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	verifier := strings.Repeat("v", 43)
	code, err := srv.Authorize(authURL(srv, url.Values{"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oauthtest.RedirectURL}}

	noVerifier, _ := post(t, srv, form, creds, http.StatusBadRequest)
	if noVerifier.Error != "invalid_grant" {
		t.Errorf("without verifier: %+v", noVerifier)
	}
	form.Set("code_verifier", strings.Repeat("w", 43))
	if a, _ := post(t, srv, form, creds, http.StatusBadRequest); a.Error != "invalid_grant" {
		t.Errorf("wrong verifier: %+v", a)
	}
	form.Set("code_verifier", verifier)
	// Form credentials work as well as Basic.
	withForm := url.Values{"client_id": {oauthtest.ClientID}, "client_secret": {oauthtest.ClientSecret}}
	for k, v := range form {
		withForm[k] = v
	}
	a, _ := post(t, srv, withForm, nil, http.StatusOK)
	if a.AccessToken == "" || a.RefreshToken == "" || a.TokenType != "Bearer" || a.ExpiresIn != 3600 || a.Scope != "a b" {
		t.Errorf("answer %+v", a)
	}
	if a, _ := post(t, srv, form, creds, http.StatusBadRequest); a.Error != "invalid_grant" {
		t.Errorf("code reused: %+v", a)
	}

	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	if r := reqs[2]; r.ClientAuth != "form" || r.ClientID != oauthtest.ClientID || r.Status != 200 || r.CodeVerifier != verifier {
		t.Errorf("request %+v", r)
	}
	if r := reqs[0]; r.ClientAuth != "basic" || r.Error != "invalid_grant" || r.Status != 400 || r.At.IsZero() {
		t.Errorf("request %+v", r)
	}
}

func TestServer_ClientAuthentication(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	for _, tc := range []struct {
		name  string
		basic []string
		form  url.Values
		code  string
		want  int
	}{
		{"none", nil, nil, "invalid_client", 401},
		{"wrong secret", []string{oauthtest.ClientID, "nope"}, nil, "invalid_client", 401},
		{"wrong form secret", nil, url.Values{"client_id": {oauthtest.ClientID}, "client_secret": {"nope"}}, "invalid_client", 401},
		{"both", creds, url.Values{"client_secret": {oauthtest.ClientSecret}}, "invalid_request", 400},
		{"right, unknown token", creds, nil, "invalid_grant", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			for k, v := range tc.form {
				f[k] = v
			}
			if a, _ := post(t, srv, f, tc.basic, tc.want); a.Error != tc.code {
				t.Errorf("error %q, want %q", a.Error, tc.code)
			}
		})
	}
	srv.SetClient("id with space&", "secret:with/colon")
	if a, _ := post(t, srv, form, []string{"id with space&", "secret:with/colon"}, 400); a.Error != "invalid_grant" {
		t.Errorf("escaped Basic credentials refused: %+v", a)
	}
}

func TestServer_Scripted(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	srv.FailNext(500, "")
	srv.RateLimitNext(1500 * time.Millisecond)
	srv.FailNext(200, "invalid_refresh_token")
	post(t, srv, form, creds, 500)
	a, h := post(t, srv, form, creds, 429)
	if got := h.Get("Retry-After"); got != "2" || a.Error == "" {
		t.Errorf("Retry-After %q, answer %+v", got, a)
	}
	if a, _ := post(t, srv, form, creds, 200); a.Error != "invalid_refresh_token" || a.AccessToken != "" {
		t.Errorf("Slack-shaped failure: %+v", a)
	}
	if a, _ := post(t, srv, form, creds, 400); a.Error != "invalid_grant" {
		t.Errorf("after the script: %+v", a)
	}
	if got, want := srv.Refreshes(), 4; got != want {
		t.Errorf("Refreshes = %d, want %d", got, want)
	}
	if a, _ := post(t, srv, url.Values{"grant_type": {"password"}}, creds, 400); a.Error != "unsupported_grant_type" {
		t.Errorf("password grant: %+v", a)
	}
}

func TestServer_Authorize(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	for name, raw := range map[string]string{
		"other client":    strings.Replace(authURL(srv, nil), oauthtest.ClientID, "evil", 1),
		"plain challenge": authURL(srv, url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"plain"}}),
		"no redirect":     authURL(srv, url.Values{"redirect_uri": {""}}),
		"token flow":      authURL(srv, url.Values{"response_type": {"token"}}),
		"other server":    strings.Replace(authURL(srv, nil), "127.0.0.1", "localhost", 1),
	} {
		if code, err := srv.Authorize(raw); err == nil {
			t.Errorf("%s: Authorize = %q, want an error", name, code)
		}
	}

	// Over HTTP, the endpoint redirects like a consenting user would.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL(srv, url.Values{"state": {"s1"}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != "s1" || loc.Query().Get("code") == "" || !strings.HasPrefix(loc.String(), oauthtest.RedirectURL) {
		t.Errorf("redirected to %s", loc)
	}
}

func TestServer_Refresh(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	code, err := srv.Authorize(authURL(srv, nil))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := post(t, srv, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oauthtest.RedirectURL}}, creds, 200)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}

	srv.ExpiresIn(0)
	a, _ := post(t, srv, refresh, creds, 200)
	if a.RefreshToken != "" || a.ExpiresIn != 0 || a.Scope != "a b" || !srv.ValidAccessToken(a.AccessToken) {
		t.Errorf("without rotation: %+v", a)
	}
	srv.RotateRefreshTokens(true)
	b, _ := post(t, srv, refresh, creds, 200)
	if b.RefreshToken == "" || b.RefreshToken == first.RefreshToken {
		t.Errorf("with rotation: %+v", b)
	}
	post(t, srv, refresh, creds, 400) // the rotated-out token
	srv.Revoke(b.RefreshToken)
	if a, _ := post(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.RefreshToken}}, creds, 400); a.Error != "invalid_grant" {
		t.Errorf("revoked: %+v", a)
	}
	if srv.ValidAccessToken("made-up") {
		t.Error("made-up access token valid")
	}
	resp, err := http.Get(srv.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET token: %d", resp.StatusCode)
	}
}

func TestServer_HoldNext(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	code, err := srv.Authorize(authURL(srv, nil))
	if err != nil {
		t.Fatal(err)
	}
	srv.RotateRefreshTokens(true)
	first, _ := post(t, srv, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oauthtest.RedirectURL}}, creds, 200)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}

	holdAndSend := func() (release func(), answers chan answer) {
		release = srv.HoldNext()
		answers = make(chan answer, 1)
		held := srv.Held()
		go func() {
			a, _, _, err := send(srv, refresh, creds)
			if err != nil {
				a.Error = err.Error()
			}
			answers <- a
		}()
		for srv.Held() == held {
			time.Sleep(10 * time.Millisecond)
		}
		return release, answers
	}
	releaseFirst, firstAnswer := holdAndSend()
	_, secondAnswer := holdAndSend()
	if got := srv.Held(); got != 2 {
		t.Fatalf("Held = %d, want 2", got)
	}
	// A request after the held ones is answered while they wait.
	post(t, srv, url.Values{"grant_type": {"password"}}, creds, 400)
	// Released alone, the first is processed (and rotates the refresh
	// token both carry); the second is not.
	releaseFirst()
	if a := <-firstAnswer; a.RefreshToken == "" {
		t.Errorf("the first held request: %+v", a)
	}
	if got, want := srv.Refreshes(), 1; got != want || srv.Held() != 1 {
		t.Errorf("Refreshes = %d, Held = %d after releasing one; want %d and 1 (a held request is not processed yet)", got, srv.Held(), want)
	}
	srv.Release()
	if a := <-secondAnswer; a.Error != "invalid_grant" {
		t.Errorf("the second held request, processed after the rotation: %+v", a)
	}
	if got := srv.Held(); got != 0 {
		t.Errorf("Held = %d after Release", got)
	}
}
