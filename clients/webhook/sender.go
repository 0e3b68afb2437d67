package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// Error classes of a failed attempt (Result.ErrorClass), as the delivery
// log shows them. The strings are part of the API and never change.
const (
	// ErrorClassTimeout: no response within the timeout.
	ErrorClassTimeout = "timeout"
	// ErrorClassConnectionRefused: nothing listens on the port.
	ErrorClassConnectionRefused = "connection_refused"
	// ErrorClassDNS: the host name does not resolve.
	ErrorClassDNS = "dns"
	// ErrorClassTLSCertificateExpired: the receiver's certificate (or one
	// in its chain) has expired or is not yet valid.
	ErrorClassTLSCertificateExpired = "tls_certificate_expired"
	// ErrorClassTLSUnknownAuthority: the certificate is not signed by a
	// trusted authority (self-signed, or an incomplete chain).
	ErrorClassTLSUnknownAuthority = "tls_unknown_authority"
	// ErrorClassTLSHostnameMismatch: the certificate is for another name.
	ErrorClassTLSHostnameMismatch = "tls_hostname_mismatch"
	// ErrorClassTLSHandshake: any other TLS failure (protocol version,
	// alert, not TLS at all, another certificate problem).
	ErrorClassTLSHandshake = "tls_handshake"
	// ErrorClassHTTPStatus: the receiver answered, with a status that is
	// not 2xx (redirects are not followed, so 3xx is one).
	ErrorClassHTTPStatus = "http_status"
	// ErrorClassBlockedAddress: the URL's host is, or resolves to, an
	// address webhooks may not target (SSRF protection).
	ErrorClassBlockedAddress = "blocked_address"
	// ErrorClassInvalidURL: the URL fails ValidateURL.
	ErrorClassInvalidURL = "invalid_url"
	// ErrorClassConnectionError: any other failure to connect, send or
	// receive (a reset, a cancelled context).
	ErrorClassConnectionError = "connection_error"
)

// Defaults of Config.
const (
	DefaultTimeout          = 3 * time.Second
	DefaultMaxResponseBytes = 4096
)

// Config configures a Sender. The zero value is the production setting:
// only public addresses, a 3 s timeout, the system's root certificates.
type Config struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1 (development and tests).
	AllowLoopback bool
	// AllowPrivate allows 10/8, 172.16/12, 192.168/16, the carrier-grade
	// NAT range 100.64/10 and IPv6 unique-local fc00::/7 (site-local
	// fec0::/10 too). It does not allow link-local addresses, where cloud
	// metadata services live.
	AllowPrivate bool
	// AllowedNets are allowed whatever their kind, for a receiver inside
	// a network that is otherwise refused.
	AllowedNets []netip.Prefix
	// Timeout bounds a whole attempt: resolving, connecting, the TLS
	// handshake, sending and reading the response. Default 3 s.
	Timeout time.Duration
	// RootCAs verifies receivers' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// MaxResponseBytes is how much of a response body Result keeps.
	// Default 4096.
	MaxResponseBytes int
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return c
}

// Sender delivers webhook requests, one attempt per Send, refusing
// addresses its Config does not allow. It is safe for concurrent use and
// keeps connections alive between attempts; CloseIdleConnections closes
// them.
type Sender struct {
	cfg    Config
	client *http.Client
}

// NewSender returns a Sender for cfg (zero fields take their defaults).
// Its HTTP client takes no proxy from the environment, follows no
// redirects, requires TLS 1.2 or later and verifies certificates; its
// dialer checks every address it connects to — after DNS resolution, so
// a name that resolves to a refused address is refused at each attempt.
func NewSender(cfg Config) *Sender {
	cfg = cfg.withDefaults()
	s := &Sender{cfg: cfg}
	dialer := &net.Dialer{
		Timeout:   cfg.Timeout,
		KeepAlive: 30 * time.Second,
		Resolver:  cfg.Resolver,
		Control:   cfg.policy().Control,
	}
	transport := &http.Transport{
		Proxy:       nil,
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs,
		},
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		ForceAttemptHTTP2:     true,
		// Keep-alive connections are reused per host: up to 64 idle to
		// one (webhooks of many workspaces often share an integration
		// platform's host), 256 in all.
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	s.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: cfg.Timeout,
	}
	return s
}

// Config returns the Sender's configuration with its defaults filled in.
func (s *Sender) Config() Config { return s.cfg }

// CloseIdleConnections closes the connections kept alive for later
// attempts.
func (s *Sender) CloseIdleConnections() { s.client.CloseIdleConnections() }

