package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
)

const token = "xoxb-test-token"

// setup starts a fake that accepts only token and a Client pointing at it.
func setup(t *testing.T) (*slacktest.Server, *slack.Client) {
	t.Helper()
	srv := slacktest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetToken(token)
	return srv, slack.New(srv.URL(), nil)
}

func TestClient_Post(t *testing.T) {
	srv, c := setup(t)
	m := slack.Format(slack.Event{
		Kind: slack.KindNewTicket, TicketID: "tk_1", Subject: "Refund for order 1042",
		Priority: "high", Status: "new", CustomerEmail: "ada@example.com",
		URL: "https://desk.example.com/tickets/tk_1",
	})
	ts, err := c.Post(context.Background(), token, "C123", m)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if got, want := slack.Classify(err), slack.OutcomeOK; got != want {
		t.Errorf("Classify = %q, want %q", got, want)
	}
	if ts == "" {
		t.Error("ts is empty")
	}
	posts := srv.Posts()
	if got, want := len(posts), 1; got != want {
		t.Fatalf("len(Posts) = %d, want %d", got, want)
	}
	p := posts[0]
	if got, want := p.Channel, "C123"; got != want {
		t.Errorf("Channel = %q, want %q", got, want)
	}
	if got, want := p.Text, ":ticket: New ticket: Refund for order 1042 (high) — ada@example.com"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if got, want := p.Token, token; got != want {
		t.Errorf("Token = %q, want %q", got, want)
	}
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Fields []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
		t.Fatalf("blocks %s: %v", p.Blocks, err)
	}
	if got, want := len(blocks), 2; got != want {
		t.Fatalf("len(blocks) = %d, want %d: %s", got, want, p.Blocks)
	}
	if blocks[0].Type != "section" || blocks[0].Text == nil || blocks[0].Text.Type != "mrkdwn" {
		t.Errorf("blocks[0] = %+v, want a mrkdwn section", blocks[0])
	} else if got, want := blocks[0].Text.Text, "*<https://desk.example.com/tickets/tk_1|Refund for order 1042>*"; !strings.Contains(got, want) {
		t.Errorf("blocks[0] text = %q, want it to contain %q", got, want)
	}
	if got, want := len(blocks[1].Fields), 4; got != want {
		t.Errorf("len(blocks[1].fields) = %d, want %d", got, want)
	}

	// A second post gets a different ts.
	ts2, err := c.Post(context.Background(), token, "C123", slack.Message{Text: "again"})
	if err != nil {
		t.Fatalf("second Post: %v", err)
	}
	if ts2 == ts {
		t.Errorf("second ts = first ts = %q", ts)
	}
	if got := srv.Posts()[1].Blocks; got != nil {
		t.Errorf("blocks of a text-only post = %s, want none", got)
	}
}

