package imapmail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"

	"github.com/emersion/go-imap/v2"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// The causes Classify names. They are stable strings, meant for an admin
// (and for the API: they are part of its contract and never change).
const (
	// ErrorAuth: the server refused the username or password (IMAP NO on
	// LOGIN/AUTHENTICATE, SMTP 535 and friends), or offers no mechanism
	// this package speaks (SMTP AUTH PLAIN or LOGIN).
	ErrorAuth = "authentication_failed"
	// ErrorTLS: the TLS handshake failed (untrusted or mismatched
	// certificate, TLS spoken to a plain port) or STARTTLS is not offered
	// or refused.
	ErrorTLS = "tls"
	// ErrorUnreachable: nothing answers on host:port (connection refused,
	// no route), or the connection was lost mid-conversation.
	ErrorUnreachable = "host_unreachable"
	// ErrorTimeout: a step took longer than its timeout, or the context
	// ended (deadline or cancellation).
	ErrorTimeout = "timeout"
	// ErrorDNS: the host name does not resolve.
	ErrorDNS = "dns"
	// ErrorMailbox: the IMAP server has no such mailbox (EXAMINE refused).
	ErrorMailbox = "mailbox_not_found"
	// ErrorRejected: the SMTP server refused a recipient (RCPT TO).
	ErrorRejected = "recipient_rejected"
	// ErrorBlocked: the outbound address policy refuses the server: its
	// host is, or resolves to, an internal address (loopback where not
	// allowed, private, link-local, …), or its port is not a mail port.
	// Nothing was sent to it.
	ErrorBlocked = "blocked_address"
	// ErrorProtocol: anything else: an unexpected answer, a refused
	// message (MAIL FROM, DATA), invalid settings or arguments.
	ErrorProtocol = "protocol"
)

// Protocols, as Error.Protocol names them.
const (
	protoIMAP = "imap"
	protoSMTP = "smtp"
)

// Steps of a conversation, as Error.Step names them.
const (
	stepConnect  = "connect"
	stepTLS      = "tls handshake"
	stepGreeting = "greeting"
	stepStartTLS = "starttls"
	stepLogin    = "login"
	stepSelect   = "examine"
	stepSearch   = "search"
	stepFetch    = "fetch"
	stepHello    = "ehlo"
	stepAuth     = "auth"
	stepMailFrom = "mail from"
	stepRcptTo   = "rcpt to"
	stepData     = "data"
)

// Error is a failed step of a conversation with a mail server. Every error
// Fetch, Check and Send return (but the validation error of invalid
// settings, a *helpdeskflow.Error) is one, possibly joined with a second
// (Check). Its message names the server, the step and the class, and says
// what the class means in fixed words, as in
//
//	imap mail.example.com:993: login: authentication failed: the server refused the username or password
//
// It never holds what the server said (its greeting, its answer to a
// command, an error message): an admin may name any host and port, and
// the text goes back to them. Only what this package says itself is kept,
// such as "the server does not offer STARTTLS" or why the address policy
// refused the server. Detail has the cause in full, for logs. Err is the
// cause: a *net.OpError, *net.DNSError, an x509 or tls error,
// *imap.Error, *textproto.Error (SMTP replies), an
// *egress.BlockedAddressError, context.DeadlineExceeded or
// context.Canceled.
type Error struct {
	// Protocol is "imap" or "smtp".
	Protocol string
	// Server is the host:port talked to.
	Server string
	// Step is what failed: connect, tls handshake, greeting, starttls,
	// login, examine, search, fetch, ehlo, auth, mail from, rcpt to, data.
	Step string
	// Kind is Classify's answer: one of the Error* constants.
	Kind string
	// Err is the cause.
	Err error
}

// Error implements the error interface: the server, the step, the class
// and what it means, never the server's own words.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %s: %s: %s", e.Protocol, e.Server, e.Step, kindText(e.Kind), publicText(e.Kind, e.Err))
}

