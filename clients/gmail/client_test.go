package gmail_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/gmail"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

const token = "ya29.test-token"

func newFake(t *testing.T) (*gmailtest.Server, *gmail.Client) {
	t.Helper()
	srv := gmailtest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetToken(token)
	return srv, gmail.New(srv.URL(), nil, func(context.Context) (string, error) { return token, nil })
}

// customerMail is a customer's message; n tells messages apart.
func customerMail(n int, extra string) []byte {
	return []byte(fmt.Sprintf("From: Customer %d <customer%d@example.com>\r\n"+
		"To: support@acme.example\r\n"+
		"Subject: Question %d\r\n"+
		"Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n"+
		"Message-ID: <q%d@example.com>\r\n%s"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Question number %d — does it work?\r\n", n, n, n, n, extra, n))
}

func TestClient_Profile(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	email, h0, err := c.Profile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := email, gmailtest.DefaultAddress; got != want {
		t.Errorf("email = %q, want %q", got, want)
	}
	srv.Deliver(customerMail(1, ""), "")
	_, h1, err := c.Profile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h1 <= h0 || h1 != srv.HistoryID() {
		t.Errorf("history ids %d then %d, want an increase to %d", h0, h1, srv.HistoryID())
	}
}

func TestClient_History(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	srv.Deliver(customerMail(0, ""), "") // before the start: not listed
	_, start, err := c.Profile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1234 // three pages of 500
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, srv.Deliver(customerMail(i, ""), ""))
	}

	var got []string
	var last uint64
	pages, tok := 0, ""
	for {
		p, err := c.History(ctx, start, tok)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, p.MessageIDs...)
		if len(p.Messages) != len(p.MessageIDs) || p.Messages[0].ID != p.MessageIDs[0] || p.Messages[0].ThreadID == "" {
			t.Fatalf("Messages %v do not match MessageIDs", p.Messages[:1])
		}
		last = p.HistoryID
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %d ids (first %v), want %d (first %v)", len(got), got[:1], len(want), want[:1])
	}
	if last != srv.HistoryID() {
		t.Errorf("HistoryID = %d, want %d", last, srv.HistoryID())
	}

	// Incremental: from the stored id, only what came since.
	id := srv.Deliver(customerMail(n+1, ""), "")
	p, err := c.History(ctx, last, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.MessageIDs) != 1 || p.MessageIDs[0] != id || p.NextPageToken != "" {
		t.Errorf("incremental page = %+v, want just %s", p, id)
	}
	p, err = c.History(ctx, p.HistoryID, "")
	if err != nil || len(p.MessageIDs) != 0 {
		t.Errorf("empty page = %+v, %v; want no ids", p, err)
	}
}

func TestClient_History_TooOld(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	_, start, _ := c.Profile(ctx)
	srv.Deliver(customerMail(1, ""), "")
	srv.ExpireHistoryBefore(srv.HistoryID())
	_, err := c.History(ctx, start, "")
	if !gmail.IsHistoryTooOld(err) {
		t.Fatalf("err = %v, want IsHistoryTooOld", err)
	}
	if gmail.IsTemporary(err) || gmail.IsUnauthorized(err) {
		t.Errorf("too old history classified as temporary or unauthorized: %v", err)
	}
	if _, err := c.History(ctx, srv.HistoryID(), ""); err != nil {
		t.Errorf("History from the current id: %v", err)
	}
	// A 404 of another method is not a too-old history.
	_, err = c.Get(ctx, "ffff")
	var apiErr *gmail.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Reason != "notFound" {
		t.Fatalf("Get of a missing message: %v, want a 404 notFound APIError", err)
	}
	if gmail.IsHistoryTooOld(err) {
		t.Error("IsHistoryTooOld is true for messages.get's 404")
	}
}

