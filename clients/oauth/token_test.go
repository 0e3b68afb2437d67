package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
)

var stateKey = []byte("0123456789abcdef0123456789abcdef")

// connect runs the whole authorization-code flow against fake for p and
// returns the token: signed state with the verifier inside, the
// authorization URL, the fake's consent, state verification, exchange.
func connect(t *testing.T, fake *oauthtest.Server, p oauth.Provider) oauth.Token {
	t.Helper()
	signer := oauth.NewStateSigner(stateKey)
	ws := uuid.New()
	verifier := ""
	if p.PKCE {
		verifier = oauth.NewVerifier()
	}
	state, err := signer.Sign(oauth.State{WorkspaceID: ws, ConnectionID: uuid.New(), Provider: p.Name, Verifier: verifier, Shop: p.Shop})
	if err != nil {
		t.Fatal(err)
	}
	code, err := fake.Authorize(oauth.AuthorizationURL(p, state, verifier))
	if err != nil {
		t.Fatal(err)
	}
	st, err := signer.Verify(state, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(p.Name, ws); err != nil {
		t.Fatal(err)
	}
	tok, err := oauth.Exchange(context.Background(), p, code, st.Verifier, nil)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func TestExchange(t *testing.T) {
	fake := oauthtest.NewServer()
	defer fake.Close()
	p := fake.Provider("fake")

	before := time.Now()
	tok := connect(t, fake, p)
	if tok.AccessToken == "" || tok.RefreshToken == "" || !tok.Rotated {
		t.Fatalf("token = %+v, want access and refresh tokens, Rotated", tok)
	}
	if !fake.ValidAccessToken(tok.AccessToken) {
		t.Error("fake does not know the access token")
	}
	if got, want := tok.Scope, "read write"; got != want {
		t.Errorf("Scope = %q, want %q", got, want)
	}
	if got, want := tok.TokenType, "Bearer"; got != want {
		t.Errorf("TokenType = %q, want %q", got, want)
	}
	if lo, hi := before.Add(time.Hour-time.Minute), time.Now().Add(time.Hour+time.Minute); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
		t.Errorf("Expiry = %v, want about an hour from now", tok.Expiry)
	}
	if tok.Extra != nil {
		t.Errorf("Extra = %v, want none", tok.Extra)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d token requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.GrantType != "authorization_code" || r.ClientAuth != "basic" || r.ClientID != oauthtest.ClientID ||
		r.CodeVerifier == "" || r.RedirectURI != oauthtest.RedirectURL || r.Status != http.StatusOK {
		t.Errorf("request = %+v", r)
	}
}

func TestExchange_PKCE(t *testing.T) {
	fake := oauthtest.NewServer()
	defer fake.Close()
	p := fake.Provider("fake")
	verifier := oauth.NewVerifier()
	authURL := oauth.AuthorizationURL(p, "st", verifier)
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got, want := q.Get("code_challenge"), oauth2.S256ChallengeFromVerifier(verifier); got != want {
		t.Errorf("code_challenge = %q, want %q", got, want)
	}
	if got := q.Get("code_challenge_method"); got != "S256" {
		t.Errorf("code_challenge_method = %q", got)
	}
	if q.Get("state") != "st" || q.Get("client_id") != oauthtest.ClientID || q.Get("scope") != "read write" || q.Get("response_type") != "code" {
		t.Errorf("authorization URL %s", authURL)
	}

	t.Run("wrong verifier", func(t *testing.T) {
		code, err := fake.Authorize(authURL)
		if err != nil {
			t.Fatal(err)
		}
		_, err = oauth.Exchange(context.Background(), p, code, oauth.NewVerifier(), nil)
		if got, want := oauth.Classify(err), oauth.FailureInvalidGrant; got != want {
			t.Fatalf("Classify(%v) = %v, want %v", err, got, want)
		}
		// The right verifier still works: the code was not spent.
		if _, err := oauth.Exchange(context.Background(), p, code, verifier, nil); err != nil {
			t.Fatal(err)
		}
		// And a code works once.
		_, err = oauth.Exchange(context.Background(), p, code, verifier, nil)
		if got, want := oauth.Classify(err), oauth.FailureInvalidGrant; got != want {
			t.Fatalf("reused code: Classify(%v) = %v, want %v", err, got, want)
		}
	})
	t.Run("missing verifier", func(t *testing.T) {
		n := len(fake.Requests())
		_, err := oauth.Exchange(context.Background(), p, "code", "", nil)
		if !errors.Is(err, oauth.ErrMissingVerifier) {
			t.Fatalf("err = %v, want ErrMissingVerifier", err)
		}
		if got := len(fake.Requests()); got != n {
			t.Errorf("a request was sent")
		}
	})
	t.Run("no challenge", func(t *testing.T) {
		// A provider configured without PKCE while the fake got none:
		// sending a verifier anyway would be refused, and none is sent.
		np := p
		np.PKCE = false
		code, err := fake.Authorize(oauth.AuthorizationURL(np, "st", verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oauth.Exchange(context.Background(), np, code, verifier, nil); err != nil {
			t.Fatal(err)
		}
		if r := fake.Requests(); r[len(r)-1].CodeVerifier != "" {
			t.Error("verifier sent without PKCE")
		}
	})
	t.Run("wrong redirect", func(t *testing.T) {
		code, err := fake.Authorize(authURL)
		if err != nil {
			t.Fatal(err)
		}
		other := p
		other.RedirectURL = "http://127.0.0.1/elsewhere"
		_, err = oauth.Exchange(context.Background(), other, code, verifier, nil)
		if got, want := oauth.Classify(err), oauth.FailureInvalidGrant; got != want {
			t.Fatalf("Classify(%v) = %v, want %v", err, got, want)
		}
	})
}

func TestExchange_FormAuthAndExtra(t *testing.T) {
	fake := oauthtest.NewServer()
	defer fake.Close()
	fake.SetExtra(map[string]any{"stripe_user_id": "acct_123", "team": map[string]any{"id": "T1", "name": "Acme"}})
	fake.ExpiresIn(0)
	p := fake.Provider("stripe")
	p.AuthStyle = oauth2.AuthStyleInParams
	p.PKCE = false
	tok := connect(t, fake, p)
	if got := fake.Requests()[0].ClientAuth; got != "form" {
		t.Errorf("ClientAuth = %q, want form", got)
	}
	if got, want := tok.Extra["stripe_user_id"], "acct_123"; got != want {
		t.Errorf("Extra[stripe_user_id] = %v, want %v", got, want)
	}
	if team, _ := tok.Extra["team"].(map[string]any); team["name"] != "Acme" {
		t.Errorf("Extra[team] = %v", tok.Extra["team"])
	}
	for _, k := range []string{"access_token", "refresh_token", "scope", "token_type", "expires_in"} {
		if _, ok := tok.Extra[k]; ok {
			t.Errorf("Extra has %q", k)
		}
	}
	if !tok.Expiry.IsZero() {
		t.Errorf("Expiry = %v, want zero without expires_in", tok.Expiry)
	}
}

func TestExchange_Shopify(t *testing.T) {
	fake := oauthtest.NewServer()
	defer fake.Close()
	p := oauth.DefaultProviders()[oauth.Shopify].WithEndpoints(fake.AuthURL()+"?shop={shop}", fake.TokenURL()+"?shop={shop}")
	p.ClientID, p.ClientSecret, p.RedirectURL = oauthtest.ClientID, oauthtest.ClientSecret, oauthtest.RedirectURL
	if err := p.Validate(); !errors.Is(err, oauth.ErrInvalidProvider) {
		t.Fatalf("Validate before ForShop = %v, want ErrInvalidProvider", err)
	}
	p, err := p.ForShop("Acme")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Shop, "acme.myshopify.com"; got != want {
		t.Errorf("Shop = %q, want %q", got, want)
	}
	u, _ := url.Parse(oauth.AuthorizationURL(p, "st", ""))
	if got, want := u.Query().Get("scope"), "read_customers,read_orders"; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
	if got := u.Query().Get("shop"); got != "acme" {
		t.Errorf("shop = %q", got)
	}
	tok := connect(t, fake, p)
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	if got := fake.Requests()[0]; got.ClientAuth != "form" || got.CodeVerifier != "" {
		t.Errorf("request = %+v", got)
	}
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	t.Run("without rotation", func(t *testing.T) {
		fake := oauthtest.NewServer()
		defer fake.Close()
		p := fake.Provider("fake")
		first := connect(t, fake, p)
		tok, err := oauth.Refresh(ctx, p, first.RefreshToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Rotated || tok.RefreshToken != first.RefreshToken {
			t.Errorf("Rotated = %v, RefreshToken = %q; want the old one %q kept", tok.Rotated, tok.RefreshToken, first.RefreshToken)
		}
		if tok.AccessToken == first.AccessToken || !fake.ValidAccessToken(tok.AccessToken) {
			t.Errorf("access token not renewed")
		}
		if tok.Expiry.IsZero() {
			t.Error("no expiry")
		}
		// The refresh token keeps working.
		if _, err := oauth.Refresh(ctx, p, first.RefreshToken, nil); err != nil {
			t.Fatal(err)
		}
		if got, want := fake.Refreshes(), 2; got != want {
			t.Errorf("Refreshes = %d, want %d", got, want)
		}
		r := fake.Requests()[1]
		if r.GrantType != "refresh_token" || r.RefreshToken != first.RefreshToken || r.ClientID != oauthtest.ClientID {
			t.Errorf("request = %+v", r)
		}
	})
	t.Run("with rotation", func(t *testing.T) {
		fake := oauthtest.NewServer()
		defer fake.Close()
		fake.RotateRefreshTokens(true)
		p := fake.Provider("fake")
		first := connect(t, fake, p)
		tok, err := oauth.Refresh(ctx, p, first.RefreshToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.Rotated || tok.RefreshToken == first.RefreshToken || tok.RefreshToken == "" {
			t.Fatalf("Rotated = %v, RefreshToken = %q; want a new one", tok.Rotated, tok.RefreshToken)
		}
		_, err = oauth.Refresh(ctx, p, first.RefreshToken, nil)
		if got, want := oauth.Classify(err), oauth.FailureInvalidGrant; got != want {
			t.Errorf("old refresh token: Classify(%v) = %v, want %v", err, got, want)
		}
		if _, err := oauth.Refresh(ctx, p, tok.RefreshToken, nil); err != nil {
			t.Errorf("new refresh token: %v", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		fake := oauthtest.NewServer()
		defer fake.Close()
		p := fake.Provider("fake")
		first := connect(t, fake, p)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := oauth.Refresh(ctx, p, first.RefreshToken, nil)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got, want := fake.Refreshes(), 8; got != want {
			t.Errorf("Refreshes = %d, want %d", got, want)
		}
	})
}

// failing returns the error of a refresh after script has set fake up.
func failing(t *testing.T, script func(fake *oauthtest.Server, refreshToken string), client *http.Client) error {
	t.Helper()
	fake := oauthtest.NewServer()
	defer fake.Close()
	p := fake.Provider("fake")
	first := connect(t, fake, p)
	script(fake, first.RefreshToken)
	tok, err := oauth.Refresh(context.Background(), p, first.RefreshToken, client)
	if err == nil {
		t.Fatalf("Refresh succeeded: %+v", tok)
	}
	if tok.AccessToken != "" {
		t.Errorf("token with an error: %+v", tok)
	}
	return err
}

func TestRefresh_Failures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(*oauthtest.Server, string)
		want   oauth.Failure
	}{
		{"revoked", func(f *oauthtest.Server, rt string) { f.Revoke(rt) }, oauth.FailureInvalidGrant},
		{"scripted invalid_grant", func(f *oauthtest.Server, _ string) { f.FailNext(400, "invalid_grant") }, oauth.FailureInvalidGrant},
		{"slack invalid_refresh_token with 200", func(f *oauthtest.Server, _ string) { f.FailNext(200, "invalid_refresh_token") }, oauth.FailureInvalidGrant},
		{"500", func(f *oauthtest.Server, _ string) { f.FailNext(500, "") }, oauth.FailureTemporary},
		{"502 with a JSON error", func(f *oauthtest.Server, _ string) { f.FailNext(502, "server_error") }, oauth.FailureTemporary},
		{"503 saying invalid_grant", func(f *oauthtest.Server, _ string) { f.FailNext(503, "invalid_grant") }, oauth.FailureTemporary},
		{"temporarily_unavailable", func(f *oauthtest.Server, _ string) { f.FailNext(400, "temporarily_unavailable") }, oauth.FailureTemporary},
		{"wrong client secret", func(f *oauthtest.Server, _ string) { f.SetClient(oauthtest.ClientID, "rotated") }, oauth.FailureInvalidClient},
		{"unauthorized_client", func(f *oauthtest.Server, _ string) { f.FailNext(400, "unauthorized_client") }, oauth.FailureInvalidClient},
		{"invalid_request", func(f *oauthtest.Server, _ string) { f.FailNext(400, "invalid_request") }, oauth.FailureOther},
		{"400 without a body", func(f *oauthtest.Server, _ string) { f.FailNext(400, "") }, oauth.FailureOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := failing(t, tc.script, nil)
			if got := oauth.Classify(err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", err, got, tc.want)
			}
			if got := oauth.RetryAfter(err); got != 0 {
				t.Errorf("RetryAfter = %v, want 0", got)
			}
		})
	}
}

func TestRefresh_RateLimited(t *testing.T) {
	err := failing(t, func(f *oauthtest.Server, _ string) { f.RateLimitNext(30 * time.Second) }, nil)
	if got, want := oauth.Classify(err), oauth.FailureTemporary; got != want {
		t.Errorf("Classify(%v) = %v, want %v", err, got, want)
	}
	if got, want := oauth.RetryAfter(err), 30*time.Second; got != want {
		t.Errorf("RetryAfter = %v, want %v", got, want)
	}
	if got, want := oauth.RetryDelay(err, 0), 30*time.Second; got != want {
		t.Errorf("RetryDelay(0) = %v, want %v", got, want)
	}
	if got, want := oauth.RetryDelay(err, 6), 64*time.Second; got != want {
		t.Errorf("RetryDelay(6) = %v, want %v", got, want)
	}
}

func TestRefresh_Network(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		fake := oauthtest.NewServer()
		p := fake.Provider("fake")
		fake.Close()
		_, err := oauth.Refresh(context.Background(), p, "rt", nil)
		if got, want := oauth.Classify(err), oauth.FailureTemporary; got != want {
			t.Errorf("Classify(%v) = %v, want %v", err, got, want)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		err := failing(t, func(f *oauthtest.Server, _ string) { f.Latency(2 * time.Second) }, &http.Client{Timeout: 50 * time.Millisecond})
		if got, want := oauth.Classify(err), oauth.FailureTemporary; got != want {
			t.Errorf("Classify(%v) = %v, want %v", err, got, want)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		fake := oauthtest.NewServer()
		defer fake.Close()
		p := fake.Provider("fake")
		first := connect(t, fake, p)
		fake.Latency(2 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := oauth.Refresh(ctx, p, first.RefreshToken, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
		if got, want := oauth.Classify(err), oauth.FailureTemporary; got != want {
			t.Errorf("Classify(%v) = %v, want %v", err, got, want)
		}
	})
}

func TestRefresh_NoRefreshToken(t *testing.T) {
	fake := oauthtest.NewServer()
	defer fake.Close()
	_, err := oauth.Refresh(context.Background(), fake.Provider("fake"), "", nil)
	if !errors.Is(err, oauth.ErrNoRefreshToken) {
		t.Fatalf("err = %v", err)
	}
	if got, want := oauth.Classify(err), oauth.FailureInvalidGrant; got != want {
		t.Errorf("Classify = %v, want %v", got, want)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want oauth.Failure
	}{
		{nil, oauth.FailureNone},
		{errors.New("boom"), oauth.FailureOther},
		{context.Canceled, oauth.FailureTemporary},
		{oauth.ErrMissingVerifier, oauth.FailureOther},
		{&oauth2.RetrieveError{Response: &http.Response{StatusCode: 429}}, oauth.FailureTemporary},
		{&oauth2.RetrieveError{ErrorCode: "invalid_grant"}, oauth.FailureInvalidGrant},
	} {
		if got := oauth.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if got := oauth.FailureInvalidGrant.String(); got != "invalid_grant" {
		t.Errorf("String = %q", got)
	}
}

func TestRetryDelay(t *testing.T) {
	for attempt, want := range map[int]time.Duration{
		-1: time.Second, 0: time.Second, 1: 2 * time.Second, 3: 8 * time.Second,
		8: 256 * time.Second, 9: 5 * time.Minute, 100: 5 * time.Minute,
	} {
		if got := oauth.RetryDelay(errors.New("x"), attempt); got != want {
			t.Errorf("RetryDelay(%d) = %v, want %v", attempt, got, want)
		}
	}
	h := http.Header{}
	h.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	err := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 429, Header: h}}
	if got := oauth.RetryAfter(err); got < 59*time.Minute || got > time.Hour {
		t.Errorf("RetryAfter(HTTP date an hour ahead) = %v", got)
	}
}

func TestNeedsRefresh(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		expiry time.Time
		margin time.Duration
		want   bool
	}{
		{"never expires", time.Time{}, 0, false},
		{"far", now.Add(time.Hour), 0, false},
		{"just outside default margin", now.Add(5*time.Minute + time.Second), 0, false},
		{"at default margin", now.Add(5 * time.Minute), 0, true},
		{"inside default margin", now.Add(time.Minute), 0, true},
		{"expired", now.Add(-time.Hour), 0, true},
		{"custom margin outside", now.Add(2 * time.Minute), time.Minute, false},
		{"custom margin inside", now.Add(30 * time.Second), time.Minute, true},
	} {
		if got := oauth.NeedsRefresh(tc.expiry, now, tc.margin); got != tc.want {
			t.Errorf("%s: NeedsRefresh = %v, want %v", tc.name, got, tc.want)
		}
	}
}
