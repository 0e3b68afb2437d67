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
// (Check). Its message names the server and the step, as in
//
//	imap mail.example.com:993: login: authentication failed: NO [AUTHENTICATIONFAILED] Authentication failed.
//
// and it unwraps to the cause: a *net.OpError, *net.DNSError, an x509 or
// tls error, *imap.Error, *textproto.Error (SMTP replies),
// context.DeadlineExceeded or context.Canceled.
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

// Error implements the error interface.
func (e *Error) Error() string {
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
	default:
		return "failed"
	}
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
// ErrorRejected and ErrorProtocol; "" for nil. Errors of this package carry
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