func TestClient_List(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	old := time.Now().AddDate(0, 0, -30)
	for i := range 5 {
		srv.DeliverAt(customerMail(i, ""), "", old)
	}
	var want []string
	for i := range 250 {
		want = append(want, srv.Deliver(customerMail(100+i, ""), ""))
	}
	var got []string
	pages, tok := 0, ""
	for {
		p, err := c.List(ctx, "newer_than:7d", 100, tok)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, p.MessageIDs...)
		if tok = p.NextPageToken; tok == "" {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != 250 {
		t.Fatalf("listed %d, want 250 (the old 5 left out)", len(got))
	}
	// Newest first.
	for i, id := range got {
		if id != want[len(want)-1-i] {
			t.Fatalf("got[%d] = %s, want %s", i, id, want[len(want)-1-i])
		}
	}
	if pages < 3 {
		t.Errorf("pages = %d, want at least 3", pages)
	}
	if _, err := c.List(ctx, "from:someone", 10, ""); err == nil {
		t.Error("the fake accepted a query term it does not implement")
	}
}

func TestClient_Get(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	first := srv.Deliver(customerMail(1, ""), "")
	// A reply naming the first message joins its thread, as in Gmail.
	raw := []byte("From: =?UTF-8?Q?Zo=C3=AB?= <ZOE@example.com>\r\n" +
		"To: support@acme.example\r\n" +
		"Subject: Re: Question 1\r\n" +
		"Message-ID: <r1@example.com>\r\n" +
		"In-Reply-To: <q1@example.com>\r\n" +
		"References: <q1@example.com>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		"U3RpbGwgYnJva2VuIOKAlCBwbGVhc2UgaGVscCE/Pz4+\r\n")
	id := srv.Deliver(raw, "")
	m, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Raw) != string(raw) {
		t.Fatalf("Raw differs:\n%q\nwant\n%q", m.Raw, raw)
	}
	if m.ID != id || m.ThreadID != first || m.HistoryID == 0 || m.InternalDate.IsZero() || strings.Join(m.LabelIDs, ",") != "INBOX,UNREAD" {
		t.Errorf("Get = %+v, want id %s in thread %s with history id, date and labels", m, id, first)
	}
	parsed, err := mail.Parse(m.Raw)
	if err != nil {
		t.Fatal(err)
	}
	parsed.ID, parsed.ThreadID = m.ID, m.ThreadID
	if got, want := parsed.From, (mail.Address{Name: "Zoë", Email: "zoe@example.com"}); got != want {
		t.Errorf("From = %+v, want %+v", got, want)
	}
	if got, want := parsed.TextBody, "Still broken — please help!??>>"; got != want {
		t.Errorf("TextBody = %q, want %q", got, want)
	}
	if got, want := strings.Join(mail.ThreadKey(parsed), " "), first+" q1@example.com"; got != want {
		t.Errorf("ThreadKey = %q, want %q", got, want)
	}
}

// A message over MaxMessageSize (Gmail receives up to 50 MB) is not
// downloaded: Get stops reading, and GetMinimal tells its size. Just over
// the limit, and far over it (an answer larger than any message Get
// reads).
func TestClient_GetTooLarge(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	for _, size := range []int{gmail.MaxMessageSize + 1, 40 << 20} {
		big := append(customerMail(1, ""), strings.Repeat("x", size-len(customerMail(1, "")))...)
		id := srv.Deliver(big, "")
		_, err := c.Get(ctx, id)
		if !gmail.IsTooLarge(err) || gmail.IsTemporary(err) {
			t.Fatalf("Get of %d bytes: %v, want IsTooLarge (not temporary)", size, err)
		}
		m, err := c.GetMinimal(ctx, id)
		if err != nil || m.ID != id || m.ThreadID == "" || m.SizeEstimate != int64(size) || m.Raw != nil {
			t.Fatalf("GetMinimal of %d bytes: %+v, %v", size, m, err)
		}
	}
	small := srv.Deliver(customerMail(2, ""), "")
	if m, err := c.Get(ctx, small); err != nil || gmail.IsTooLarge(err) || m.SizeEstimate != int64(len(customerMail(2, ""))) {
		t.Fatalf("Get of a small message: %+v, %v", m, err)
	}
}

func TestClient_Send(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	thread := srv.Deliver(customerMail(1, ""), "")
	_, start, _ := c.Profile(ctx)
	raw, err := mail.BuildReply(mail.Address{Name: "Acme Support", Email: "support@acme.example"},
		[]mail.Address{{Name: "Customer 1", Email: "customer1@example.com"}}, "Question 1",
		"q1@example.com", nil, "", "<p>Yes, it works. ✓</p>", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Send(ctx, raw, thread)
	if err != nil {
		t.Fatal(err)
	}
	sent := srv.Sent()
	if len(sent) != 1 || sent[0].ID != id || sent[0].RequestThreadID != thread || sent[0].ThreadID != thread || string(sent[0].Raw) != string(raw) {
		t.Fatalf("Sent = %+v, want one message %s in thread %s", sent, id, thread)
	}
	// The sent message comes back in the history, labelled SENT, for the
	// sync to recognise as its own.
	p, err := c.History(ctx, start, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 1 || p.Messages[0].ID != id || strings.Join(p.Messages[0].LabelIDs, ",") != "SENT" {
		t.Errorf("history after send = %+v, want %s labelled SENT", p.Messages, id)
	}
	back, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.Parse(back.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.InReplyTo != "q1@example.com" || m.Subject != "Re: Question 1" || m.TextBody != "Yes, it works. ✓\n" {
		t.Errorf("sent message parsed = %+v", m)
	}

	_, err = c.Send(ctx, raw, "ffffffff")
	var apiErr *gmail.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("Send to an unknown thread: %v, want 404", err)
	}
	_, err = c.Send(ctx, []byte("Subject: nobody\r\n\r\nhi\r\n"), "")
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("Send without recipient: %v, want 400", err)
	}
}

func TestClient_RateLimited(t *testing.T) {
	for _, tc := range []struct {
		name   string
		use403 bool
		status int
	}{{"429", false, 429}, {"403", true, 403}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := newFake(t)
			ctx := context.Background()
			srv.RateLimitNext(2, 6500*time.Millisecond, tc.use403)
			for range 2 {
				_, _, err := c.Profile(ctx)
				limited, wait := gmail.IsRateLimited(err)
				if !limited || wait != 7*time.Second {
					t.Fatalf("IsRateLimited(%v) = %v, %v; want true, 7s", err, limited, wait)
				}
				var apiErr *gmail.APIError
				if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Reason != "rateLimitExceeded" {
					t.Errorf("err = %#v, want status %d reason rateLimitExceeded", apiErr, tc.status)
				}
				if gmail.IsTemporary(err) {
					t.Error("a rate limit is classified temporary")
				}
			}
			if _, _, err := c.Profile(ctx); err != nil {
				t.Fatalf("after the limit: %v", err)
			}
			if got, want := srv.Calls()["users.getProfile"], 3; got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
		})
	}
	t.Run("403Forbidden", func(t *testing.T) {
		srv, c := newFake(t)
		srv.FailNext(http.StatusForbidden)
		_, _, err := c.Profile(context.Background())
		if limited, _ := gmail.IsRateLimited(err); limited || err == nil {
			t.Errorf("IsRateLimited(%v) = true for a plain 403", err)
		}
	})
}