func TestClient_Post_Errors(t *testing.T) {
	tests := []struct {
		name    string
		script  func(srv *slacktest.Server)
		token   string
		channel string
		outcome slack.Outcome
		code    string
	}{
		{"WrongToken", nil, "xoxb-other", "C123", slack.OutcomeNeedsRevalidation, "invalid_auth"},
		{"NoToken", nil, "", "C123", slack.OutcomeNeedsRevalidation, "not_authed"},
		{"Revoked", func(s *slacktest.Server) { s.Revoke(token) }, token, "C123", slack.OutcomeNeedsRevalidation, "token_revoked"},
		{"InvalidAuth", func(s *slacktest.Server) { s.FailNext(1, "invalid_auth") }, token, "C123", slack.OutcomeNeedsRevalidation, "invalid_auth"},
		{"TokenRevoked", func(s *slacktest.Server) { s.FailNext(1, "token_revoked") }, token, "C123", slack.OutcomeNeedsRevalidation, "token_revoked"},
		{"AccountInactive", func(s *slacktest.Server) { s.FailNext(1, "account_inactive") }, token, "C123", slack.OutcomeNeedsRevalidation, "account_inactive"},
		{"MissingScope", func(s *slacktest.Server) { s.FailNext(1, "missing_scope") }, token, "C123", slack.OutcomeNeedsRevalidation, "missing_scope"},
		{"TokenExpired", func(s *slacktest.Server) { s.FailNext(1, "token_expired") }, token, "C123", slack.OutcomeNeedsRevalidation, "token_expired"},
		{"ChannelNotFound", func(s *slacktest.Server) { s.SetChannelError("C404", "channel_not_found") }, token, "C404", slack.OutcomeChannelProblem, "channel_not_found"},
		{"NotInChannel", func(s *slacktest.Server) { s.SetChannelError("C123", "not_in_channel") }, token, "C123", slack.OutcomeChannelProblem, "not_in_channel"},
		{"IsArchived", func(s *slacktest.Server) { s.FailNext(1, "is_archived") }, token, "C123", slack.OutcomeChannelProblem, "is_archived"},
		{"EmptyChannel", nil, token, "", slack.OutcomeChannelProblem, "channel_not_found"},
		{"InternalError", func(s *slacktest.Server) { s.FailNext(1, "internal_error") }, token, "C123", slack.OutcomeTemporary, "internal_error"},
		{"OtherCode", func(s *slacktest.Server) { s.FailNext(1, "restricted_action") }, token, "C123", slack.OutcomeFailed, "restricted_action"},
		{"Status500", func(s *slacktest.Server) { s.FailWithStatus(http.StatusInternalServerError) }, token, "C123", slack.OutcomeTemporary, ""},
		{"Status503", func(s *slacktest.Server) { s.FailWithStatus(http.StatusServiceUnavailable) }, token, "C123", slack.OutcomeTemporary, ""},
		{"Status400", func(s *slacktest.Server) { s.FailWithStatus(http.StatusBadRequest) }, token, "C123", slack.OutcomeFailed, ""},
		{"Status429WithoutRetryAfter", func(s *slacktest.Server) { s.FailWithStatus(http.StatusTooManyRequests) }, token, "C123", slack.OutcomeRateLimited, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			if tt.script != nil {
				tt.script(srv)
			}
			ts, err := c.Post(context.Background(), tt.token, tt.channel, slack.Message{Text: "hello"})
			if err == nil {
				t.Fatalf("Post succeeded (ts %q), want an error", ts)
			}
			if got, want := slack.Classify(err), tt.outcome; got != want {
				t.Errorf("Classify(%v) = %q, want %q", err, got, want)
			}
			if got, want := slack.Code(err), tt.code; got != want {
				t.Errorf("Code(%v) = %q, want %q", err, got, want)
			}
			var e *slack.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *slack.Error", err)
			}
			if got, want := e.Method, "chat.postMessage"; got != want {
				t.Errorf("Method = %q, want %q", got, want)
			}
			if strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Errorf("error %q contains the token", err)
			}
			if got := len(srv.Posts()); got != 0 {
				t.Errorf("len(Posts) = %d after a refused post, want 0", got)
			}
		})
	}
}

func TestClient_Post_RateLimited(t *testing.T) {
	srv, c := setup(t)
	srv.RateLimitNext(30 * time.Second)
	_, err := c.Post(context.Background(), token, "C123", slack.Message{Text: "hello"})
	if got, want := slack.Classify(err), slack.OutcomeRateLimited; got != want {
		t.Fatalf("Classify(%v) = %q, want %q", err, got, want)
	}
	if got, want := slack.RetryAfter(err), 30*time.Second; got != want {
		t.Errorf("RetryAfter = %v, want %v", got, want)
	}
	// The limit was for one request.
	if _, err := c.Post(context.Background(), token, "C123", slack.Message{Text: "hello"}); err != nil {
		t.Errorf("Post after the rate limit: %v", err)
	}
	if got, want := len(srv.Posts()), 1; got != want {
		t.Errorf("len(Posts) = %d, want %d", got, want)
	}
}

// A Retry-After given as an HTTP date still yields the wait, not a parse error.
func TestClient_Post_RateLimitedHTTPDate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(2*time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := slack.New(srv.URL+"/api", nil).Post(context.Background(), token, "C123", slack.Message{Text: "x"})
	if got, want := slack.Classify(err), slack.OutcomeRateLimited; got != want {
		t.Fatalf("Classify(%v) = %q, want %q", err, got, want)
	}
	if got := slack.RetryAfter(err); got < 110*time.Second || got > 121*time.Second {
		t.Errorf("RetryAfter = %v, want about 2m", got)
	}
}

// hangingServer is a server that answers no request: each waits until
// the client gives up or the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // first: srv.Close waits for the handlers
	return srv
}

func TestClient_Post_Network(t *testing.T) {
	t.Run("ConnectionRefused", func(t *testing.T) {
		srv := slacktest.NewServer()
		url := srv.URL()
		srv.Close()
		_, err := slack.New(url, nil).Post(context.Background(), token, "C123", slack.Message{Text: "x"})
		if got, want := slack.Classify(err), slack.OutcomeTemporary; got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		srv := hangingServer(t)
		c := slack.New(srv.URL+"/api/", &http.Client{Timeout: 50 * time.Millisecond})
		_, err := c.Post(context.Background(), token, "C123", slack.Message{Text: "x"})
		if got, want := slack.Classify(err), slack.OutcomeTemporary; got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	})
	t.Run("ContextDeadline", func(t *testing.T) {
		srv := hangingServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := slack.New(srv.URL+"/api/", nil).Post(ctx, token, "C123", slack.Message{Text: "x"})
		if got, want := slack.Classify(err), slack.OutcomeTemporary; got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v is not context.DeadlineExceeded", err)
		}
	})
	t.Run("NotJSON", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html>captive portal</html>")
		}))
		defer srv.Close()
		_, err := slack.New(srv.URL+"/api/", nil).Post(context.Background(), token, "C123", slack.Message{Text: "x"})
		if got, want := slack.Classify(err), slack.OutcomeFailed; got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	})
}

