package imapmail_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
)

// message returns a small RFC 5322 message with CRLF line ends.
func message(id, subject, body string) []byte {
	return []byte("From: Customer <customer@example.net>\r\n" +
		"To: support@example.test\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + id + "@example.net>\r\n" +
		"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		body + "\r\n")
}

// fetchClient returns a client for the test user on mailbox over STARTTLS.
func fetchClient(env imapmailtest.Environment, mailbox string, opts ...imapmail.Option) *imapmail.Client {
	s := env.Settings(imapmail.SecurityStartTLS, mailbox)
	return imapmail.New(s, append([]imapmail.Option{imapmailtest.AllowLoopback, imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM))}, opts...)...)
}

func uids(msgs []imapmail.Message) []uint32 {
	var out []uint32
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

func mustFetch(t *testing.T, c *imapmail.Client, cur imapmail.Cursor, since time.Time, max int) imapmail.Batch {
	t.Helper()
	b, err := c.Fetch(t.Context(), cur, since, max)
	if err != nil {
		t.Fatalf("Fetch(%+v): %v", cur, err)
	}
	return b
}

func TestFetchIncremental(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	c := fetchClient(env, mbox)
	uidv := imapmailtest.UIDValidity(t, env, mbox)

	// An empty mailbox: a reset with nothing, and a cursor to keep.
	b := mustFetch(t, c, imapmail.Cursor{}, time.Now().Add(-time.Hour), 10)
	if !b.Reset || b.More || len(b.Messages) != 0 || b.Next.UIDValidity != uidv {
		t.Fatalf("empty mailbox: %+v", b)
	}

	var raws [][]byte
	var want []uint32
	for i := range 3 {
		raw := message(fmt.Sprintf("inc-%d", i), fmt.Sprintf("Question %d", i), "Hello")
		raws = append(raws, raw)
		want = append(want, imapmailtest.Append(t, env, mbox, raw, time.Time{}))
	}
	b = mustFetch(t, c, b.Next, time.Time{}, 10)
	if b.Reset || b.More || !slices.Equal(uids(b.Messages), want) {
		t.Fatalf("after 3 appends: reset %v more %v uids %v, want %v", b.Reset, b.More, uids(b.Messages), want)
	}
	for i, m := range b.Messages {
		if !bytes.Equal(m.Raw, raws[i]) {
			t.Errorf("message %d: raw differs:\n%q\nwant\n%q", m.UID, m.Raw, raws[i])
		}
		if m.TooLarge || m.Size != int64(len(raws[i])) || time.Since(m.InternalDate) > time.Minute {
			t.Errorf("message %d: size %d (want %d), too large %v, date %v", m.UID, m.Size, len(raws[i]), m.TooLarge, m.InternalDate)
		}
	}
	if b.Next != (imapmail.Cursor{UIDValidity: uidv, LastUID: want[2]}) {
		t.Errorf("Next = %+v, want UID %d", b.Next, want[2])
	}

	// Nothing new: the same cursor, no messages.
	again := mustFetch(t, c, b.Next, time.Time{}, 10)
	if again.Reset || len(again.Messages) != 0 || again.Next != b.Next {
		t.Errorf("nothing new: %+v, want no messages and cursor %+v", again, b.Next)
	}

	// Two more: only those.
	u4 := imapmailtest.Append(t, env, mbox, message("inc-3", "Q3", "x"), time.Time{})
	u5 := imapmailtest.Append(t, env, mbox, message("inc-4", "Q4", "y"), time.Time{})
	b = mustFetch(t, c, b.Next, time.Time{}, 10)
	if b.Reset || !slices.Equal(uids(b.Messages), []uint32{u4, u5}) || b.Next.LastUID != u5 {
		t.Errorf("after 2 more: %v, next %+v; want [%d %d]", uids(b.Messages), b.Next, u4, u5)
	}
}

func TestFetchPaging(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	c := fetchClient(env, mbox)
	var want []uint32
	for i := range 5 {
		want = append(want, imapmailtest.Append(t, env, mbox, message(fmt.Sprintf("page-%d", i), "Paging", "body"), time.Time{}))
	}

	var got []uint32
	cur := imapmail.Cursor{}
	var mores []bool
	for range 10 {
		b := mustFetch(t, c, cur, time.Now().Add(-time.Hour), 2)
		if len(b.Messages) > 2 {
			t.Fatalf("max 2, got %d messages", len(b.Messages))
		}
		if cur.UIDValidity != 0 && b.Reset {
			t.Fatal("a continuation reported Reset")
		}
		got = append(got, uids(b.Messages)...)
		mores = append(mores, b.More)
		cur = b.Next
		if !b.More {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged UIDs %v, want %v", got, want)
	}
	if !slices.Equal(mores, []bool{true, true, false}) {
		t.Errorf("More per page %v, want [true true false]", mores)
	}
	if cur.LastUID != want[4] {
		t.Errorf("final cursor %+v, want LastUID %d", cur, want[4])
	}
}

func TestFetchFirstRunSince(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	c := fetchClient(env, mbox)
	since := time.Now().Add(-48 * time.Hour).Truncate(time.Second)

	imapmailtest.Append(t, env, mbox, message("old-1", "Old", "a"), since.Add(-10*24*time.Hour))
	imapmailtest.Append(t, env, mbox, message("old-2", "Same day, a minute early", "b"), since.Add(-time.Minute))
	recent1 := imapmailtest.Append(t, env, mbox, message("new-1", "A minute after", "c"), since.Add(time.Minute))
	recent2 := imapmailtest.Append(t, env, mbox, message("new-2", "Now", "d"), time.Time{})
	// Appended last but received long ago (a message moved in, say): a
	// first run leaves it out too.
	old3 := imapmailtest.Append(t, env, mbox, message("old-3", "Moved in", "e"), since.Add(-30*24*time.Hour))

	b := mustFetch(t, c, imapmail.Cursor{}, since, 10)
	if !b.Reset || b.More {
		t.Fatalf("first run: reset %v more %v, want reset and no more", b.Reset, b.More)
	}
	if !slices.Equal(uids(b.Messages), []uint32{recent1, recent2}) {
		t.Fatalf("first run returned %v, want [%d %d]", uids(b.Messages), recent1, recent2)
	}
	if !b.Messages[0].InternalDate.Equal(since.Add(time.Minute)) {
		t.Errorf("INTERNALDATE %v, want %v", b.Messages[0].InternalDate, since.Add(time.Minute))
	}
	// The cursor passes over the old ones: the next fetch has nothing.
	if b.Next.LastUID != old3 {
		t.Errorf("Next.LastUID = %d, want %d (past every message looked at)", b.Next.LastUID, old3)
	}
	if next := mustFetch(t, c, b.Next, since, 10); next.Reset || len(next.Messages) != 0 {
		t.Errorf("after the first run: %+v, want nothing", next)
	}

	// A zero since means everything.
	all := mustFetch(t, c, imapmail.Cursor{}, time.Time{}, 10)
	if len(all.Messages) != 5 || !all.Reset {
		t.Errorf("zero since: %d messages (reset %v), want all 5", len(all.Messages), all.Reset)
	}
}

func TestFetchUIDValidityChange(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	c := fetchClient(env, mbox)
	raws := [][]byte{message("v-1", "One", "1"), message("v-2", "Two", "2")}
	for _, r := range raws {
		imapmailtest.Append(t, env, mbox, r, time.Time{})
	}
	first := mustFetch(t, c, imapmail.Cursor{}, time.Now().Add(-time.Hour), 10)
	if len(first.Messages) != 2 {
		t.Fatalf("first fetch: %d messages", len(first.Messages))
	}

	newV := imapmailtest.Recreate(t, env, mbox)
	for _, r := range raws {
		imapmailtest.Append(t, env, mbox, r, time.Time{})
	}
	b := mustFetch(t, c, first.Next, time.Now().Add(-time.Hour), 10)
	if !b.Reset || b.Next.UIDValidity != newV || b.Next.UIDValidity == first.Next.UIDValidity {
		t.Fatalf("after recreate: reset %v, next %+v (old %+v, new UIDVALIDITY %d)", b.Reset, b.Next, first.Next, newV)
	}
	if len(b.Messages) != 2 || !bytes.Equal(b.Messages[0].Raw, raws[0]) || !bytes.Equal(b.Messages[1].Raw, raws[1]) {
		t.Errorf("after recreate: %d messages, want both again", len(b.Messages))
	}
	if b.Next.LastUID != b.Messages[1].UID {
		t.Errorf("Next.LastUID = %d, want %d", b.Next.LastUID, b.Messages[1].UID)
	}
}

func TestFetchLeavesFlags(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	c := fetchClient(env, mbox)
	unseen := imapmailtest.Append(t, env, mbox, message("f-1", "Unseen", "u"), time.Time{})
	seen := imapmailtest.Append(t, env, mbox, message("f-2", "Seen", "s"), time.Time{}, `\Seen`, `\Flagged`)

	b := mustFetch(t, c, imapmail.Cursor{}, time.Time{}, 10)
	if len(b.Messages) != 2 || b.Messages[0].Raw == nil {
		t.Fatalf("fetched %d messages", len(b.Messages))
	}
	if f := imapmailtest.Flags(t, env, mbox, unseen); slices.Contains(f, `\Seen`) {
		t.Errorf("unseen message's flags after Fetch: %v", f)
	}
	if f := imapmailtest.Flags(t, env, mbox, seen); !slices.Contains(f, `\Seen`) || !slices.Contains(f, `\Flagged`) {
		t.Errorf("seen message's flags after Fetch: %v", f)
	}
}

func TestFetch8BitAndLarge(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	c := fetchClient(env, mbox)

	// UTF-8 and a Latin-1 byte in an 8bit body, a long line, a leading dot.
	eight := message("8bit", "Grüße", "Grüße aus Köln — ça marche? 日本語\r\nLatin-1: caf\xe9\r\n.leading dot\r\n"+strings.Repeat("x", 3000))
	u1 := imapmailtest.Append(t, env, mbox, eight, time.Time{})
	big := append(message("big", "Big", "attachment follows"), bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), (imapmail.MaxMessageSize/64)+10)...)
	u2 := imapmailtest.Append(t, env, mbox, big, time.Time{})
	small := message("small", "After", "small")
	u3 := imapmailtest.Append(t, env, mbox, small, time.Time{})

	b := mustFetch(t, c, imapmail.Cursor{}, time.Time{}, 10)
	if !slices.Equal(uids(b.Messages), []uint32{u1, u2, u3}) {
		t.Fatalf("UIDs %v, want [%d %d %d]", uids(b.Messages), u1, u2, u3)
	}
	if !bytes.Equal(b.Messages[0].Raw, eight) {
		t.Errorf("8-bit message changed:\n%q\nwant\n%q", b.Messages[0].Raw, eight)
	}
	if m := b.Messages[1]; !m.TooLarge || m.Raw != nil || m.Size != int64(len(big)) {
		t.Errorf("large message: too large %v, raw %d bytes, size %d (want %d)", m.TooLarge, len(m.Raw), m.Size, len(big))
	}
	if m := b.Messages[2]; m.TooLarge || !bytes.Equal(m.Raw, small) {
		t.Errorf("message after the large one: too large %v, raw %q", m.TooLarge, m.Raw)
	}
	if b.Next.LastUID != u3 {
		t.Errorf("Next.LastUID = %d, want %d", b.Next.LastUID, u3)
	}
}