// TestClient_RetryAfterDate and others that need answers the fake does not
// script use a handler of their own.
func TestClient_RetryAfterDate(t *testing.T) {
	when := time.Now().Add(90 * time.Second).UTC()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", when.Format(http.TimeFormat))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":{"code":403,"message":"User-rate limit exceeded.","errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded"}],"status":"PERMISSION_DENIED"}}`)
	}))
	defer s.Close()
	_, _, err := gmail.New(s.URL, s.Client(), nil).Profile(context.Background())
	limited, wait := gmail.IsRateLimited(err)
	if !limited || wait < 80*time.Second || wait > 91*time.Second {
		t.Errorf("IsRateLimited(%v) = %v, %v; want true, about 90s", err, limited, wait)
	}
}

func TestClient_Unauthorized(t *testing.T) {
	srv, _ := newFake(t)
	ctx := context.Background()
	for name, c := range map[string]*gmail.Client{
		"WrongToken": gmail.New(srv.URL(), nil, func(context.Context) (string, error) { return "expired", nil }),
		"NoToken":    gmail.New(srv.URL(), nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := c.Profile(ctx)
			if !gmail.IsUnauthorized(err) {
				t.Fatalf("err = %v, want IsUnauthorized", err)
			}
			if gmail.IsTemporary(err) {
				t.Error("401 classified temporary")
			}
		})
	}
	t.Run("TokenError", func(t *testing.T) {
		boom := errors.New("refresh token revoked")
		c := gmail.New(srv.URL(), nil, func(context.Context) (string, error) { return "", boom })
		if _, _, err := c.Profile(ctx); !errors.Is(err, boom) {
			t.Errorf("err = %v, want the token function's error", err)
		}
	})
}

func TestClient_Temporary(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	for _, status := range []int{500, 503} {
		srv.FailNext(status)
		_, err := c.History(ctx, srv.HistoryID(), "")
		if !gmail.IsTemporary(err) || gmail.IsHistoryTooOld(err) || gmail.IsUnauthorized(err) {
			t.Errorf("status %d: err = %v, want only IsTemporary", status, err)
		}
		if limited, _ := gmail.IsRateLimited(err); limited {
			t.Errorf("status %d: classified rate limited", status)
		}
	}
	if _, err := c.History(ctx, srv.HistoryID(), ""); err != nil {
		t.Errorf("after the failures: %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := c.Profile(cancelled); err == nil || gmail.IsTemporary(err) {
		t.Errorf("cancelled context: err = %v, want a non-temporary error", err)
	}

	srv.Close()
	_, _, err := c.Profile(ctx)
	if err == nil || !gmail.IsTemporary(err) {
		t.Errorf("closed server: err = %v, want IsTemporary", err)
	}
	if gmail.IsTemporary(nil) {
		t.Error("IsTemporary(nil)")
	}
}

// TestClient_Shapes checks the client against answers in Gmail's shapes
// that the fake does not produce: duplicate and draft messagesAdded,
// unpadded raw, non-JSON errors.
func TestClient_Shapes(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer t" {
			t.Errorf("Authorization = %q", got)
		}
		switch r.URL.Path {
		case "/gmail/v1/users/me/history":
			q := r.URL.Query()
			if q.Get("startHistoryId") != "42" || q.Get("historyTypes") != "messageAdded" || q.Get("pageToken") != "p2" {
				t.Errorf("history query = %v", q)
			}
			fmt.Fprint(w, `{"history":[
			 {"id":"43","messages":[{"id":"a","threadId":"t"}],"messagesAdded":[{"message":{"id":"a","threadId":"t","labelIds":["INBOX"]}}]},
			 {"id":"44","messagesAdded":[{"message":{"id":"d","threadId":"t","labelIds":["DRAFT"]}}]},
			 {"id":"45","labelsAdded":[{"message":{"id":"a"}}]},
			 {"id":"46","messagesAdded":[{"message":{"id":"b","threadId":"u"}},{"message":{"id":"a","threadId":"t"}}]}
			],"historyId":"18446744073709551615"}`)
		case "/gmail/v1/users/me/messages/x%2Fy", "/gmail/v1/users/me/messages/x/y":
			if r.URL.EscapedPath() != "/gmail/v1/users/me/messages/x%2Fy" || r.URL.Query().Get("format") != "raw" {
				t.Errorf("get path %q query %v", r.URL.EscapedPath(), r.URL.Query())
			}
			fmt.Fprint(w, `{"id":"x/y","threadId":"t","historyId":7,"internalDate":"1704189600000","raw":"SGk_Pj4"}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>502 Bad Gateway</html>")
		}
	}))
	defer s.Close()
	c := gmail.New(s.URL+"/", s.Client(), func(context.Context) (string, error) { return "t", nil })
	ctx := context.Background()
	p, err := c.History(ctx, 42, "p2")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.MessageIDs, ","); got != "a,b" || p.HistoryID != 1<<64-1 {
		t.Errorf("History = %v, %d; want a,b and the largest uint64", p.MessageIDs, p.HistoryID)
	}
	m, err := c.Get(ctx, "x/y")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Raw) != "Hi?>>" || m.HistoryID != 7 || !m.InternalDate.Equal(time.UnixMilli(1704189600000)) {
		t.Errorf("Get = %+v", m)
	}
	_, _, err = c.Profile(ctx)
	var apiErr *gmail.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 502 || apiErr.Message != "<html>502 Bad Gateway</html>" || !gmail.IsTemporary(err) {
		t.Errorf("err = %#v, want a temporary 502 with the body as message", err)
	}
}