// Detail is Error with the cause in full, the server's answer included:
// for the operator's log, never for an API.
func (e *Error) Detail() string {
	return fmt.Sprintf("%s %s: %s: %s: %v", e.Protocol, e.Server, e.Step, kindText(e.Kind), e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func kindText(kind string) string {
	switch kind {
	case ErrorAuth:
		return "authentication failed"
	case ErrorTLS:
		return "TLS failed"
	case ErrorUnreachable:
		return "host unreachable"
	case ErrorTimeout:
		return "timed out"
	case ErrorDNS:
		return "host name does not resolve"
	case ErrorMailbox:
		return "mailbox not found"
	case ErrorRejected:
		return "recipient rejected"
	case ErrorBlocked:
		return "address not allowed"
	default:
		return "failed"
	}
}

// kindMeaning says in fixed words what a class means and what to check.
var kindMeaning = map[string]string{
	ErrorAuth:        "the server refused the username or password",
	ErrorTLS:         "no secure connection could be made; check the security setting (tls or starttls) and the port, and that the server's certificate is valid for the host name",
	ErrorUnreachable: "nothing answered on this host and port, or the connection was lost",
	ErrorTimeout:     "the server did not answer in time",
	ErrorDNS:         "check the host name",
	ErrorMailbox:     "the server has no mailbox (folder) of this name",
	ErrorRejected:    "the server refused a recipient",
	ErrorBlocked:     "HelpDeskFlow does not connect to internal addresses",
	ErrorProtocol:    "the server refused the request or answered in a way this client does not understand",
}

// untrustedMeaning is what a certificate of an unknown authority means:
// the security setting is right, the trust is missing.
const untrustedMeaning = "the server's certificate is signed by an authority HelpDeskFlow does not trust; " +
	"a server with a certificate of a private CA needs that CA added (HDF_EXTRA_CA_FILE)"

// publicError is a cause whose words are this package's own (no server
// text): public says them.
type publicError interface {
	error
	public() string
}

// problem is a failure described by this package alone.
type problem string

func (p problem) Error() string  { return string(p) }
func (p problem) public() string { return string(p) }

// recipientError is a refused recipient: the address is ours, the reason
// the server's.
type recipientError struct {
	rcpt string
	err  error
}

func (e *recipientError) Error() string  { return "<" + e.rcpt + ">: " + e.err.Error() }
func (e *recipientError) Unwrap() error  { return e.err }
func (e *recipientError) public() string { return "the server refused the recipient <" + e.rcpt + ">" }

// publicText is what an Error may say about its cause: this package's own
// words when it has them, otherwise the class's fixed meaning.
func publicText(kind string, err error) string {
	var pe publicError
	var blocked *egress.BlockedAddressError
	var untrusted x509.UnknownAuthorityError
	switch {
	case errors.As(err, &pe):
		return pe.public()
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.As(err, &untrusted):
		return untrustedMeaning
	case errors.Is(err, context.Canceled):
		return "the operation was cancelled"
	}
	if m, ok := kindMeaning[kind]; ok {
		return m
	}
	return kindMeaning[ErrorProtocol]
}

// newError wraps err, the failure of step with server, and classifies it.
func newError(protocol, server, step string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Protocol: protocol, Server: server, Step: step, Kind: classifyCause(step, err), Err: err}
}

// Classify names the cause of a failure for an admin: one of ErrorAuth,
// ErrorTLS, ErrorUnreachable, ErrorTimeout, ErrorDNS, ErrorMailbox,
// ErrorRejected, ErrorBlocked and ErrorProtocol; "" for nil. Errors of this package carry
// their class (Error.Kind); other errors are classified by their cause as
// well as that allows, ErrorProtocol when nothing fits.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return classifyCause("", err)
}

// classifyCause classifies a cause, knowing the step it failed at.
func classifyCause(step string, err error) string {
	// Refusals of the address policy come first: net wraps them as dial
	// errors.
	if errors.Is(err, egress.ErrBlockedAddress) || errors.Is(err, ErrPortRefused) {
		return ErrorBlocked
	}
	if errors.Is(err, ErrPlaintextRefused) {
		return ErrorTLS
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrorTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ErrorDNS
	}
	if isTLSError(err) {
		return ErrorTLS
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrorTimeout
	}
	if isConnectionError(err) {
		return ErrorUnreachable
	}

	var ie *imap.Error
	if errors.As(err, &ie) {
		switch {
		case step == stepStartTLS:
			return ErrorTLS
		case ie.Code == imap.ResponseCodeUnavailable || ie.Code == imap.ResponseCodeInUse:
			return ErrorProtocol
		case step == stepLogin && ie.Type == imap.StatusResponseTypeNo:
			return ErrorAuth
		case ie.Code == imap.ResponseCodeAuthenticationFailed || ie.Code == imap.ResponseCodeAuthorizationFailed || ie.Code == imap.ResponseCodeExpired:
			return ErrorAuth
		case step == stepSelect && ie.Type == imap.StatusResponseTypeNo, ie.Code == imap.ResponseCodeNonExistent:
			return ErrorMailbox
		}
		return ErrorProtocol
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		switch {
		case step == stepStartTLS:
			return ErrorTLS
		case step == stepAuth || te.Code == 530 || te.Code == 535 || te.Code == 534:
			return ErrorAuth
		case step == stepRcptTo:
			return ErrorRejected
		}
		return ErrorProtocol
	}
	switch step {
	case stepTLS, stepStartTLS:
		return ErrorTLS
	case stepAuth:
		return ErrorAuth
	}
	return ErrorProtocol
}

func isTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		alert            tls.AlertError
		echRejection     *tls.ECHRejectionError
		systemRoots      x509.SystemRootsError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification) || errors.As(err, &recordHeader) || errors.As(err, &alert) ||
		errors.As(err, &echRejection) || errors.As(err, &systemRoots)
}

// isConnectionError reports a connection that could not be made or broke.
func isConnectionError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.EHOSTDOWN) || errors.Is(err, syscall.ENETDOWN) || errors.Is(err, syscall.EADDRNOTAVAIL) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Temporary reports whether err is worth retrying later without anyone
// changing the settings: the server was unreachable, a step timed out (but
// not a cancelled context), the host name did not resolve (DNS failures are
// often transient), an SMTP server answered 4xx, or an IMAP server said
// [UNAVAILABLE] or [INUSE]. Authentication, TLS, mailbox and protocol
// failures are not temporary.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code/100 == 4 {
		return true
	}
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeUnavailable || ie.Code == imap.ResponseCodeInUse) {
		return true
	}
	switch Classify(err) {
	case ErrorUnreachable, ErrorTimeout, ErrorDNS:
		return true
	}
	return false
}