func TestClient_AuthTest(t *testing.T) {
	srv, c := setup(t)
	id, err := c.AuthTest(context.Background(), token)
	if err != nil {
		t.Fatalf("AuthTest: %v", err)
	}
	want := slack.Identity{
		TeamID: slacktest.TeamID, Team: slacktest.Team, UserID: slacktest.UserID,
		BotID: slacktest.BotID, URL: slacktest.TeamURL,
	}
	if id != want {
		t.Errorf("AuthTest = %+v, want %+v", id, want)
	}
	if got, want := srv.AuthTests(), 1; got != want {
		t.Errorf("AuthTests = %d, want %d", got, want)
	}
}

func TestClient_AuthTest_Errors(t *testing.T) {
	tests := []struct {
		name    string
		script  func(srv *slacktest.Server)
		token   string
		outcome slack.Outcome
		code    string
	}{
		{"InvalidAuth", nil, "xoxb-wrong", slack.OutcomeNeedsRevalidation, "invalid_auth"},
		{"TokenRevoked", func(s *slacktest.Server) { s.Revoke(token) }, token, slack.OutcomeNeedsRevalidation, "token_revoked"},
		{"AccountInactive", func(s *slacktest.Server) { s.FailNext(1, "account_inactive") }, token, slack.OutcomeNeedsRevalidation, "account_inactive"},
		{"RateLimited", func(s *slacktest.Server) { s.RateLimitNext(5 * time.Second) }, token, slack.OutcomeRateLimited, ""},
		{"Status502", func(s *slacktest.Server) { s.FailWithStatus(http.StatusBadGateway) }, token, slack.OutcomeTemporary, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			if tt.script != nil {
				tt.script(srv)
			}
			id, err := c.AuthTest(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("AuthTest = %+v, want an error", id)
			}
			if id != (slack.Identity{}) {
				t.Errorf("AuthTest identity = %+v on error, want zero", id)
			}
			if got, want := slack.Classify(err), tt.outcome; got != want {
				t.Errorf("Classify(%v) = %q, want %q", err, got, want)
			}
			if got, want := slack.Code(err), tt.code; got != want {
				t.Errorf("Code(%v) = %q, want %q", err, got, want)
			}
			if got, want := srv.AuthTests(), 1; got != want {
				t.Errorf("AuthTests = %d, want %d", got, want)
			}
		})
	}

	// Revalidation after the token is replaced: the new token passes.
	t.Run("NewTokenAfterRevoke", func(t *testing.T) {
		srv, c := setup(t)
		srv.Revoke(token)
		srv.SetToken("xoxb-new")
		if _, err := c.AuthTest(context.Background(), token); slack.Classify(err) != slack.OutcomeNeedsRevalidation {
			t.Errorf("AuthTest(old) error %v, want needs_revalidation", err)
		}
		if _, err := c.AuthTest(context.Background(), "xoxb-new"); err != nil {
			t.Errorf("AuthTest(new): %v", err)
		}
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want slack.Outcome
	}{
		{"Nil", nil, slack.OutcomeOK},
		{"Plain", errors.New("boom"), slack.OutcomeFailed},
		{"Canceled", fmt.Errorf("post: %w", context.Canceled), slack.OutcomeTemporary},
		{"WrappedError", fmt.Errorf("notify: %w", &slack.Error{Method: "chat.postMessage", Code: "invalid_auth", Outcome: slack.OutcomeNeedsRevalidation}), slack.OutcomeNeedsRevalidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slack.Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
	if got := slack.Code(nil); got != "" {
		t.Errorf("Code(nil) = %q, want empty", got)
	}
	if got := slack.RetryAfter(errors.New("x")); got != 0 {
		t.Errorf("RetryAfter(plain error) = %v, want 0", got)
	}
}

func TestNew_Defaults(t *testing.T) {
	// An API URL without its trailing slash still reaches the methods.
	srv, _ := setup(t)
	c := slack.New(strings.TrimSuffix(srv.URL(), "/"), nil)
	if _, err := c.AuthTest(context.Background(), token); err != nil {
		t.Fatalf("AuthTest: %v", err)
	}
}

func TestClient_Post_Concurrent(t *testing.T) {
	srv, c := setup(t)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.Post(context.Background(), token, "C123", slack.Message{Text: fmt.Sprint("m", i)})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got, want := len(srv.Posts()), n; got != want {
		t.Errorf("len(Posts) = %d, want %d", got, want)
	}
}