func TestFetchSecurity(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	raw := message("sec", "Security", "body")
	imapmailtest.Append(t, env, mbox, raw, time.Time{})
	for _, sec := range []string{imapmail.SecurityTLS, imapmail.SecurityStartTLS, imapmail.SecurityNone} {
		t.Run(sec, func(t *testing.T) {
			t.Parallel()
			c := imapmail.New(env.Settings(sec, mbox), imapmailtest.AllowLoopback, imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM)))
			b := mustFetch(t, c, imapmail.Cursor{}, time.Time{}, 10)
			if len(b.Messages) != 1 || !bytes.Equal(b.Messages[0].Raw, raw) {
				t.Errorf("got %d messages", len(b.Messages))
			}
		})
	}
	// localhost is in the certificate too.
	s := env.Settings(imapmail.SecurityTLS, mbox)
	s.IMAPHost = "localhost"
	if _, err := imapmail.New(s, imapmailtest.AllowLoopback, imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM))).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1); err != nil {
		t.Errorf("TLS to localhost: %v", err)
	}
}

// wantError checks err's class and that its message names the server and step.
func wantError(t *testing.T, err error, kind, server, step string, temporary bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", kind)
	}
	t.Logf("%s: %v", kind, err)
	if got := imapmail.Classify(err); got != kind {
		t.Errorf("Classify = %q, want %q (error: %v)", got, kind, err)
	}
	if got := imapmail.Temporary(err); got != temporary {
		t.Errorf("Temporary = %v, want %v (error: %v)", got, temporary, err)
	}
	if !strings.Contains(err.Error(), server+": "+step+": ") {
		t.Errorf("error %q does not name %q and step %q", err, server, step)
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	env := imapmailtest.Env(t)
	mbox := imapmailtest.NewMailbox(t, env)
	trusted := imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM))

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		for _, sec := range []string{imapmail.SecurityTLS, imapmail.SecurityStartTLS} {
			s := env.Settings(sec, mbox)
			s.Password = "wrong-password"
			_, err := imapmail.New(s, imapmailtest.AllowLoopback, trusted).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
			wantError(t, err, imapmail.ErrorAuth, "imap "+net.JoinHostPort(s.IMAPHost, strconv.Itoa(s.IMAPPort)), "login", false)
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("the error shows the password: %v", err)
			}
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		for _, sec := range []string{imapmail.SecurityTLS, imapmail.SecurityStartTLS} {
			s := env.Settings(sec, mbox)
			// The system roots (no option) do not know the test CA; nor
			// does an unrelated pool.
			for _, opts := range [][]imapmail.Option{nil, {imapmail.WithTLSConfig(&tls.Config{RootCAs: x509.NewCertPool()})}} {
				_, err := imapmail.New(s, append(opts, imapmailtest.AllowLoopback)...).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
				step := "tls handshake"
				if sec == imapmail.SecurityStartTLS {
					step = "starttls"
				}
				wantError(t, err, imapmail.ErrorTLS, "imap "+net.JoinHostPort(s.IMAPHost, strconv.Itoa(s.IMAPPort)), step, false)
			}
		}
	})
	t.Run("TLS to the plain port", func(t *testing.T) {
		t.Parallel()
		s := env.Settings(imapmail.SecurityStartTLS, mbox)
		s.IMAPSecurity = imapmail.SecurityTLS
		_, err := imapmail.New(s, imapmailtest.AllowLoopback, trusted).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
		wantError(t, err, imapmail.ErrorTLS, "imap "+env.Addr, "tls handshake", false)
	})
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		s := env.Settings(imapmail.SecurityNone, mbox)
		s.IMAPHost, s.IMAPPort = "127.0.0.1", closedPort(t)
		_, err := imapmail.New(s, imapmailtest.AllowLoopback).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
		wantError(t, err, imapmail.ErrorUnreachable, "imap 127.0.0.1:"+strconv.Itoa(s.IMAPPort), "connect", true)
	})
	t.Run("unknown host", func(t *testing.T) {
		t.Parallel()
		s := env.Settings(imapmail.SecurityTLS, mbox)
		s.IMAPHost = "no-such-host.invalid"
		_, err := imapmail.New(s, imapmailtest.AllowLoopback).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
		wantError(t, err, imapmail.ErrorDNS, "imap no-such-host.invalid:"+strconv.Itoa(s.IMAPPort), "connect", true)
	})
	t.Run("unknown mailbox", func(t *testing.T) {
		t.Parallel()
		s := env.Settings(imapmail.SecurityStartTLS, mbox+"-missing")
		_, err := imapmail.New(s, imapmailtest.AllowLoopback, trusted).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
		wantError(t, err, imapmail.ErrorMailbox, "imap "+env.Addr, "examine", false)
	})
	t.Run("silent server times out", func(t *testing.T) {
		t.Parallel()
		addr := silentServer(t)
		host, port, _ := net.SplitHostPort(addr)
		s := env.Settings(imapmail.SecurityNone, mbox)
		s.IMAPHost = host
		s.IMAPPort, _ = strconv.Atoi(port)
		start := time.Now()
		_, err := imapmail.New(s, imapmailtest.AllowLoopback, imapmail.WithTimeout(time.Second, 300*time.Millisecond)).Fetch(t.Context(), imapmail.Cursor{}, time.Time{}, 1)
		wantError(t, err, imapmail.ErrorTimeout, "imap "+addr, "greeting", true)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		t.Parallel()
		addr := silentServer(t)
		host, port, _ := net.SplitHostPort(addr)
		s := env.Settings(imapmail.SecurityTLS, mbox)
		s.IMAPHost = host
		s.IMAPPort, _ = strconv.Atoi(port)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := imapmail.New(s, imapmailtest.AllowLoopback).Fetch(ctx, imapmail.Cursor{}, time.Time{}, 1)
		if imapmail.Classify(err) != imapmail.ErrorTimeout || time.Since(start) > 5*time.Second {
			t.Errorf("Fetch with an expiring context: %v after %v", err, time.Since(start))
		}
	})
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// silentServer accepts connections and never says anything.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}
