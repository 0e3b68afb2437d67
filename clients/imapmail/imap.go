package imapmail

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// Cursor is where the last Fetch of a mailbox stopped. The caller stores it
// (the zero Cursor means "never fetched") and passes it to the next Fetch.
type Cursor struct {
	// UIDValidity is the mailbox's UIDVALIDITY when LastUID was read.
	UIDValidity uint32 `json:"uid_validity"`
	// LastUID is the highest UID already returned or deliberately passed
	// over (too old on a first run, expunged); every later message has a
	// higher UID.
	LastUID uint32 `json:"last_uid"`
}

// Message is one fetched message.
type Message struct {
	UID uint32
	// InternalDate is when the server received the message.
	InternalDate time.Time
	// Size is the message's size as the server counts it (RFC822.SIZE).
	Size int64
	// Raw is the complete message, byte for byte as stored (BODY.PEEK[]);
	// nil when TooLarge.
	Raw []byte
	// TooLarge reports a message over MaxMessageSize: it was not
	// downloaded (Raw is nil) but the cursor moves past it all the same;
	// the caller may tell the admin.
	TooLarge bool
}

// Batch is the answer of Fetch.
type Batch struct {
	// Messages in UID order.
	Messages []Message
	// Next is the cursor to store and pass to the next Fetch: the mailbox's
	// UIDVALIDITY and the UID after which the next Fetch continues.
	Next Cursor
	// Reset reports that the cursor did not apply (first run, or the
	// mailbox's UIDVALIDITY changed so its UIDs mean nothing): Messages
	// came from a search by date (since), and may include messages the
	// caller already has, under other UIDs; deduplicate by Message-Id.
	Reset bool
	// More reports that more messages are waiting: call Fetch again with
	// Next right away.
	More bool
}

// DefaultFetchMax is Fetch's max when it is not positive.
const DefaultFetchMax = 100

// metaChunk is how many UIDs one metadata FETCH asks for.
const metaChunk = 500

// imapSession is a logged-in IMAP connection.
type imapSession struct {
	c    *Client
	addr string
	g    *guard
	ic   *imapclient.Client
}

// fail wraps err, the failure of step.
func (s *imapSession) fail(step string, err error) error {
	return newError(protoIMAP, s.addr, step, s.g.cause(err))
}

// openIMAP connects, secures the connection as set and logs in.
func (c *Client) openIMAP(ctx context.Context) (*imapSession, error) {
	addr := c.imapAddr()
	conn, err := c.dial(ctx, protoIMAP, addr)
	if err != nil {
		return nil, newError(protoIMAP, addr, stepConnect, err)
	}
	g := newGuard(ctx, conn, c.cmdTimeout)
	s := &imapSession{c: c, addr: addr, g: g}
	failClose := func(step string, err error) (*imapSession, error) {
		err = s.fail(step, err)
		g.stop()
		if s.ic != nil {
			s.ic.Close()
		} else {
			conn.Close()
		}
		return nil, err
	}

	cfg := c.tlsFor(c.s.IMAPHost, "imap")
	opts := &imapclient.Options{TLSConfig: cfg}
	switch c.s.IMAPSecurity {
	case SecurityTLS:
		g.begin(stepTLS)
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return failClose(stepTLS, err)
		}
		s.ic = imapclient.New(tc, opts)
	case SecurityStartTLS:
		g.begin(stepStartTLS)
		cfg.NextProtos = nil
		ic, err := imapclient.NewStartTLS(conn, opts)
		if err != nil {
			return failClose(stepStartTLS, err)
		}
		s.ic = ic
	default:
		s.ic = imapclient.New(conn, opts)
	}
	g.begin(stepGreeting)
	if err := waitGreeting(s.ic); err != nil {
		return failClose(stepGreeting, err)
	}
	if s.ic.State() == imap.ConnStateAuthenticated {
		return s, nil // PREAUTH (never after STARTTLS: imapclient refuses it)
	}

	g.begin(stepLogin)
	caps := s.ic.Caps()
	if caps.Has(imap.CapLoginDisabled) && caps.Has(imap.AuthCap(sasl.Plain)) {
		err = s.ic.Authenticate(sasl.NewPlainClient("", c.s.Username, c.s.Password))
	} else {
		err = s.ic.Login(c.s.Username, c.s.Password).Wait()
	}
	if err != nil {
		return failClose(stepLogin, err)
	}
	return s, nil
}

// examine opens the mailbox read-only.
func (s *imapSession) examine() (*imap.SelectData, error) {
	s.g.begin(stepSelect)
	data, err := s.ic.Select(s.c.s.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, s.fail(stepSelect, err)
	}
	if data.UIDValidity == 0 {
		return nil, newError(protoIMAP, s.addr, stepSelect, problem("the server reported no UIDVALIDITY for the mailbox"))
	}
	return data, nil
}

