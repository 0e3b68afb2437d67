package oauth_test

import (
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
)

func configured(p oauth.Provider) oauth.Provider {
	p.ClientID, p.ClientSecret, p.RedirectURL = "id", "secret", "https://api.example.com/v1/integrations/"+p.Name+"/callback"
	return p
}

func TestDefaultProviders(t *testing.T) {
	ps := oauth.DefaultProviders()
	for _, tc := range []struct {
		name, authURL, tokenURL string
		scopes                  []string
		pkce                    bool
	}{
		{oauth.Google, "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
			[]string{"https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/gmail.send", "https://www.googleapis.com/auth/gmail.modify"}, true},
		{oauth.Slack, "https://slack.com/oauth/v2/authorize", "https://slack.com/api/oauth.v2.access", []string{"chat:write"}, false},
		{oauth.Shopify, "https://{shop}.myshopify.com/admin/oauth/authorize", "https://{shop}.myshopify.com/admin/oauth/access_token",
			[]string{"read_customers", "read_orders"}, false},
		{oauth.Stripe, "https://connect.stripe.com/oauth/authorize", "https://connect.stripe.com/oauth/token", []string{"read_only"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := ps[tc.name]
			if !ok {
				t.Fatal("missing")
			}
			if p.Name != tc.name || p.AuthURL != tc.authURL || p.TokenURL != tc.tokenURL || p.PKCE != tc.pkce || !slices.Equal(p.Scopes, tc.scopes) {
				t.Errorf("provider = %+v", p)
			}
			if p.AuthStyle != oauth2.AuthStyleInParams {
				t.Errorf("AuthStyle = %v, want in params", p.AuthStyle)
			}
			if tc.name == oauth.Shopify {
				return
			}
			if err := configured(p).Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if err := p.Validate(); !errors.Is(err, oauth.ErrInvalidProvider) {
				t.Errorf("Validate without credentials = %v", err)
			}
		})
	}
	if len(ps) != 4 {
		t.Errorf("%d providers, want 4", len(ps))
	}
	// Fresh values each call.
	ps[oauth.Google].Scopes[0] = "changed"
	if oauth.DefaultProviders()[oauth.Google].Scopes[0] == "changed" {
		t.Error("DefaultProviders shares its slices")
	}
}

func TestAuthorizationURL_Providers(t *testing.T) {
	ps := oauth.DefaultProviders()
	verifier := oauth.NewVerifier()

	g := parse(t, oauth.AuthorizationURL(configured(ps[oauth.Google]), "st", verifier))
	for k, want := range map[string]string{
		"access_type": "offline", "prompt": "consent", "response_type": "code", "client_id": "id", "state": "st",
		"code_challenge_method": "S256", "code_challenge": oauth2.S256ChallengeFromVerifier(verifier),
		"redirect_uri": "https://api.example.com/v1/integrations/google/callback",
		"scope":        "https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.send https://www.googleapis.com/auth/gmail.modify",
	} {
		if got := g.Query().Get(k); got != want {
			t.Errorf("google %s = %q, want %q", k, got, want)
		}
	}
	if g.Host != "accounts.google.com" {
		t.Errorf("google host %q", g.Host)
	}

	s := parse(t, oauth.AuthorizationURL(configured(ps[oauth.Slack]), "st", verifier))
	if s.Query().Get("scope") != "chat:write" || s.Query().Get("code_challenge") != "" {
		t.Errorf("slack URL %s", s)
	}
	st := parse(t, oauth.AuthorizationURL(configured(ps[oauth.Stripe]), "st", ""))
	if st.Query().Get("scope") != "read_only" || st.Host != "connect.stripe.com" {
		t.Errorf("stripe URL %s", st)
	}
}

