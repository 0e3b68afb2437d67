// Package imapmail is the protocol half of a help desk's IMAP/SMTP mailbox
// integration (Outlook with an app password, or any standard server): it
// fetches new mail by UID from an IMAP mailbox (Fetch), sends replies
// through SMTP with AUTH (Send), and checks settings before they are saved
// (Check). It stores nothing: the caller keeps the Settings and, between
// fetches, the Cursor.
//
// Every network step is bounded by the context and by an absolute per-step
// deadline (WithTimeout: bytes trickling in do not extend it); errors say which server and which step failed, keep their
// cause, and are classified for an admin by Classify and Temporary. Their
// text never holds what a server said (a banner, a refusal): only the
// class in fixed words, so an API can show it; Error.Detail has the rest,
// for the log (WithLogger).
//
// The servers are user-given, so every connection goes through an
// outbound address policy (WithPolicy; by default public addresses only):
// hosts are checked when the Client is made and every address again when
// it is dialled, after DNS; ports are the usual mail ports; and plain text
// (SecurityNone) is allowed only to a loopback server. See New.
//
// It speaks IMAP with github.com/emersion/go-imap/v2 and SMTP with net/smtp.
// imapmail/imapmailtest has helpers for tests against a real Dovecot and a
// real SMTP receiver.
package imapmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// Default timeouts.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultCommandTimeout = 30 * time.Second
)

// MaxMessageSize is the largest message Fetch downloads (25 MiB, as
// RFC822.SIZE counts it); larger ones come back with TooLarge set and no
// Raw.
const MaxMessageSize = 25 << 20

// maxBatchBytes bounds the bytes one Fetch downloads: a batch ends early
// (More set) before the message that would take it over, though it always
// holds at least one message. It is small enough that a batch downloads
// well within a sync run's deadline from a slow server.
const maxBatchBytes = 16 << 20

// Client talks to the servers of one Settings. It holds no connection
// between calls (each call dials, does its work and logs out) and is safe
// for concurrent use.
type Client struct {
	s           Settings
	invalid     error
	tlsConfig   *tls.Config
	dialTimeout time.Duration
	cmdTimeout  time.Duration
	helloName   string
	policy      egress.Policy
	logger      *slog.Logger
}

// Option configures a Client.
type Option func(*Client)

// WithTLSConfig sets the TLS configuration for both servers (tests set
// RootCAs to trust their own CA). It is cloned; ServerName is set to the
// host when empty. Default: the system roots, TLS 1.2 or newer.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) { c.tlsConfig = cfg.Clone() }
}

// WithTimeout sets the timeout of connecting (TCP; default 10 s) and of
// each later step (default 30 s): TLS handshake, greeting, each command and
// its answer. A step's timeout is an absolute deadline from its start:
// bytes arriving or leaving do not extend it, so a server that drips its
// answer times out like one that says nothing. A step that downloads or
// uploads messages gets one second more per MiB (a 25 MiB message: 30 s +
// 25 s). Values <= 0 keep the default.
func WithTimeout(dial, command time.Duration) Option {
	return func(c *Client) {
		if dial > 0 {
			c.dialTimeout = dial
		}
		if command > 0 {
			c.cmdTimeout = command
		}
	}
}

// WithHelloName sets the name sent in SMTP EHLO (default "localhost").
func WithHelloName(name string) Option {
	return func(c *Client) { c.helloName = name }
}

// WithPolicy sets the outbound address policy every connection goes
// through (see New). Default: the zero egress.Policy, public addresses
// only; development and tests allow loopback.
func WithPolicy(p egress.Policy) Option {
	return func(c *Client) { c.policy = p }
}

// WithLogger makes the client log every failed Check, Fetch and Send at
// warn level with Error.Detail: the servers' own words, which the errors'
// text leaves out. Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) { c.logger = l }
}

// Ports a server other than a loopback one may use.
var (
	// IMAPPorts: IMAP with STARTTLS (143) and over TLS (993).
	IMAPPorts = []int{143, 993}
	// SMTPPorts: SMTP (25), submission over TLS (465) and with STARTTLS
	// (587), and the common alternative submission port 2525.
	SMTPPorts = []int{25, 465, 587, 2525}
)

// New returns a client for s. It does no I/O. s is validated (and its
// defaults filled in) here, then checked against the client's outbound
// address policy (WithPolicy); if either fails, every method returns that
// error and connects nowhere:
//
//   - Settings.Validate's *helpdeskflow.Error (EValidation) for invalid
//     settings, also for a host that egress.Policy.CheckHost finds
//     malformed (an IPv4 address in a non-standard form such as 127.1);
//   - an *Error of class ErrorBlocked (step connect) for a host that is an
//     address the policy refuses (10.0.0.1, 169.254.169.254, [::1] or
//     localhost where loopback is not allowed, …), and for a port that is
//     not one of IMAPPorts or SMTPPorts, unless the server is on loopback
//     (errors.Is(err, ErrPortRefused) holds then);
//   - an *Error of class ErrorTLS (step connect) for SecurityNone, which
//     is allowed only to a loopback server, so only where the policy
//     allows loopback (errors.Is(err, ErrPlaintextRefused)).
//
// A host name is checked again, with the port and the security, on every
// address it resolves to when a connection is made, before connecting,
// so a name that resolves (or re-resolves) to a refused address fails the
// same way (ErrorBlocked; ErrorTLS for plain text off loopback).
func New(s Settings, opts ...Option) *Client {
	c := &Client{s: s, dialTimeout: DefaultDialTimeout, cmdTimeout: DefaultCommandTimeout, helloName: "localhost"}
	c.invalid = c.s.Validate()
	for _, o := range opts {
		o(c)
	}
	if c.invalid == nil {
		c.invalid = c.checkServers()
	}
	return c
}

