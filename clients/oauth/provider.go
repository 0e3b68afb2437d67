// Package oauth is the protocol half of a workspace's OAuth 2 connections to
// Google (Gmail), Slack, Shopify and Stripe Connect: provider endpoints and
// scopes, the sealed state parameter that binds an authorization to a
// workspace (and carries the PKCE verifier), the authorization URL, the code
// exchange and the refresh through golang.org/x/oauth2, and the
// classification of token-endpoint failures into "the grant is gone"
// (invalid_grant: mark the integration token_expired, never retry), "our
// client is misconfigured", and "temporary" (5xx, 429, network: back off and
// retry).
//
// It stores nothing and takes no locks: storage, the HTTP routes and the
// at-most-one-refresh-per-connection lock are built on top of it. Every
// function is safe for concurrent use. Package oauthtest is a fake provider
// for tests.
package oauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/helpdeskflow/helpdeskflow"
)

// ShopPlaceholder stands for the shop's subdomain in a per-shop provider's
// URLs (Shopify); Provider.ForShop replaces it.
const ShopPlaceholder = "{shop}"

// Provider names in DefaultProviders.
const (
	Google  = "google"
	Slack   = "slack"
	Shopify = "shopify"
	Stripe  = "stripe"
)

// Provider is one OAuth 2 authorization server and our client registration
// with it. The zero ScopeSeparator joins scopes with a space (RFC 6749);
// Slack and Shopify want a comma. A Provider is a value: the With* and For*
// methods return changed copies.
type Provider struct {
	// Name is the provider's name in routes and stored integrations.
	Name string
	// AuthURL is the authorization endpoint the user's browser is sent to;
	// TokenURL is the token endpoint the server posts to. Either may hold
	// ShopPlaceholder until ForShop is called.
	AuthURL, TokenURL string
	// Scopes are requested at authorization, joined by ScopeSeparator.
	Scopes []string
	// ScopeSeparator joins Scopes; "" means a space.
	ScopeSeparator string
	// PKCE sends an S256 code_challenge and the code_verifier (RFC 7636).
	PKCE bool
	// ClientID and ClientSecret are our registration with the provider.
	ClientID, ClientSecret string
	// RedirectURL is our callback, registered with the provider.
	RedirectURL string
	// ExtraAuthParams are added to the authorization URL (Google's
	// access_type=offline and prompt=consent, which make it issue a refresh
	// token every time).
	ExtraAuthParams map[string]string
	// AuthStyle says how the client authenticates at the token endpoint;
	// the zero value (oauth2.AuthStyleAutoDetect) tries Basic, then form
	// parameters, so set it for known providers.
	AuthStyle oauth2.AuthStyle
	// Shop is the shop domain ForShop resolved ("acme.myshopify.com"), or "".
	Shop string
}