// close logs out (briefly: the answer does not matter) and closes.
func (s *imapSession) close() {
	if s.ic.State() != imap.ConnStateLogout {
		s.g.beginFor("logout", min(s.g.timeout, 5*time.Second))
		_ = s.ic.Logout().Wait()
	}
	s.g.stop()
	s.ic.Close()
}

// Fetch connects, logs in, opens the mailbox read-only (EXAMINE: \Seen and
// other flags never change, bodies are read with BODY.PEEK[]) and returns
// up to max messages (DefaultFetchMax when max <= 0) in UID order:
//
//   - When cur.UIDValidity is the mailbox's UIDVALIDITY, the messages with
//     UID > cur.LastUID.
//   - Otherwise (cur.UIDValidity 0: first run; or different: the mailbox
//     was recreated or renumbered), Reset is set and the messages are those
//     whose INTERNALDATE is on or after since (SEARCH SINCE a day earlier,
//     as SINCE ignores time and zone, then compared exactly; a zero since
//     means all). If More is set, later pages are plain UID continuations
//     (Reset false) and return every message after Next.LastUID, including
//     the rare one with an older INTERNALDATE but a higher UID (a message
//     moved in); the caller deduplicates by Message-Id in any case.
//
// Next is the cursor after the returned messages, with the mailbox's
// UIDVALIDITY; when More is false it also covers UIDs below the mailbox's
// UIDNEXT that were passed over (expunged, older than since), so an empty
// incremental fetch stays cheap. More reports that more messages wait: a
// batch ends at max messages or, earlier, before the message that would
// take the downloaded bytes over 16 MiB (at least one message is always
// returned). Messages over MaxMessageSize are returned with TooLarge set
// and no Raw. A message expunged while Fetch runs is left out.
//
// Fetch writes nothing to the server: no flags, no expunge, no state.
func (c *Client) Fetch(ctx context.Context, cur Cursor, since time.Time, max int) (Batch, error) {
	if c.invalid != nil {
		return Batch{}, c.invalid
	}
	if max <= 0 {
		max = DefaultFetchMax
	}
	s, err := c.openIMAP(ctx)
	if err != nil {
		c.logFailure(err)
		return Batch{}, err
	}
	defer s.close()
	b, err := s.fetch(cur, since, max)
	c.logFailure(err)
	return b, err
}

// meta is a candidate message's metadata.
type meta struct {
	uid  imap.UID
	date time.Time
	size int64
}

func (s *imapSession) fetch(cur Cursor, since time.Time, max int) (Batch, error) {
	data, err := s.examine()
	if err != nil {
		return Batch{}, err
	}
	b := Batch{Next: Cursor{UIDValidity: data.UIDValidity}}
	b.Reset = cur.UIDValidity == 0 || cur.UIDValidity != data.UIDValidity
	if !b.Reset {
		b.Next.LastUID = cur.LastUID
	}
	// Every UID below UIDNEXT exists now or never will again.
	var belowNext uint32
	if data.UIDNext > 0 {
		belowNext = uint32(data.UIDNext) - 1
	}

	// The candidates, in UID order.
	var criteria imap.SearchCriteria
	switch {
	case !b.Reset:
		if data.NumMessages == 0 || (data.UIDNext > 0 && uint32(data.UIDNext) <= cur.LastUID+1) {
			b.Next.LastUID = max32(b.Next.LastUID, belowNext)
			return b, nil // nothing new; no need to ask
		}
		criteria.UID = []imap.UIDSet{{imap.UIDRange{Start: imap.UID(cur.LastUID + 1), Stop: 0}}}
	case data.NumMessages == 0:
		b.Next.LastUID = belowNext
		return b, nil
	case !since.IsZero():
		criteria.Since = since.UTC().AddDate(0, 0, -1)
	}
	s.g.begin(stepSearch)
	found, err := s.ic.UIDSearch(&criteria, nil).Wait()
	if err != nil {
		return Batch{}, s.fail(stepSearch, err)
	}
	candidates := found.AllUIDs()
	slices.Sort(candidates)
	// "n:*" matches the highest UID even when it is below n.
	candidates = slices.DeleteFunc(candidates, func(u imap.UID) bool { return !b.Reset && uint32(u) <= cur.LastUID })

	// Choose the page from the metadata: date (on a reset), size.
	var page []meta
	var total int64
	passed := b.Next.LastUID // highest UID returned or passed over
choose:
	for start := 0; start < len(candidates); start += metaChunk {
		chunk := candidates[start:min(start+metaChunk, len(candidates))]
		metas, err := s.fetchMeta(chunk)
		if err != nil {
			return Batch{}, err
		}
		for _, uid := range chunk {
			m, ok := metas[uid]
			if !ok || (b.Reset && !since.IsZero() && m.date.Before(since)) {
				passed = max32(passed, uint32(uid)) // expunged, or too old
				continue
			}
			cost := m.size
			if m.size > MaxMessageSize {
				cost = 0
			}
			if len(page) == max || (len(page) > 0 && total+cost > maxBatchBytes) {
				b.More = true
				break choose
			}
			page = append(page, m)
			total += cost
			passed = max32(passed, uint32(uid))
		}
	}
	b.Next.LastUID = passed
	if !b.More {
		b.Next.LastUID = max32(b.Next.LastUID, belowNext)
	}
	if len(page) == 0 {
		return b, nil
	}

	b.Messages, err = s.fetchBodies(page)
	if err != nil {
		return Batch{}, err
	}
	return b, nil
}