// policy is the outbound address policy of c's address fields.
func (c Config) policy() egress.Policy {
	return egress.Policy{AllowLoopback: c.AllowLoopback, AllowPrivate: c.AllowPrivate, AllowedNets: c.AllowedNets, Resolver: c.Resolver}
}

// Request is one delivery attempt: Body is POSTed to URL as
// application/json with Header (the X-HDF-* headers).
type Request struct {
	URL    string
	Body   []byte
	Header http.Header
}

// Result is the outcome of an attempt. StatusCode is the receiver's
// status (0 when there was no response); Body is the first
// MaxResponseBytes of the response; Duration is the time from the start
// to the end of reading the response. ErrorClass is "" for a 2xx and one
// of the ErrorClass* constants otherwise; Err then says more (for
// ErrorClassHTTPStatus it is a *StatusError).
type Result struct {
	StatusCode int
	Body       []byte
	Duration   time.Duration
	ErrorClass string
	Err        error
}

// StatusError is Result.Err for a non-2xx answer; Location is the
// Location header of a redirect, which is not followed.
type StatusError struct {
	StatusCode int
	Status     string
	Location   string
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	if e.Location != "" {
		return fmt.Sprintf("webhook: receiver answered %s (a redirect to %s, not followed)", e.Status, e.Location)
	}
	return "webhook: receiver answered " + e.Status
}

// drainLimit is how much of a response past MaxResponseBytes Send reads
// to keep the connection reusable; a longer body closes it instead.
const drainLimit = 64 << 10

// Send makes one attempt: it POSTs r.Body to r.URL with r.Header and
// Content-Type application/json, bounded as a whole by the Config's
// Timeout (and ctx). A 2xx response is success; anything else is a Result
// with an ErrorClass. The URL is checked with Config.ValidateURL first.
// A cancelled ctx gives ErrorClassConnectionError with Err wrapping
// context.Canceled, which callers shutting down may not want to count as
// a failed attempt.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	res := s.send(ctx, r)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, r Request) Result {
	if err := s.cfg.ValidateURL(r.URL); err != nil {
		return Result{ErrorClass: Classify(err), Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Result{ErrorClass: ErrorClassInvalidURL, Err: &URLError{URL: r.URL, Problem: err.Error(), Err: ErrInvalidURL}}
	}
	for k, vs := range r.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "HelpDeskFlow-Webhooks/1")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{ErrorClass: Classify(err), Err: err}
	}
	defer resp.Body.Close()
	// The status decides the attempt; a body that fails half-way is kept
	// as far as it came.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(s.cfg.MaxResponseBytes)))
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	res := Result{StatusCode: resp.StatusCode, Body: body}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.ErrorClass = ErrorClassHTTPStatus
		res.Err = &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Location: resp.Header.Get("Location")}
	}
	return res
}

// Classify returns the ErrorClass* constant for an error of an attempt:
// ErrorClassConnectionError for one it does not recognise, "" for nil.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var (
		invalidCert x509.CertificateInvalidError
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		record      tls.RecordHeaderError
		alert       tls.AlertError
		verify      *tls.CertificateVerificationError
		dns         *net.DNSError
		status      *StatusError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return ErrorClassBlockedAddress
	case errors.Is(err, ErrInvalidURL):
		return ErrorClassInvalidURL
	case errors.As(err, &status):
		return ErrorClassHTTPStatus
	case errors.As(err, &invalidCert):
		if invalidCert.Reason == x509.Expired {
			return ErrorClassTLSCertificateExpired
		}
		return ErrorClassTLSHandshake
	case errors.As(err, &unknownCA):
		return ErrorClassTLSUnknownAuthority
	case errors.As(err, &hostname):
		return ErrorClassTLSHostnameMismatch
	case errors.As(err, &record), errors.As(err, &alert), errors.As(err, &verify),
		errors.Is(err, http.ErrSchemeMismatch): // a plain HTTP answer to the TLS hello
		return ErrorClassTLSHandshake
	case errors.As(err, &dns):
		return ErrorClassDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrorClassConnectionRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ErrorClassTimeout
	case isTLSError(err):
		return ErrorClassTLSHandshake
	}
	return ErrorClassConnectionError
}

// isTLSError recognises crypto/tls's untyped handshake errors (such as
// "tls: server selected unsupported protocol version"), which are
// created with errors.New and can only be told by their prefix.
func isTLSError(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), "tls: ") {
			return true
		}
	}
	return false
}
