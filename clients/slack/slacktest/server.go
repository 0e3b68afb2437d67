// Package slacktest is a fake of the Slack Web API for tests: an
// httptest server that answers chat.postMessage and auth.test in Slack's
// shapes (errors as {"ok":false,"error":"…"} with HTTP 200, rate limits as
// HTTP 429 with Retry-After), can be scripted to fail or to answer slowly,
// and records what it received. It speaks plain HTTP on 127.0.0.1 and
// imports no Slack library, so it checks what a client really sends.
package slacktest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The identity auth.test reports for a valid token.
const (
	TeamID  = "T1"
	Team    = "Fake"
	User    = "bot"
	UserID  = "U1"
	BotID   = "B1"
	TeamURL = "https://fake.slack.com/"
)

// maxTextLen is Slack's limit on a message's text (msg_too_long beyond).
const maxTextLen = 40000

// Post is a message the fake accepted.
type Post struct {
	Token   string
	Channel string
	Text    string
	// Blocks is the blocks JSON array as sent; nil when there were none.
	Blocks json.RawMessage
	At     time.Time
}

// answer is one scripted answer: an HTTP status (with Retry-After for 429)
// or a Slack error code.
type answer struct {
	status     int
	retryAfter time.Duration
	code       string
}

// Server is the fake Slack Web API. Its methods are safe for concurrent
// use with each other and with the requests it serves.
type Server struct {
	srv *httptest.Server

	mu            sync.Mutex
	validToken    string // "" accepts any non-empty token
	revoked       map[string]bool
	channelErrors map[string]string
	script        []answer // consumed one per request, oldest first
	posts         []Post
	authTests     int
	seq           int64
	delay         time.Duration
	inFlight      int

	closing   chan struct{} // closed by Close, ends delays early
	closeOnce sync.Once
}

// NewServer starts a fake on 127.0.0.1. Until SetToken is called it accepts
// any non-empty token. Close it when done.
func NewServer() *Server {
	s := &Server{revoked: map[string]bool{}, channelErrors: map[string]string{}, closing: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the API base URL, ending in "/api/", for slack.New or
// slack-go's OptionAPIURL.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Close shuts the server down, waiting for requests in flight (a request
// waiting out SetDelay is answered at once).
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// SetDelay makes every request wait d before it is answered (0: none), as
// a slow Slack would; the client sees nothing until then.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// InFlight returns how many requests the fake has received and not
// answered yet.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// SetToken makes valid the only token accepted; any other gets
// invalid_auth.
func (s *Server) SetToken(valid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.validToken = valid
}

// Revoke makes token answer token_revoked from now on.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[token] = true
}

// FailNext makes the next n requests (of any method, whatever their token)
// answer {"ok":false,"error":errCode} with HTTP 200. Scripted answers
// (FailNext, RateLimitNext, FailWithStatus) are used in the order they
// were scripted, one per request.
func (s *Server) FailNext(n int, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.script = append(s.script, answer{code: errCode})
	}
}

// RateLimitNext makes the next request answer HTTP 429 with Retry-After
// (whole seconds, rounded up) and {"ok":false,"error":"ratelimited"}.
func (s *Server) RateLimitNext(retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, answer{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// FailWithStatus makes the next request answer HTTP code with an HTML
// body, as Slack's edge does for 5xx errors (a 429 this way has no
// Retry-After).
func (s *Server) FailWithStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, answer{status: code, retryAfter: -1})
}

// SetChannelError makes posts to channel answer errCode (such as
// channel_not_found, not_in_channel or is_archived) until it is set to "".
func (s *Server) SetChannelError(channel, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errCode == "" {
		delete(s.channelErrors, channel)
		return
	}
	s.channelErrors[channel] = errCode
}

// Posts returns the messages accepted so far, oldest first. Refused posts
// are not recorded.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Post, len(s.posts))
	copy(out, s.posts)
	return out
}

// AuthTests returns how many auth.test requests arrived, answered ok or not.
func (s *Server) AuthTests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authTests
}