func TestClient_Concurrent(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	var ids []string
	for i := range 200 {
		ids = append(ids, srv.Deliver(customerMail(i, ""), ""))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ids)+8)
	for _, id := range ids {
		wg.Go(func() {
			if _, err := c.Get(ctx, id); err != nil {
				errs <- err
			}
		})
	}
	for i := range 8 {
		wg.Go(func() { srv.Deliver(customerMail(1000+i, ""), "") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := srv.Calls()["users.messages.get"], len(ids); got != want {
		t.Errorf("get calls = %d, want %d", got, want)
	}
}

// TestClient_Import10000 imports a mailbox of 10,000 messages the way a
// sync does: history pages, then each message fetched and parsed.
func TestClient_Import10000(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 10,000 messages")
	}
	srv, c := newFake(t)
	n := importAll(t, srv, c, 10000, 16)
	if n != 10000 {
		t.Errorf("imported %d, want 10000", n)
	}
}

func BenchmarkImport(b *testing.B) {
	srv := gmailtest.NewServer()
	defer srv.Close()
	c := gmail.New(srv.URL(), nil, func(context.Context) (string, error) { return "t", nil })
	total := 0
	for b.Loop() {
		total += importFrom(b, srv, c, srv.HistoryID(), 10000, 16)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
}

func importAll(tb testing.TB, srv *gmailtest.Server, c *gmail.Client, n, workers int) int {
	return importFrom(tb, srv, c, srv.HistoryID(), n, workers)
}

// importFrom delivers n messages, then pages the history from start and
// fetches and parses every message with workers goroutines.
func importFrom(tb testing.TB, srv *gmailtest.Server, c *gmail.Client, start uint64, n, workers int) int {
	tb.Helper()
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}
	for i := range n {
		srv.Deliver(customerMail(i, ""), "")
	}
	if b, ok := tb.(*testing.B); ok {
		b.StartTimer()
	}
	ctx := context.Background()
	ids := make(chan string, 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	imported := 0
	for range workers {
		wg.Go(func() {
			for id := range ids {
				raw, err := c.Get(ctx, id)
				if err != nil {
					tb.Error(err)
					continue
				}
				if _, err := mail.Parse(raw.Raw); err != nil {
					tb.Error(err)
					continue
				}
				mu.Lock()
				imported++
				mu.Unlock()
			}
		})
	}
	tok := ""
	for {
		p, err := c.History(ctx, start, tok)
		if err != nil {
			tb.Error(err)
			break
		}
		for _, id := range p.MessageIDs {
			ids <- id
		}
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	close(ids)
	wg.Wait()
	return imported
}