func max32(a, b uint32) uint32 {
	if a > b {
		return a
	}
	return b
}

// fetchMeta returns UID, INTERNALDATE and RFC822.SIZE of the messages with
// the given UIDs that still exist.
func (s *imapSession) fetchMeta(uids []imap.UID) (map[imap.UID]meta, error) {
	s.g.begin(stepFetch)
	cmd := s.ic.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, InternalDate: true, RFC822Size: true})
	out := make(map[imap.UID]meta, len(uids))
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		buf, err := msg.Collect()
		if err != nil {
			cmd.Close()
			return nil, s.fail(stepFetch, err)
		}
		if buf.UID != 0 {
			out[buf.UID] = meta{uid: buf.UID, date: buf.InternalDate, size: buf.RFC822Size}
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, s.fail(stepFetch, err)
	}
	return out, nil
}

// fetchBodies downloads the page's messages (BODY.PEEK[]), but not those
// over MaxMessageSize.
func (s *imapSession) fetchBodies(page []meta) ([]Message, error) {
	msgs := make([]Message, 0, len(page))
	var want []imap.UID
	var wantBytes int64
	index := make(map[imap.UID]int, len(page))
	for _, m := range page {
		index[m.uid] = len(msgs)
		msgs = append(msgs, Message{UID: uint32(m.uid), InternalDate: m.date, Size: m.size, TooLarge: m.size > MaxMessageSize})
		if m.size <= MaxMessageSize {
			want = append(want, m.uid)
			wantBytes += m.size
		}
	}
	got := make(map[imap.UID]bool, len(page))
	for _, m := range page {
		if m.size > MaxMessageSize {
			got[m.uid] = true
		}
	}
	if len(want) > 0 {
		s.g.beginFor(stepFetch, s.g.transfer(wantBytes))
		section := &imap.FetchItemBodySection{Peek: true}
		cmd := s.ic.Fetch(imap.UIDSetNum(want...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			if err := s.readBody(msg, section, msgs, index, got); err != nil {
				cmd.Close()
				return nil, s.fail(stepFetch, err)
			}
		}
		if err := cmd.Close(); err != nil {
			return nil, s.fail(stepFetch, err)
		}
	}
	// Leave out what vanished meanwhile.
	return slices.DeleteFunc(msgs, func(m Message) bool { return !got[imap.UID(m.UID)] }), nil
}

// readBody reads one FETCH response's UID and body into msgs.
func (s *imapSession) readBody(msg *imapclient.FetchMessageData, section *imap.FetchItemBodySection,
	msgs []Message, index map[imap.UID]int, got map[imap.UID]bool) error {
	var uid imap.UID
	var raw []byte
	tooLarge, hasBody := false, false
	for {
		item := msg.Next()
		if item == nil {
			break
		}
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = item.UID
		case imapclient.FetchItemDataBodySection:
			if !item.MatchCommand(section) || item.Literal == nil {
				continue
			}
			hasBody = true
			size := item.Literal.Size()
			if size > MaxMessageSize {
				tooLarge = true
				continue // Next discards it
			}
			var buf bytes.Buffer
			buf.Grow(int(size))
			if _, err := io.Copy(&buf, io.LimitReader(item.Literal, MaxMessageSize+1)); err != nil {
				return fmt.Errorf("reading message body: %w", err)
			}
			raw = buf.Bytes()
		}
	}
	i, ok := index[uid]
	if !ok || !hasBody {
		return nil // not ours (unsolicited), or no body: left out
	}
	got[uid] = true
	if tooLarge || len(raw) > MaxMessageSize {
		msgs[i].TooLarge, msgs[i].Raw = true, nil
		return nil
	}
	msgs[i].Raw = raw
	if raw == nil {
		msgs[i].Raw = []byte{}
	}
	return nil
}

// waitGreeting is imapclient's WaitGreeting without its race. When a
// server greets with BYE (or NO, BAD) and the client's reader then stops,
// both of the channels WaitGreeting selects on are closed, and Go's select
// picks one at random: half the time the answer is "connection closed
// before greeting" instead of the server's refusal. Once the reader has
// stopped both stay closed, so asking again is immediate; a connection
// that really closed before any greeting answers the same every time.
func waitGreeting(ic *imapclient.Client) error {
	var err error
	for range 32 {
		if err = ic.WaitGreeting(); err == nil || !strings.Contains(err.Error(), "closed before greeting") {
			return err
		}
	}
	return err
}
