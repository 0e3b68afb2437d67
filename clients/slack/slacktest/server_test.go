package slacktest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
)

type answer struct {
	OK      bool            `json:"ok"`
	Error   string          `json:"error"`
	Channel string          `json:"channel"`
	TS      string          `json:"ts"`
	Message json.RawMessage `json:"message"`
	TeamID  string          `json:"team_id"`
	BotID   string          `json:"bot_id"`
}

// call posts body to method with the given content type and headers and
// decodes the answer; it fails the test unless the status is want.
func call(t *testing.T, srv *slacktest.Server, method, ctype, body string, header map[string]string, want int) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d", method, resp.StatusCode, want)
	}
	var a answer
	if want == http.StatusOK || want == http.StatusTooManyRequests {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatalf("%s: decoding the answer: %v", method, err)
		}
	}
	return a
}

const form = "application/x-www-form-urlencoded"

func newServer(t *testing.T) *slacktest.Server {
	t.Helper()
	srv := slacktest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetToken("xoxb-good")
	return srv
}

func TestServer_PostMessage_Form(t *testing.T) {
	srv := newServer(t)
	body := url.Values{"token": {"xoxb-good"}, "channel": {"C123"}, "text": {"hi"}, "blocks": {`[{"type":"section"}]`}}.Encode()
	a := call(t, srv, "chat.postMessage", form, body, nil, http.StatusOK)
	if !a.OK || a.Channel != "C123" || a.TS != "1700000000.000100" || len(a.Message) == 0 {
		t.Errorf("answer = %+v, want ok for C123 with ts 1700000000.000100 and a message", a)
	}
	posts := srv.Posts()
	if len(posts) != 1 {
		t.Fatalf("len(Posts) = %d, want 1", len(posts))
	}
	if p := posts[0]; p.Token != "xoxb-good" || p.Channel != "C123" || p.Text != "hi" || string(p.Blocks) != `[{"type":"section"}]` || p.At.IsZero() {
		t.Errorf("Post = %+v", p)
	}
}

func TestServer_PostMessage_JSON(t *testing.T) {
	srv := newServer(t)
	body := `{"channel":"C9","text":"from json","blocks":[{"type":"divider"}]}`
	a := call(t, srv, "chat.postMessage", "application/json; charset=utf-8", body,
		map[string]string{"Authorization": "Bearer xoxb-good"}, http.StatusOK)
	if !a.OK || a.Channel != "C9" {
		t.Fatalf("answer = %+v, want ok", a)
	}
	if p := srv.Posts()[0]; p.Text != "from json" || string(p.Blocks) != `[{"type":"divider"}]` || p.Token != "xoxb-good" {
		t.Errorf("Post = %+v", p)
	}

	// A JSON body's token field is not read, as with Slack.
	a = call(t, srv, "chat.postMessage", "application/json", `{"token":"xoxb-good","channel":"C9","text":"x"}`, nil, http.StatusOK)
	if a.OK || a.Error != "not_authed" {
		t.Errorf("answer = %+v, want not_authed", a)
	}
}

func TestServer_Errors(t *testing.T) {
	srv := newServer(t)
	good := map[string]string{"Authorization": "Bearer xoxb-good"}
	post := func(values url.Values, header map[string]string) answer {
		return call(t, srv, "chat.postMessage", form, values.Encode(), header, http.StatusOK)
	}
	msg := url.Values{"channel": {"C1"}, "text": {"x"}}
	for _, tt := range []struct {
		name   string
		values url.Values
		header map[string]string
		want   string
	}{
		{"NoToken", msg, nil, "not_authed"},
		{"WrongToken", msg, map[string]string{"Authorization": "Bearer xoxb-bad"}, "invalid_auth"},
		{"NoChannel", url.Values{"text": {"x"}}, good, "channel_not_found"},
		{"NoText", url.Values{"channel": {"C1"}}, good, "no_text"},
		{"BadBlocks", url.Values{"channel": {"C1"}, "blocks": {"[{"}}, good, "invalid_blocks_format"},
		{"TooLong", url.Values{"channel": {"C1"}, "text": {strings.Repeat("x", 40001)}}, good, "msg_too_long"},
	} {
		if a := post(tt.values, tt.header); a.OK || a.Error != tt.want {
			t.Errorf("%s: answer = %+v, want error %q", tt.name, a, tt.want)
		}
	}

	srv.SetChannelError("C1", "is_archived")
	if a := post(msg, good); a.Error != "is_archived" {
		t.Errorf("after SetChannelError: answer = %+v, want is_archived", a)
	}
	srv.SetChannelError("C1", "")
	if a := post(msg, good); !a.OK {
		t.Errorf("after clearing the channel error: answer = %+v, want ok", a)
	}

	srv.FailNext(2, "account_inactive")
	for i := range 2 {
		if a := post(msg, good); a.Error != "account_inactive" {
			t.Errorf("FailNext call %d: answer = %+v, want account_inactive", i, a)
		}
	}
	if a := post(msg, good); !a.OK {
		t.Errorf("after FailNext(2): answer = %+v, want ok", a)
	}

	srv.Revoke("xoxb-good")
	if a := post(msg, good); a.Error != "token_revoked" {
		t.Errorf("after Revoke: answer = %+v, want token_revoked", a)
	}
	if a := call(t, srv, "conversations.list", form, "", good, http.StatusOK); a.Error != "unknown_method" {
		t.Errorf("unknown method: answer = %+v, want unknown_method", a)
	}
	if got, want := len(srv.Posts()), 2; got != want {
		t.Errorf("len(Posts) = %d, want %d (refused posts are not recorded)", got, want)
	}
}

func TestServer_Status(t *testing.T) {
	srv := newServer(t)
	srv.RateLimitNext(1500 * time.Millisecond)
	srv.FailWithStatus(http.StatusServiceUnavailable)

	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"auth.test", strings.NewReader("token=xoxb-good"))
	req.Header.Set("Content-Type", form)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || a.Error != "ratelimited" {
		t.Errorf("rate limited answer: status %d, Retry-After %q, %+v", resp.StatusCode, resp.Header.Get("Retry-After"), a)
	}
	call(t, srv, "auth.test", form, "token=xoxb-good", nil, http.StatusServiceUnavailable)
	if a := call(t, srv, "auth.test", form, "token=xoxb-good", nil, http.StatusOK); !a.OK || a.TeamID != slacktest.TeamID || a.BotID != slacktest.BotID {
		t.Errorf("auth.test answer = %+v", a)
	}
	if got, want := srv.AuthTests(), 3; got != want {
		t.Errorf("AuthTests = %d, want %d", got, want)
	}

	resp, err = http.Get(srv.URL() + "auth.test")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}

func TestServer_AnyTokenUntilSetToken(t *testing.T) {
	srv := slacktest.NewServer()
	defer srv.Close()
	if a := call(t, srv, "auth.test", form, "token=anything", nil, http.StatusOK); !a.OK {
		t.Errorf("answer = %+v, want ok before SetToken", a)
	}
}

func TestServer_Delay(t *testing.T) {
	srv := newServer(t)
	srv.SetDelay(time.Hour)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.PostForm(srv.URL()+"chat.postMessage", url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}})
		if err == nil {
			resp.Body.Close()
		}
	}()
	for srv.InFlight() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(srv.Posts()); n != 0 {
		t.Fatalf("a delayed post was recorded before its answer: %d", n)
	}
	srv.Close() // answers the delayed request at once
	<-done
	if n := srv.InFlight(); n != 0 {
		t.Fatalf("in flight after close: %d", n)
	}
}