// Settings returns the settings with their defaults filled in.
func (c *Client) Settings() Settings { return c.s }

func (c *Client) imapAddr() string {
	return net.JoinHostPort(hostIP(c.s.IMAPHost), strconv.Itoa(c.s.IMAPPort))
}
func (c *Client) smtpAddr() string {
	return net.JoinHostPort(hostIP(c.s.SMTPHost), strconv.Itoa(c.s.SMTPPort))
}

// tlsFor returns the TLS configuration for host.
func (c *Client) tlsFor(host string, alpn string) *tls.Config {
	var cfg *tls.Config
	if c.tlsConfig != nil {
		cfg = c.tlsConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = hostIP(host)
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.NextProtos == nil && alpn != "" {
		cfg.NextProtos = []string{alpn}
	}
	return cfg
}

// dial connects to the protocol's server at addr within the dial timeout
// and ctx, through the policy.
func (c *Client) dial(ctx context.Context, protocol, addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	conn, err := c.dialer(protocol).DialContext(dctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == nil && errors.Is(dctx.Err(), context.DeadlineExceeded) {
			return nil, &timeoutError{what: "connecting", after: c.dialTimeout, err: err}
		}
		return nil, err
	}
	return conn, nil
}

// timeoutError is a step that ran out of time.
type timeoutError struct {
	what  string
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s took longer than %s (%v)", e.what, e.after, e.err)
	}
	return fmt.Sprintf("%s took longer than %s", e.what, e.after)
}
func (e *timeoutError) Unwrap() error   { return context.DeadlineExceeded }
func (e *timeoutError) public() string  { return fmt.Sprintf("%s took longer than %s", e.what, e.after) }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// guard bounds a connection's steps: each step (a command and its answer,
// or one transfer) has an absolute deadline, counted from its start, that
// data arriving or leaving does not move, so a server that drips a byte at
// a time cannot hold the connection for longer. When the deadline passes or
// ctx ends, the guard closes the connection, and cause turns the errors
// that follow into the reason.
type guard struct {
	conn    net.Conn
	ctx     context.Context
	timeout time.Duration
	timer   *time.Timer
	stopCtx func() bool

	mu    sync.Mutex
	step  string
	after time.Duration
	// expired is the timeout of the step whose deadline passed (nil
	// while none has); the connection is closed from then on.
	expired *timeoutError
}

func newGuard(ctx context.Context, conn net.Conn, timeout time.Duration) *guard {
	g := &guard{conn: conn, ctx: ctx, timeout: timeout, after: timeout}
	g.timer = time.AfterFunc(timeout, func() {
		g.mu.Lock()
		if g.expired == nil {
			g.expired = &timeoutError{what: g.step, after: g.after}
		}
		g.mu.Unlock()
		conn.Close()
	})
	g.stopCtx = context.AfterFunc(ctx, func() { conn.Close() })
	return g
}

// begin starts a step with the command timeout as its deadline.
func (g *guard) begin(step string) { g.beginFor(step, g.timeout) }

// beginFor starts a step that must end within d. After a deadline has
// passed, the connection stays closed and the expired step keeps being
// the reason.
func (g *guard) beginFor(step string, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired != nil {
		return
	}
	g.step, g.after = step, d
	g.timer.Reset(d)
}

// transfer is the deadline of a step that moves n bytes: the command
// timeout plus a second per MiB (minTransferRate).
func (g *guard) transfer(n int64) time.Duration {
	return g.timeout + time.Duration(n)*time.Second/minTransferRate
}

// minTransferRate is the slowest transfer, in bytes a second, that a
// download or upload is given time for on top of the command timeout.
const minTransferRate = 1 << 20

// stop ends the guard; the connection stays as it is.
func (g *guard) stop() {
	g.timer.Stop()
	g.stopCtx()
}

// cause returns err, or the reason the connection was closed under it.
func (g *guard) cause(err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := g.ctx.Err(); ctxErr != nil {
		if errors.Is(err, ctxErr) {
			return err
		}
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired != nil {
		return g.expired
	}
	return err
}

// interrupted returns why the guard closed the connection (a step's
// deadline passed, or ctx ended); nil while it has not. A library that
// reads a partial answer before the close may take it for a whole one
// (net/smtp reads "250 " as a success): check after such a step.
func (g *guard) interrupted() error {
	if err := g.ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired != nil {
		return g.expired
	}
	return nil
}

// Check logs in to the IMAP server and examines the mailbox, then logs in to
// the SMTP server (EHLO, TLS as set, AUTH) without sending anything: what to
// run when the user saves settings. Both are checked even when the first
// fails; the error then joins both failures (Classify reports the IMAP
// one).
func (c *Client) Check(ctx context.Context) error {
	if c.invalid != nil {
		return c.invalid
	}
	var imapErr error
	s, err := c.openIMAP(ctx)
	if err != nil {
		imapErr = err
	} else {
		_, imapErr = s.examine()
		s.close()
	}
	var smtpErr error
	if sc, err := c.openSMTP(ctx); err != nil {
		smtpErr = err
	} else {
		sc.close()
	}
	err = errors.Join(imapErr, smtpErr)
	c.logFailure(err)
	return err
}
