package imapmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// smtpSession is an SMTP connection past EHLO, TLS and AUTH.
type smtpSession struct {
	addr string
	g    *guard
	conn net.Conn
	sc   *smtp.Client
}

func (s *smtpSession) fail(step string, err error) error {
	return newError(protoSMTP, s.addr, step, s.g.cause(err))
}

// openSMTP connects, says EHLO, secures the connection as set and
// authenticates.
func (c *Client) openSMTP(ctx context.Context) (*smtpSession, error) {
	addr := c.smtpAddr()
	host := hostIP(c.s.SMTPHost)
	conn, err := c.dial(ctx, protoSMTP, addr)
	if err != nil {
		return nil, newError(protoSMTP, addr, stepConnect, err)
	}
	g := newGuard(ctx, conn, c.cmdTimeout)
	s := &smtpSession{addr: addr, g: g, conn: conn}
	failClose := func(step string, err error) (*smtpSession, error) {
		err = s.fail(step, err)
		g.stop()
		s.conn.Close()
		return nil, err
	}

	cfg := c.tlsFor(c.s.SMTPHost, "")
	if c.s.SMTPSecurity == SecurityTLS {
		g.begin(stepTLS)
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return failClose(stepTLS, err)
		}
		s.conn = tc
	}
	g.begin(stepGreeting)
	sc, err := smtp.NewClient(s.conn, host)
	if err == nil {
		err = g.interrupted()
	}
	if err != nil {
		return failClose(stepGreeting, err)
	}
	s.sc = sc
	g.begin(stepHello)
	if err := sc.Hello(c.helloName); err != nil {
		return failClose(stepHello, err)
	}
	if c.s.SMTPSecurity == SecurityStartTLS {
		g.begin(stepStartTLS)
		if ok, _ := sc.Extension("STARTTLS"); !ok {
			return failClose(stepStartTLS, problem("the server does not offer STARTTLS"))
		}
		if err := sc.StartTLS(cfg); err != nil {
			return failClose(stepStartTLS, err)
		}
	}

	g.begin(stepAuth)
	ok, mechs := sc.Extension("AUTH")
	var auth smtp.Auth
	switch {
	case !ok:
		return failClose(stepAuth, problem("the server offers no AUTH (is this the submission port, 587 or 465?)"))
	case hasWord(mechs, "PLAIN"):
		auth = plainAuth{username: c.s.Username, password: c.s.Password}
	case hasWord(mechs, "LOGIN"):
		auth = &loginAuth{username: c.s.Username, password: c.s.Password}
	default:
		return failClose(stepAuth, fmt.Errorf("%w (it offers %s)", problem("the server offers neither AUTH PLAIN nor AUTH LOGIN"), mechs))
	}
	if err := sc.Auth(auth); err != nil {
		return failClose(stepAuth, err)
	}
	return s, nil
}

// close says QUIT (briefly: the answer does not matter) and closes.
func (s *smtpSession) close() {
	s.g.beginFor("quit", min(s.g.timeout, 5*time.Second))
	_ = s.sc.Quit()
	s.g.stop()
	s.conn.Close()
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// Send sends raw, a complete RFC 5322 message (headers, blank line, body;
// CRLF line ends, bare LF are sent as CRLF), through the SMTP server with
// AUTH (PLAIN, or LOGIN when that is all the server offers, as Outlook
// may): envelope sender Settings.Address, recipients to (bare addresses).
// raw is sent as it is, byte for byte (dot-stuffing aside): threading
// headers such as In-Reply-To and References are the caller's. 8-bit bodies
// are declared BODY=8BITMIME when the server supports it.
//
// Send is all or nothing: if the server refuses any recipient, nothing is
// sent and the error (ErrorRejected) names that recipient; the caller may
// drop it and send again. A Send that fails after the server accepted the
// message (final reply lost) may have delivered it.
func (c *Client) Send(ctx context.Context, to []string, raw []byte) (err error) {
	if c.invalid != nil {
		return c.invalid
	}
	addr := c.smtpAddr()
	if len(to) == 0 {
		return newError(protoSMTP, addr, stepRcptTo, problem("no recipients"))
	}
	for _, rcpt := range to {
		if !isBareAddress(rcpt) {
			return newError(protoSMTP, addr, stepRcptTo, problem(fmt.Sprintf("%q is not a bare email address", rcpt)))
		}
	}
	if len(raw) == 0 {
		return newError(protoSMTP, addr, stepData, problem("the message is empty"))
	}

	defer func() { c.logFailure(err) }()
	s, err := c.openSMTP(ctx)
	if err != nil {
		return err
	}
	defer s.close()

	s.g.begin(stepMailFrom)
	if err := s.sc.Mail(c.s.Address); err != nil {
		return s.fail(stepMailFrom, err)
	}
	for _, rcpt := range to {
		s.g.begin(stepRcptTo)
		if err := s.sc.Rcpt(rcpt); err != nil {
			return s.fail(stepRcptTo, &recipientError{rcpt: rcpt, err: err})
		}
	}
	// DATA, the message and the server's answer are one step, whose
	// deadline allows for the message's size.
	s.g.beginFor(stepData, s.g.transfer(int64(len(raw))))
	w, err := s.sc.Data()
	if err != nil {
		return s.fail(stepData, err)
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return s.fail(stepData, err)
	}
	err = w.Close()
	if err == nil {
		err = s.g.interrupted() // the answer may have been cut short
	}
	if err != nil {
		return s.fail(stepData, err)
	}
	return nil
}

// plainAuth is SASL PLAIN (RFC 4616). Unlike net/smtp's PlainAuth it does
// not refuse an unencrypted connection: SecurityNone is the user's choice.
type plainAuth struct{ username, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge after AUTH PLAIN")
	}
	return nil, nil
}

// loginAuth is the obsolete but common LOGIN mechanism: the server asks
// "Username:" then "Password:" (base64). No initial response is sent, as
// some servers do not expect one; challenges are matched loosely.
type loginAuth struct {
	username, password string
	step               int
}

func (a *loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	ch := strings.ToLower(string(challenge))
	switch {
	case strings.Contains(ch, "user"):
		return []byte(a.username), nil
	case strings.Contains(ch, "pass"):
		return []byte(a.password), nil
	case a.step == 1:
		return []byte(a.username), nil
	case a.step == 2:
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected AUTH LOGIN challenge %q", challenge)
}