// DefaultProviders returns the real Google (Gmail), Slack, Shopify and Stripe
// Connect providers keyed by name, without client credentials or redirect
// URL (configuration fills those in, and may replace the endpoints with
// WithEndpoints). Shopify's URLs are per shop: call ForShop before use.
// Each call returns fresh maps and slices.
func DefaultProviders() map[string]Provider {
	return map[string]Provider{
		Google: {
			Name:     Google,
			AuthURL:  "https://accounts.google.com/o/oauth2/v2/auth",
			TokenURL: "https://oauth2.googleapis.com/token",
			Scopes: []string{
				"https://www.googleapis.com/auth/gmail.readonly",
				"https://www.googleapis.com/auth/gmail.send",
				"https://www.googleapis.com/auth/gmail.modify",
			},
			PKCE:            true,
			ExtraAuthParams: map[string]string{"access_type": "offline", "prompt": "consent"},
			AuthStyle:       oauth2.AuthStyleInParams,
		},
		Slack: {
			Name:     Slack,
			AuthURL:  "https://slack.com/oauth/v2/authorize",
			TokenURL: "https://slack.com/api/oauth.v2.access",
			// Bot scopes; Slack's v2 flow wants them comma-separated.
			Scopes:         []string{"chat:write"},
			ScopeSeparator: ",",
			AuthStyle:      oauth2.AuthStyleInParams,
		},
		Shopify: {
			Name:           Shopify,
			AuthURL:        "https://" + ShopPlaceholder + ".myshopify.com/admin/oauth/authorize",
			TokenURL:       "https://" + ShopPlaceholder + ".myshopify.com/admin/oauth/access_token",
			Scopes:         []string{"read_customers", "read_orders"},
			ScopeSeparator: ",",
			AuthStyle:      oauth2.AuthStyleInParams,
		},
		Stripe: {
			Name:     Stripe,
			AuthURL:  "https://connect.stripe.com/oauth/authorize",
			TokenURL: "https://connect.stripe.com/oauth/token",
			Scopes:   []string{"read_only"},
			// Stripe takes the platform's secret key as client_secret.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// WithEndpoints returns p with its authorization and token URLs replaced
// (configuration, or a fake in tests); an empty argument keeps that URL.
// The URLs may hold ShopPlaceholder.
func (p Provider) WithEndpoints(authURL, tokenURL string) Provider {
	if authURL != "" {
		p.AuthURL = authURL
	}
	if tokenURL != "" {
		p.TokenURL = tokenURL
	}
	p.Scopes = slices.Clone(p.Scopes)
	return p
}

// Errors about providers. Each is returned wrapped in a *helpdeskflow.Error
// with code EValidation; test for them with errors.Is.
var (
	// ErrInvalidShop: the shop is not a "name.myshopify.com" domain.
	ErrInvalidShop = errors.New("oauth: invalid shop domain")
	// ErrNotPerShop: ForShop on a provider whose URLs have no ShopPlaceholder.
	ErrNotPerShop = errors.New("oauth: provider is not per shop")
	// ErrInvalidProvider: Validate found the provider incomplete.
	ErrInvalidProvider = errors.New("oauth: invalid provider configuration")
)

// shopDomain is Shopify's own rule for the shop parameter.
var shopDomain = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com$`)

// NormalizeShop returns the shop's canonical domain: lower case, with
// ".myshopify.com" added to a bare name ("acme" → "acme.myshopify.com").
// Anything else — another domain ("evil.com", "a.myshopify.com.evil.com"),
// a scheme, port, path or user — is ErrInvalidShop (code EValidation).
func NormalizeShop(shop string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(shop))
	if s != "" && !strings.Contains(s, ".") {
		s += ".myshopify.com"
	}
	if !shopDomain.MatchString(s) {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EValidation,
			Message: fmt.Sprintf("shop %q is not a myshopify.com domain", shop), Err: ErrInvalidShop}
	}
	return s, nil
}

// ForShop returns p with ShopPlaceholder in its URLs replaced by the shop's
// subdomain and Shop set to its canonical domain (see NormalizeShop). It
// returns ErrInvalidShop for a bad shop and ErrNotPerShop when neither URL
// holds the placeholder, both with code EValidation.
func (p Provider) ForShop(shop string) (Provider, error) {
	domain, err := NormalizeShop(shop)
	if err != nil {
		return Provider{}, err
	}
	if !strings.Contains(p.AuthURL, ShopPlaceholder) && !strings.Contains(p.TokenURL, ShopPlaceholder) {
		return Provider{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation,
			Message: fmt.Sprintf("provider %q is not per shop", p.Name), Err: ErrNotPerShop}
	}
	name := strings.TrimSuffix(domain, ".myshopify.com")
	p.AuthURL = strings.ReplaceAll(p.AuthURL, ShopPlaceholder, name)
	p.TokenURL = strings.ReplaceAll(p.TokenURL, ShopPlaceholder, name)
	p.Scopes = slices.Clone(p.Scopes)
	p.Shop = domain
	return p, nil
}

// Validate reports every problem with p joined (errors.Join) inside one
// ErrInvalidProvider (code EValidation): a missing name, client id or
// redirect URL, endpoints that are not absolute https URLs (plain http is
// allowed for loopback hosts, for fakes) or still hold ShopPlaceholder.
func (p Provider) Validate() error {
	var problems []error
	if p.Name == "" {
		problems = append(problems, errors.New("name is empty"))
	}
	if p.ClientID == "" {
		problems = append(problems, errors.New("client id is empty"))
	}
	for _, u := range []struct{ name, value string }{
		{"authorization URL", p.AuthURL}, {"token URL", p.TokenURL}, {"redirect URL", p.RedirectURL},
	} {
		if err := checkURL(u.value); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	err := errors.Join(problems...)
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation,
		Message: fmt.Sprintf("oauth provider %q: %v", p.Name, err), Err: fmt.Errorf("%w: %w", ErrInvalidProvider, err)}
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	if strings.Contains(raw, ShopPlaceholder) {
		return errors.New("holds " + ShopPlaceholder + ": call ForShop")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return errors.New("not absolute")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("scheme %q: want https (http only for loopback)", u.Scheme)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// config is p as an oauth2.Config; the scopes are left out when they need a
// separator other than a space (authParams adds them).
func (p Provider) config() *oauth2.Config {
	c := &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  p.RedirectURL,
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: p.AuthStyle},
	}
	if p.ScopeSeparator == "" || p.ScopeSeparator == " " {
		c.Scopes = slices.Clone(p.Scopes)
	}
	return c
}

// ErrShopifyHMAC is returned by VerifyShopifyHMAC for a callback whose hmac
// parameter is missing or wrong.
var ErrShopifyHMAC = errors.New("oauth: shopify callback hmac does not match")

// VerifyShopifyHMAC checks the hmac parameter Shopify adds to its callback
// (and app-launch) query: the hex HMAC-SHA256, keyed with the app's client
// secret, of the other parameters sorted by name as "k=v" joined with "&".
// It returns nil or ErrShopifyHMAC.
func VerifyShopifyHMAC(query url.Values, clientSecret string) error {
	got, err := hex.DecodeString(query.Get("hmac"))
	if err != nil || len(got) != sha256.Size || clientSecret == "" {
		return ErrShopifyHMAC
	}
	if !hmac.Equal(got, ShopifyHMAC(query, clientSecret)) {
		return ErrShopifyHMAC
	}
	return nil
}

// Shopify escapes these in the message it signs.
var (
	shopifyKeyEscaper   = strings.NewReplacer("%", "%25", "&", "%26", "=", "%3D")
	shopifyValueEscaper = strings.NewReplacer("%", "%25", "&", "%26")
)

// ShopifyHMAC computes the hmac Shopify sends with query (its hmac and
// signature parameters left out); VerifyShopifyHMAC compares with it, and
// fakes use it to sign.
func ShopifyHMAC(query url.Values, clientSecret string) []byte {
	keys := make([]string, 0, len(query))
	for k := range query {
		if k != "hmac" && k != "signature" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, shopifyKeyEscaper.Replace(k)+"="+shopifyValueEscaper.Replace(strings.Join(query[k], ",")))
	}
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(strings.Join(parts, "&")))
	return m.Sum(nil)
}
