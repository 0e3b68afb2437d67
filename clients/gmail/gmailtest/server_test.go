package gmailtest_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
)

// call makes a raw request and decodes the JSON answer into a map.
func call(t *testing.T, s *gmailtest.Server, method, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, b)
	}
	return resp.StatusCode, resp.Header, out
}

func TestServer_Shapes(t *testing.T) {
	s := gmailtest.NewServer()
	defer s.Close()
	s.SetToken("tok")
	first := s.Deliver([]byte("From: a@example.com\r\nTo: support@acme.example\r\nMessage-ID: <m1@example.com>\r\nSubject: hi\r\n\r\nhello\r\n"), "")
	reply := s.Deliver([]byte("From: a@example.com\r\nTo: support@acme.example\r\nIn-Reply-To: <m1@example.com>\r\nSubject: Re: hi\r\n\r\nagain\r\n"), "")

	status, _, p := call(t, s, "GET", "/gmail/v1/users/me/profile", "tok", "")
	if status != 200 || p["emailAddress"] != gmailtest.DefaultAddress || p["historyId"] != "1006" || p["messagesTotal"] != 2.0 || p["threadsTotal"] != 1.0 {
		t.Errorf("profile = %d %v", status, p)
	}

	status, _, h := call(t, s, "GET", "/gmail/v1/users/me/history?startHistoryId=1000&historyTypes=messageAdded&maxResults=1", "tok", "")
	if status != 200 || h["historyId"] != "1006" || h["nextPageToken"] == nil {
		t.Fatalf("history = %d %v", status, h)
	}
	rec := h["history"].([]any)[0].(map[string]any)
	msg := rec["messagesAdded"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if rec["id"] != "1003" || msg["id"] != first || msg["threadId"] != first || msg["labelIds"].([]any)[0] != "INBOX" {
		t.Errorf("history record = %v", rec)
	}

	status, _, m := call(t, s, "GET", "/gmail/v1/users/me/messages/"+reply+"?format=raw", "tok", "")
	raw, err := base64.URLEncoding.DecodeString(m["raw"].(string))
	if status != 200 || err != nil || m["threadId"] != first || m["historyId"] != "1006" || !strings.Contains(string(raw), "again") {
		t.Errorf("get = %d %v (%v)", status, m, err)
	}
	if _, ok := m["internalDate"].(string); !ok {
		t.Errorf("internalDate = %#v, want a string", m["internalDate"])
	}

	status, _, l := call(t, s, "GET", "/gmail/v1/users/me/messages?maxResults=1", "tok", "")
	if status != 200 || l["messages"].([]any)[0].(map[string]any)["id"] != reply || l["nextPageToken"] == nil {
		t.Errorf("list = %d %v", status, l)
	}
}

func TestServer_Errors(t *testing.T) {
	s := gmailtest.NewServer()
	defer s.Close()
	s.SetToken("tok")

	status, _, e := call(t, s, "GET", "/gmail/v1/users/me/profile", "other", "")
	checkError(t, status, e, 401, "authError", "UNAUTHENTICATED")
	status, _, e = call(t, s, "GET", "/gmail/v1/users/me/profile", "", "")
	checkError(t, status, e, 401, "authError", "UNAUTHENTICATED")

	s.RateLimitNext(1, 1500*time.Millisecond, false)
	status, hdr, e := call(t, s, "GET", "/gmail/v1/users/me/profile", "tok", "")
	checkError(t, status, e, 429, "rateLimitExceeded", "RESOURCE_EXHAUSTED")
	if got := hdr.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	s.RateLimitNext(1, 0, true)
	status, hdr, e = call(t, s, "GET", "/gmail/v1/users/me/profile", "tok", "")
	checkError(t, status, e, 403, "rateLimitExceeded", "PERMISSION_DENIED")
	if got := hdr.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q, want none", got)
	}
	s.FailNext(503)
	status, _, e = call(t, s, "GET", "/gmail/v1/users/me/profile", "tok", "")
	checkError(t, status, e, 503, "backendError", "UNAVAILABLE")

	s.Deliver([]byte("From: a@example.com\r\n\r\nx\r\n"), "")
	s.ExpireHistoryBefore(s.HistoryID())
	status, _, e = call(t, s, "GET", "/gmail/v1/users/me/history?startHistoryId=1000", "tok", "")
	checkError(t, status, e, 404, "notFound", "NOT_FOUND")

	status, _, e = call(t, s, "POST", "/gmail/v1/users/me/messages/send", "tok", `{"raw":"`+base64.StdEncoding.EncodeToString([]byte("To: a@b.example\r\nSubject: ???\r\n\r\n>>>?\r\n"))+`"}`)
	checkError(t, status, e, 400, "invalidArgument", "INVALID_ARGUMENT")

	status, _, e = call(t, s, "GET", "/gmail/v1/users/me/messages/abc?format=full", "tok", "")
	checkError(t, status, e, 400, "invalidArgument", "INVALID_ARGUMENT")

	calls := s.Calls()
	if calls["users.getProfile"] != 5 || calls["users.history.list"] != 1 || calls["users.messages.send"] != 1 || calls["users.messages.get"] != 1 {
		t.Errorf("Calls = %v", calls)
	}
}

func checkError(t *testing.T, status int, body map[string]any, wantStatus int, wantReason, wantName string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if status != wantStatus || e == nil || e["code"] != float64(wantStatus) || e["status"] != wantName {
		t.Errorf("answer %d %v, want %d %s", status, body, wantStatus, wantName)
		return
	}
	errs, _ := e["errors"].([]any)
	if len(errs) == 0 || errs[0].(map[string]any)["reason"] != wantReason {
		t.Errorf("errors = %v, want reason %s", e["errors"], wantReason)
	}
}
