package imapmailtest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
)

// The answers a SlowServer drips.
const (
	// DripGreeting: the server's greeting (IMAP and SMTP).
	DripGreeting = "greeting"
	// DripExamine: the answer to EXAMINE (IMAP).
	DripExamine = "examine"
	// DripBody: the body of the mailbox's one message, in the answer to
	// UID FETCH … BODY.PEEK[] (IMAP). The message is 1,000,000 bytes
	// by its RFC822.SIZE.
	DripBody = "body"
	// DripDataReply: the answer to a message, after the server has read
	// it whole (SMTP).
	DripDataReply = "data"
)

// slowBodySize is the size of a SlowServer's IMAP message.
const slowBodySize = 1_000_000

// SlowServer is a fake mail server on 127.0.0.1 (a free port, plain text,
// any username and password) that answers like a real one until the
// answer it was told to drip: that one it sends one byte at a time, a byte
// every interval, forever (until the client hangs up or the test ends).
// It speaks just enough IMAP (greeting, CAPABILITY, LOGIN, EXAMINE with
// one message, UID SEARCH, UID FETCH, LOGOUT) or SMTP (greeting, EHLO,
// AUTH, MAIL, RCPT, DATA, RSET, QUIT) for imapmail's Fetch and Send.
type SlowServer struct {
	Host string
	Port int

	drip     string
	interval time.Duration
	imap     bool
	l        net.Listener
	wg       sync.WaitGroup
	closed   chan struct{}
	dripping chan struct{}
	dripOnce sync.Once

	mu       sync.Mutex
	conns    []net.Conn
	messages int
}

// NewSlowIMAP starts a slow IMAP server that drips the answer drip
// (DripGreeting, DripExamine or DripBody) every interval. It stops when
// the test ends.
func NewSlowIMAP(t testing.TB, drip string, interval time.Duration) *SlowServer {
	return newSlowServer(t, true, drip, interval)
}

// NewSlowSMTP starts a slow SMTP server that drips the answer drip
// (DripGreeting or DripDataReply) every interval. It stops when the test
// ends.
func NewSlowSMTP(t testing.TB, drip string, interval time.Duration) *SlowServer {
	return newSlowServer(t, false, drip, interval)
}

func newSlowServer(t testing.TB, imap bool, drip string, interval time.Duration) *SlowServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imapmailtest: listen: %v", err)
	}
	s := &SlowServer{drip: drip, interval: interval, imap: imap, l: l, closed: make(chan struct{}), dripping: make(chan struct{})}
	s.Host, s.Port = splitAddr(l.Addr().String())
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// ApplyIMAP points set's IMAP fields at the server (security none).
func (s *SlowServer) ApplyIMAP(set *imapmail.Settings) {
	set.IMAPHost, set.IMAPPort, set.IMAPSecurity = s.Host, s.Port, imapmail.SecurityNone
}

// ApplySMTP points set's SMTP fields at the server (security none).
func (s *SlowServer) ApplySMTP(set *imapmail.Settings) {
	set.SMTPHost, set.SMTPPort, set.SMTPSecurity = s.Host, s.Port, imapmail.SecurityNone
}

// Dripping is closed once the server has started dripping its first
// answer.
func (s *SlowServer) Dripping() <-chan struct{} { return s.dripping }

// Messages is how many messages the SMTP server has read whole (each
// DATA up to its final dot), answered or not.
func (s *SlowServer) Messages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages
}

func (s *SlowServer) close() {
	close(s.closed)
	s.l.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SlowServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.closed:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer c.Close()
			if s.imap {
				s.serveIMAP(c)
			} else {
				s.serveSMTP(c)
			}
		}()
	}
}

// answer writes text whole, or, when this is the answer to drip, writes
// head whole and then one byte every interval until the connection or
// the server closes.
func (s *SlowServer) answer(c net.Conn, which, head, text string) error {
	if which != s.drip {
		_, err := c.Write([]byte(head + text))
		return err
	}
	if _, err := c.Write([]byte(head)); err != nil {
		return err
	}
	s.dripOnce.Do(func() { close(s.dripping) })
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return net.ErrClosed
		case <-t.C:
		}
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
	}
}

func (s *SlowServer) serveIMAP(c net.Conn) {
	r := bufio.NewReader(c)
	if s.answer(c, DripGreeting, "* OK ", "[CAPABILITY IMAP4rev1] slow server ready\r\n") != nil {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, cmd, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		upper := strings.ToUpper(cmd)
		var werr error
		switch {
		case strings.HasPrefix(upper, "CAPABILITY"):
			werr = s.answer(c, "", "", "* CAPABILITY IMAP4rev1\r\n"+tag+" OK done\r\n")
		case strings.HasPrefix(upper, "LOGIN"), strings.HasPrefix(upper, "NOOP"):
			werr = s.answer(c, "", "", tag+" OK done\r\n")
		case strings.HasPrefix(upper, "EXAMINE"), strings.HasPrefix(upper, "SELECT"):
			werr = s.answer(c, DripExamine, "* 1 EXISTS\r\n* OK ",
				"[UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n"+tag+" OK [READ-ONLY] done\r\n")
		case strings.HasPrefix(upper, "UID SEARCH"):
			werr = s.answer(c, "", "", "* SEARCH 1\r\n"+tag+" OK done\r\n")
		case strings.HasPrefix(upper, "UID FETCH") && strings.Contains(upper, "BODY"):
			werr = s.answer(c, DripBody, fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n", slowBodySize),
				strings.Repeat("x", slowBodySize)+")\r\n"+tag+" OK done\r\n")
		case strings.HasPrefix(upper, "UID FETCH"):
			werr = s.answer(c, "", "", fmt.Sprintf("* 1 FETCH (UID 1 INTERNALDATE %q RFC822.SIZE %d)\r\n%s OK done\r\n",
				time.Now().UTC().Format("02-Jan-2006 15:04:05 -0700"), slowBodySize, tag))
		case strings.HasPrefix(upper, "LOGOUT"):
			_ = s.answer(c, "", "", "* BYE\r\n"+tag+" OK done\r\n")
			return
		default:
			werr = s.answer(c, "", "", tag+" BAD unknown command\r\n")
		}
		if werr != nil {
			return
		}
	}
}

func (s *SlowServer) serveSMTP(c net.Conn) {
	r := bufio.NewReader(c)
	if s.answer(c, DripGreeting, "220 ", "slow.test ESMTP ready\r\n") != nil {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		var werr error
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			werr = s.answer(c, "", "", "250-slow.test\r\n250 AUTH PLAIN LOGIN\r\n")
		case strings.HasPrefix(cmd, "AUTH"):
			werr = s.answer(c, "", "", "235 2.7.0 accepted\r\n")
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), strings.HasPrefix(cmd, "RSET"), strings.HasPrefix(cmd, "NOOP"):
			werr = s.answer(c, "", "", "250 2.0.0 ok\r\n")
		case strings.HasPrefix(cmd, "DATA"):
			if werr = s.answer(c, "", "", "354 go ahead\r\n"); werr != nil {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
			}
			s.mu.Lock()
			s.messages++
			s.mu.Unlock()
			werr = s.answer(c, DripDataReply, "250 ", "2.0.0 queued\r\n")
		case strings.HasPrefix(cmd, "QUIT"):
			_ = s.answer(c, "", "", "221 bye\r\n")
			return
		default:
			werr = s.answer(c, "", "", "502 unknown command\r\n")
		}
		if werr != nil {
			return
		}
	}
}
