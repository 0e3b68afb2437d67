package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"

	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
)

// oauthProviders returns the OAuth providers configured in the environment:
// a provider (google, slack, shopify, stripe) is on when
// HDF_OAUTH_<NAME>_CLIENT_ID is set, with HDF_OAUTH_<NAME>_CLIENT_SECRET and
// optionally HDF_OAUTH_<NAME>_AUTH_URL and _TOKEN_URL (tests and fakes).
// Redirects go to <publicURL>/v1/integrations/<name>/callback.
func oauthProviders(publicURL string) (map[string]oauth.Provider, error) {
	out := map[string]oauth.Provider{}
	for name, p := range oauth.DefaultProviders() {
		env := "HDF_OAUTH_" + strings.ToUpper(name) + "_"
		p.ClientID = os.Getenv(env + "CLIENT_ID")
		if p.ClientID == "" {
			continue
		}
		p.ClientSecret = os.Getenv(env + "CLIENT_SECRET")
		if p.ClientSecret == "" {
			return nil, fmt.Errorf("%sCLIENT_SECRET is required with %sCLIENT_ID", env, env)
		}
		p = p.WithEndpoints(os.Getenv(env+"AUTH_URL"), os.Getenv(env+"TOKEN_URL"))
		p.RedirectURL = strings.TrimRight(publicURL, "/") + "/v1/integrations/" + name + "/callback"
		out[name] = p
	}
	return out, nil
}

// stateKey derives the OAuth state key from the keyring's configuration,
// so it is as secret as the keyring and stable across restarts.
func stateKey(secretKeys string) []byte {
	sum := sha256.Sum256([]byte("helpdeskflow-oauth-state:" + secretKeys))
	return sum[:]
}