// request is a Web API call's arguments, from a form or a JSON body.
type request struct {
	token   string
	channel string
	text    string
	blocks  json.RawMessage
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req, code := parse(r)

	s.mu.Lock()
	s.inFlight++
	delay := s.delay
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closing:
		}
		t.Stop()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "auth.test" {
		s.authTests++
	}
	if len(s.script) > 0 {
		a := s.script[0]
		s.script = s.script[1:]
		switch {
		case a.status == http.StatusTooManyRequests && a.retryAfter >= 0:
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(a.retryAfter.Seconds())), 10))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
			return
		case a.status != 0:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(a.status)
			fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", a.status, http.StatusText(a.status))
			return
		default:
			fail(w, a.code)
			return
		}
	}
	if code != "" {
		fail(w, code)
		return
	}
	switch method {
	case "chat.postMessage", "auth.test":
	default:
		fail(w, "unknown_method")
		return
	}
	if code := s.authenticate(req.token); code != "" {
		fail(w, code)
		return
	}
	if method == "auth.test" {
		writeJSON(w, http.StatusOK, map[string]any{
			"ok": true, "url": TeamURL, "team": Team, "user": User,
			"team_id": TeamID, "user_id": UserID, "bot_id": BotID,
		})
		return
	}
	s.postMessage(w, req)
}

// authenticate returns Slack's error code for token, "" when it is good.
// The caller holds s.mu.
func (s *Server) authenticate(token string) string {
	switch {
	case token == "":
		return "not_authed"
	case s.revoked[token]:
		return "token_revoked"
	case s.validToken != "" && token != s.validToken:
		return "invalid_auth"
	}
	return ""
}

// postMessage answers chat.postMessage. The caller holds s.mu.
func (s *Server) postMessage(w http.ResponseWriter, req request) {
	switch {
	case req.channel == "":
		fail(w, "channel_not_found")
		return
	case s.channelErrors[req.channel] != "":
		fail(w, s.channelErrors[req.channel])
		return
	case req.text == "" && len(req.blocks) == 0:
		fail(w, "no_text")
		return
	case len(req.text) > maxTextLen:
		fail(w, "msg_too_long")
		return
	}
	if len(req.blocks) > 0 {
		var blocks []json.RawMessage
		if err := json.Unmarshal(req.blocks, &blocks); err != nil {
			fail(w, "invalid_blocks_format")
			return
		}
	}
	s.seq++
	ts := fmt.Sprintf("%d.%06d", 1700000000+s.seq/10000, (s.seq%10000)*100)
	s.posts = append(s.posts, Post{
		Token: req.token, Channel: req.channel, Text: req.text, Blocks: req.blocks, At: time.Now(),
	})
	message := map[string]any{
		"type": "message", "subtype": "bot_message", "text": req.text,
		"user": UserID, "bot_id": BotID, "ts": ts,
	}
	if len(req.blocks) > 0 {
		message["blocks"] = req.blocks
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": req.channel, "ts": ts, "message": message})
}

// parse reads a call's arguments from a form (urlencoded or multipart) or
// a JSON body, with the token from "Authorization: Bearer" or, for forms,
// the token field. It returns Slack's error code for a body it cannot read.
func parse(r *http.Request) (request, string) {
	var req request
	bearer, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ctype := r.Header.Get("Content-Type")
	if strings.HasPrefix(ctype, "application/json") {
		// Slack takes the token of a JSON call only from the header.
		var body struct {
			Channel string          `json:"channel"`
			Text    string          `json:"text"`
			Blocks  json.RawMessage `json:"blocks"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return req, "invalid_json"
		}
		req.channel, req.text = body.Channel, body.Text
		if len(body.Blocks) > 0 && string(body.Blocks) != "null" {
			req.blocks = body.Blocks
		}
	} else {
		if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
			return req, "invalid_form_data"
		}
		req.token = r.PostForm.Get("token")
		req.channel, req.text = r.PostForm.Get("channel"), r.PostForm.Get("text")
		if b := r.PostForm.Get("blocks"); b != "" {
			req.blocks = json.RawMessage(b)
		}
	}
	if hasBearer {
		req.token = strings.TrimSpace(bearer)
	}
	return req, ""
}

// fail answers a Slack error the way Slack does: HTTP 200, ok false.
func fail(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
