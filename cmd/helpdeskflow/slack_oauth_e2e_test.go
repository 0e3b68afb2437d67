package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestDev_SlackThroughOAuth installs Slack through the API (OAuth v2
// against a fake provider): the bot token of the callback is the one
// notifications post with; a workspace has one Slack integration, so a
// pasted token is refused while it is installed (and an install while a
// pasted token exists); when Slack revokes the token the integration and
// its OAuth connection need revalidation, as for a pasted token.
func TestDev_SlackThroughOAuth(t *testing.T) {
	provider := oauthtest.NewServer()
	t.Cleanup(provider.Close)
	provider.SetExtra(map[string]any{"token_type": "bot", "bot_user_id": "U0BOT", "team": map[string]any{"id": "T0ACME", "name": "Acme"}})
	slackAPI := slacktest.NewServer()
	t.Cleanup(slackAPI.Close)
	keys, err := secretbox.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HDF_OAUTH_SLACK_CLIENT_ID", oauthtest.ClientID)
	t.Setenv("HDF_OAUTH_SLACK_CLIENT_SECRET", oauthtest.ClientSecret)
	t.Setenv("HDF_OAUTH_SLACK_AUTH_URL", provider.AuthURL())
	t.Setenv("HDF_OAUTH_SLACK_TOKEN_URL", provider.TokenURL())
	cfg := testConfig(t)
	cfg.SecretKeys, cfg.SlackAPIURL, cfg.PublicURL = keys, slackAPI.URL(), "http://127.0.0.1:8080"
	dev := startDev(t, cfg)

	// Connecting needs the channels.
	if status, _, body := call(t, "POST", dev.url+"/v1/integrations/slack/connect", dev.key, nil); status != 400 || !strings.Contains(fmt.Sprint(body), "channels") {
		t.Fatalf("connect without channels: %d %v", status, body)
	}
	connectionID := installSlack(t, dev, provider, `{"channels": {"new_ticket": "#new"}}`)
	status, _, slack := call(t, "GET", dev.url+"/v1/integrations/slack", dev.key, nil)
	if status != 200 || slack["source"] != "oauth" || slack["connection_id"] != connectionID || slack["status"] != "active" || slack["team"] != "Acme" {
		t.Fatalf("Slack after the install: %d %v", status, slack)
	}

	// One Slack integration per workspace: no pasted token beside it.
	status, _, body := call(t, "PUT", dev.url+"/v1/integrations/slack", dev.key, []byte(`{"bot_token": "xoxb-pasted", "channels": {"new_ticket": "#new"}}`))
	if status != 409 || !strings.Contains(fmt.Sprint(errorOf(body)["message"]), "installed through OAuth") {
		t.Fatalf("pasting a token beside the OAuth install: %d %v", status, body)
	}

	// The installed bot token is the one notifications post with.
	if status, _, body := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{"subject": "Printer on fire", "customer": {"email": "ann@example.com"}, "message": {"body": "help"}}`)); status != 201 {
		t.Fatalf("ticket: %d %v", status, body)
	}
	var token string
	testenv.Eventually(t, 30*time.Second, func() error {
		posts := slackAPI.Posts()
		if len(posts) != 1 || posts[0].Channel != "#new" {
			return fmt.Errorf("posts: %+v", posts)
		}
		token = posts[0].Token
		return nil
	})
	if !provider.ValidAccessToken(token) {
		t.Fatalf("posted with %q, not the token the OAuth install issued", token)
	}

	// Slack revokes it: the next notification finds token_revoked, and the
	// integration and its OAuth connection both need revalidation.
	slackAPI.Revoke(token)
	if status, _, body := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{"subject": "Second", "customer": {"email": "bob@example.com"}, "message": {"body": "hi"}}`)); status != 201 {
		t.Fatalf("ticket: %d %v", status, body)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		_, _, slack := call(t, "GET", dev.url+"/v1/integrations/slack", dev.key, nil)
		_, _, conn := call(t, "GET", dev.url+"/v1/integrations/"+connectionID, dev.key, nil)
		if slack["status"] != "needs_revalidation" || slack["last_error"] != "token_revoked" || conn["status"] != "needs_revalidation" {
			return fmt.Errorf("Slack %v; its connection %v", slack, conn)
		}
		return nil
	})

	// Disconnecting removes both; then a pasted token is the integration,
	// and an OAuth install is refused beside it.
	if status, _, body := call(t, "DELETE", dev.url+"/v1/integrations/slack", dev.key, nil); status != 200 {
		t.Fatalf("disconnect: %d %v", status, body)
	}
	if status, _, body := call(t, "GET", dev.url+"/v1/integrations/"+connectionID, dev.key, nil); status != 404 {
		t.Fatalf("the OAuth connection after disconnecting Slack: %d %v", status, body)
	}
	if status, _, body := call(t, "PUT", dev.url+"/v1/integrations/slack", dev.key, []byte(`{"bot_token": "xoxb-pasted", "channels": {"new_ticket": "#new"}}`)); status != 200 || body["source"] != "token" {
		t.Fatalf("paste a token: %d %v", status, body)
	}
	status, _, body = call(t, "POST", dev.url+"/v1/integrations/slack/connect", dev.key, []byte(`{"channels": {"new_ticket": "#new"}}`))
	if status != 409 || !strings.Contains(fmt.Sprint(errorOf(body)["message"]), "pasted bot token") {
		t.Fatalf("OAuth install beside a pasted token: %d %v", status, body)
	}
}

// installSlack installs Slack through the API and the fake provider and
// returns the OAuth connection's id.
func installSlack(t *testing.T, dev *devInstance, provider *oauthtest.Server, body string) string {
	t.Helper()
	status, _, started := call(t, "POST", dev.url+"/v1/integrations/slack/connect", dev.key, []byte(body))
	if status != 201 {
		t.Fatalf("connect: %d %v", status, started)
	}
	authURL := started["authorization_url"].(string)
	code, err := provider.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	status, _, conn := call(t, "GET", dev.url+"/v1/integrations/slack/callback?state="+url.QueryEscape(u.Query().Get("state"))+"&code="+url.QueryEscape(code), "", nil)
	if status != 200 || conn["status"] != "active" {
		t.Fatalf("callback: %d %v", status, conn)
	}
	return conn["id"].(string)
}
