// Package slack posts ticket notifications to Slack through the Web API
// (chat.postMessage) and checks bot tokens (auth.test). It is the only
// package that imports github.com/slack-go/slack; callers see this
// package's Client, Message, Error and Outcome, never slack-go's types.
//
// Tokens are passed per call, because they are stored encrypted and
// decrypted for each use; the Client keeps none. Classify tells the caller
// what a failure means: OutcomeNeedsRevalidation pauses the integration
// until AuthTest succeeds again, OutcomeChannelProblem is a configuration
// problem, OutcomeRateLimited and OutcomeTemporary are retried.
package slack

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
)

// DefaultAPIURL is the Slack Web API base URL New uses when given "".
const DefaultAPIURL = slackapi.APIURL

// DefaultTimeout bounds each call of a Client that New built without an
// http.Client of its own, or with one that sets no Timeout.
const DefaultTimeout = 10 * time.Second

// Client calls the Slack Web API. It is safe for concurrent use; it holds
// no token and no per-workspace state.
type Client struct {
	apiURL string
	doer   retryAfterDoer
}

// New returns a Client for the Web API at apiURL (such as
// "https://slack.com/api/", the default when apiURL is ""; a missing
// trailing slash is added) using httpClient, or an http.Client with
// DefaultTimeout when httpClient is nil (a copy with DefaultTimeout when
// it sets no Timeout).
func New(apiURL string, httpClient *http.Client) *Client {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultTimeout}
	} else if httpClient.Timeout <= 0 {
		hc := *httpClient
		hc.Timeout = DefaultTimeout
		httpClient = &hc
	}
	return &Client{apiURL: apiURL, doer: retryAfterDoer{client: httpClient}}
}

// api returns a slack-go client for one call with token.
func (c *Client) api(token string) *slackapi.Client {
	return slackapi.New(token, slackapi.OptionAPIURL(c.apiURL), slackapi.OptionHTTPClient(c.doer))
}

// Post posts m to channel (an id such as "C0123", or a "#name") with
// chat.postMessage, link and media unfurling off, and returns the message's
// ts. A failure is an *Error: see Classify, Code and RetryAfter (for
// example invalid_auth is OutcomeNeedsRevalidation, channel_not_found
// OutcomeChannelProblem). Post does not retry.
func (c *Client) Post(ctx context.Context, token, channel string, m Message) (ts string, err error) {
	opts := []slackapi.MsgOption{
		slackapi.MsgOptionText(m.Text, false),
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionDisableMediaUnfurl(),
	}
	if len(m.Blocks) > 0 {
		opts = append(opts, slackapi.MsgOptionBlocks(slackBlocks(m.Blocks)...))
	}
	_, ts, err = c.api(token).PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return "", newError("chat.postMessage", err)
	}
	return ts, nil
}

// Identity is who a token acts as, from auth.test.
type Identity struct {
	TeamID string // the workspace id, such as "T0123"
	Team   string // the workspace name
	UserID string // the bot user's id
	BotID  string // the bot's id; "" for a user token
	URL    string // the workspace URL, such as "https://acme.slack.com/"
}

// AuthTest checks token with auth.test and returns whom it acts as. This
// is how an integration in needs_revalidation is revalidated. A failure is
// an *Error, classified like Post's (a revoked token is
// OutcomeNeedsRevalidation).
func (c *Client) AuthTest(ctx context.Context, token string) (Identity, error) {
	r, err := c.api(token).AuthTestContext(ctx)
	if err != nil {
		return Identity{}, newError("auth.test", err)
	}
	return Identity{TeamID: r.TeamID, Team: r.Team, UserID: r.UserID, BotID: r.BotID, URL: r.URL}, nil
}

// retryAfterDoer normalises the Retry-After of a 429 answer to whole
// seconds, the only form slack-go parses: an HTTP date or a missing header
// would otherwise lose the rate limit in a parse error or a bare status.
type retryAfterDoer struct {
	client *http.Client
}

// Do sends req with the wrapped client.
func (d retryAfterDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return resp, nil
	}
	seconds := 0
	if t, err := http.ParseTime(v); err == nil {
		if wait := time.Until(t); wait > 0 {
			seconds = int(math.Ceil(wait.Seconds()))
		}
	}
	resp.Header.Set("Retry-After", strconv.Itoa(seconds))
	return resp, nil
}

// VerifySlackToken checks token with auth.test and returns the Slack team
// it belongs to; the error says what Slack answered (such as
// "invalid_auth"). It makes a Client an outbound.SlackVerifier.
func (c *Client) VerifySlackToken(ctx context.Context, token string) (teamID, team string, err error) {
	id, err := c.AuthTest(ctx, token)
	if err != nil {
		if code := Code(err); code != "" {
			return "", "", errors.New(code)
		}
		return "", "", err
	}
	return id.TeamID, id.Team, nil
}
