package imapmailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
)

// Default credentials of NewSMTPServer.
const (
	DefaultSMTPUser     = "smtp-user@example.test"
	DefaultSMTPPassword = "smtp-password-1"
)

// SMTPOptions configure NewSMTPServer. The zero value is an Outlook-like
// submission server: plain TCP offering STARTTLS, AUTH PLAIN and LOGIN
// only after STARTTLS, the default credentials.
type SMTPOptions struct {
	// Username and Password are the only accepted credentials
	// (DefaultSMTPUser and DefaultSMTPPassword when empty).
	Username, Password string
	// Mechanisms are the AUTH mechanisms offered, from PLAIN and LOGIN
	// (both when empty).
	Mechanisms []string
	// ImplicitTLS serves TLS from the first byte (like port 465) instead of
	// offering STARTTLS.
	ImplicitTLS bool
	// NoTLS offers no STARTTLS at all (and AUTH without it).
	NoTLS bool
	// AllowInsecureAuth offers AUTH before STARTTLS.
	AllowInsecureAuth bool
	// RejectRecipients are answered 550 5.1.1 at RCPT TO.
	RejectRecipients []string
	// DeliverTo, when set, APPENDs every received message into this
	// mailbox of DeliverEnv (INTERNALDATE now), so replies can be seen in
	// a real mailbox; a failed delivery is answered 451 and fails the test.
	DeliverTo  string
	DeliverEnv Environment
}

// Received is one message the SMTP server accepted.
type Received struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Data is the message as received, byte for byte (dots unstuffed).
	Data []byte
	// User is who authenticated, Mechanism how.
	User, Mechanism string
	// TLS reports whether the connection was encrypted.
	TLS bool
	// UID is the message's UID in DeliverTo, when delivered.
	UID uint32
}

// SMTPServer is a real SMTP server on 127.0.0.1, for one test.
type SMTPServer struct {
	// Addr is host:port; Host and Port the same apart.
	Addr string
	Host string
	Port int
	// CAPEM is the PEM of the server's self-signed certificate (for
	// 127.0.0.1 and localhost): trust it with TLSConfig.
	CAPEM []byte

	t    testing.TB
	opts SMTPOptions

	mu       sync.Mutex
	received []Received
}

// NewSMTPServer starts an SMTP server on 127.0.0.1 (a free port) that
// accepts mail from clients that authenticate with the configured
// credentials and records it (Messages). It stops when the test ends.
func NewSMTPServer(t testing.TB, opts SMTPOptions) *SMTPServer {
	t.Helper()
	if opts.Username == "" {
		opts.Username = DefaultSMTPUser
	}
	if opts.Password == "" {
		opts.Password = DefaultSMTPPassword
	}
	if len(opts.Mechanisms) == 0 {
		opts.Mechanisms = []string{sasl.Plain, sasl.Login}
	}
	cert, certPEM := testCertificate(t)
	s := &SMTPServer{t: t, opts: opts, CAPEM: certPEM}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: s, conn: c, tls: isTLS}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = opts.AllowInsecureAuth || opts.NoTLS
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if !opts.NoTLS {
		srv.TLSConfig = tlsConfig
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imapmailtest: listen: %v", err)
	}
	if opts.ImplicitTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	s.Addr = l.Addr().String()
	s.Host, s.Port = splitAddr(s.Addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		// Close closes the listeners Serve registered; Serve may not have
		// run yet (no client came), so close ours too.
		srv.Close()
		l.Close()
		<-done
	})
	return s
}

// Apply points set's SMTP fields at the server with the given security
// (SecurityTLS needs ImplicitTLS). Settings has one username and password
// for both servers: start the server with SMTPOptions{Username:
// set.Username, Password: set.Password} to have them accepted.
func (s *SMTPServer) Apply(set *imapmail.Settings, security string) {
	set.SMTPHost, set.SMTPPort, set.SMTPSecurity = s.Host, s.Port, security
}

// Messages returns what the server accepted so far, oldest first.
func (s *SMTPServer) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// session is one SMTP connection.
type session struct {
	srv  *SMTPServer
	conn *smtp.Conn
	tls  bool

	user, mech string
	from       string
	to         []string
}

func (ss *session) AuthMechanisms() []string { return ss.srv.opts.Mechanisms }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != ss.srv.opts.Username || pass != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user, ss.mech = user, mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return smtp.ErrAuthFailed
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if slices.ContainsFunc(ss.srv.opts.RejectRecipients, func(r string) bool { return strings.EqualFold(r, to) }) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	rec := Received{From: ss.from, To: slices.Clone(ss.to), Data: data, User: ss.user, Mechanism: ss.mech, TLS: isTLS || ss.tls}
	if o := ss.srv.opts; o.DeliverTo != "" {
		uid, err := appendMessage(o.DeliverEnv, o.DeliverTo, data, time.Now())
		if err != nil {
			ss.srv.t.Errorf("imapmailtest: SMTP server delivering to %s: %v", o.DeliverTo, err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Delivery failed"}
		}
		rec.UID = uid
	}
	ss.srv.mu.Lock()
	ss.srv.received = append(ss.srv.received, rec)
	ss.srv.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, with or without the
// username as initial response.
type loginServer struct {
	check func(user, pass string) error
	state int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		if response == nil {
			l.state = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.state = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.state = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.state = 3
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, errors.New("unexpected AUTH LOGIN response")
}

var (
	certOnce sync.Once
	certTLS  tls.Certificate
	certPEM  []byte
	certErr  error
)

// testCertificate returns a self-signed certificate for 127.0.0.1 and
// localhost, made once per process.
func testCertificate(t testing.TB) (tls.Certificate, []byte) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(time.Now().UnixNano()),
			Subject:               pkix.Name{CommonName: "imapmailtest SMTP"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:              []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		certTLS = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	if certErr != nil {
		t.Fatalf("imapmailtest: test certificate: %v", certErr)
	}
	return certTLS, certPEM
}