func parse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestProvider_ForShop(t *testing.T) {
	shopify := configured(oauth.DefaultProviders()[oauth.Shopify])
	for _, good := range []struct{ in, domain string }{
		{"acme", "acme.myshopify.com"},
		{"acme.myshopify.com", "acme.myshopify.com"},
		{" ACME-2.MyShopify.com ", "acme-2.myshopify.com"},
	} {
		p, err := shopify.ForShop(good.in)
		if err != nil {
			t.Errorf("ForShop(%q): %v", good.in, err)
			continue
		}
		sub := strings.TrimSuffix(good.domain, ".myshopify.com")
		if p.Shop != good.domain || p.AuthURL != "https://"+sub+".myshopify.com/admin/oauth/authorize" ||
			p.TokenURL != "https://"+sub+".myshopify.com/admin/oauth/access_token" {
			t.Errorf("ForShop(%q) = %+v", good.in, p)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("ForShop(%q).Validate: %v", good.in, err)
		}
	}
	for _, bad := range []string{
		"", "evil.com", "a.myshopify.com.evil.com", "myshopify.com", ".myshopify.com", "-acme.myshopify.com",
		"a.b.myshopify.com", "https://acme.myshopify.com", "acme.myshopify.com:443", "acme.myshopify.com/admin",
		"user@acme.myshopify.com", "acme.myshopify.com#", "ac me", "acme%2eevil.com", "acme.myshopify.com\x00",
		strings.Repeat("a", 64) + ".myshopify.com",
	} {
		p, err := shopify.ForShop(bad)
		if !errors.Is(err, oauth.ErrInvalidShop) {
			t.Errorf("ForShop(%q) = %+v, %v; want ErrInvalidShop", bad, p, err)
		}
		if code := helpdeskflow.ErrorCode(err); code != helpdeskflow.EValidation {
			t.Errorf("ForShop(%q) code %q", bad, code)
		}
	}
	if _, err := oauth.DefaultProviders()[oauth.Google].ForShop("acme"); !errors.Is(err, oauth.ErrNotPerShop) {
		t.Errorf("google ForShop = %v, want ErrNotPerShop", err)
	}
	if err := shopify.Validate(); !errors.Is(err, oauth.ErrInvalidProvider) || !strings.Contains(err.Error(), "ForShop") {
		t.Errorf("Validate without shop = %v", err)
	}
}

func TestProvider_Validate(t *testing.T) {
	base := configured(oauth.DefaultProviders()[oauth.Stripe])
	for _, tc := range []struct {
		name string
		edit func(*oauth.Provider)
		ok   bool
	}{
		{"ok", func(*oauth.Provider) {}, true},
		{"http loopback", func(p *oauth.Provider) { *p = p.WithEndpoints("http://127.0.0.1:9/a", "http://localhost:9/t") }, true},
		{"http elsewhere", func(p *oauth.Provider) { *p = p.WithEndpoints("", "http://connect.stripe.com/oauth/token") }, false},
		{"relative", func(p *oauth.Provider) { *p = p.WithEndpoints("/authorize", "") }, false},
		{"no client", func(p *oauth.Provider) { p.ClientID = "" }, false},
		{"no redirect", func(p *oauth.Provider) { p.RedirectURL = "" }, false},
		{"no name", func(p *oauth.Provider) { p.Name = "" }, false},
	} {
		p := base
		tc.edit(&p)
		err := p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, oauth.ErrInvalidProvider) {
			t.Errorf("%s: %v is not ErrInvalidProvider", tc.name, err)
		}
	}
	// WithEndpoints keeps what it is not given.
	if p := base.WithEndpoints("", ""); p.AuthURL != base.AuthURL || p.TokenURL != base.TokenURL {
		t.Errorf("WithEndpoints(\"\", \"\") = %+v", p)
	}
}

func TestVerifyShopifyHMAC(t *testing.T) {
	// The example of Shopify's OAuth documentation.
	q := url.Values{
		"code": {"0907a61c0c8d55e99db179b68161bc00"}, "shop": {"some-shop.myshopify.com"},
		"state": {"0.6784241404160823"}, "timestamp": {"1337178173"},
		"hmac": {"700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"},
	}
	if err := oauth.VerifyShopifyHMAC(q, "hush"); err != nil {
		t.Fatalf("documented example: %v", err)
	}
	if err := oauth.VerifyShopifyHMAC(q, "other"); !errors.Is(err, oauth.ErrShopifyHMAC) {
		t.Errorf("other secret: %v", err)
	}
	tampered := url.Values{}
	for k, v := range q {
		tampered[k] = v
	}
	tampered.Set("shop", "evil.myshopify.com")
	if err := oauth.VerifyShopifyHMAC(tampered, "hush"); !errors.Is(err, oauth.ErrShopifyHMAC) {
		t.Errorf("tampered: %v", err)
	}
	tampered.Set("hmac", hex.EncodeToString(oauth.ShopifyHMAC(tampered, "hush")))
	if err := oauth.VerifyShopifyHMAC(tampered, "hush"); err != nil {
		t.Errorf("re-signed: %v", err)
	}
	tampered.Del("hmac")
	if err := oauth.VerifyShopifyHMAC(tampered, "hush"); !errors.Is(err, oauth.ErrShopifyHMAC) {
		t.Errorf("no hmac: %v", err)
	}
}
