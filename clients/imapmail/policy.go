package imapmail

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// ErrPortRefused is the errors.Is target of a port that is not a usual
// mail port, refused for a server that is not on loopback (ErrorBlocked).
var ErrPortRefused = errors.New("imapmail: port refused")

// ErrPlaintextRefused is the errors.Is target of SecurityNone refused for
// a server that is not on loopback, or where loopback is not allowed
// (ErrorTLS).
var ErrPlaintextRefused = errors.New("imapmail: plain text refused")

// portError refuses a port off loopback.
type portError struct {
	protocol string
	port     int
}

func (e *portError) Error() string {
	name, ports := "an IMAP", IMAPPorts
	if e.protocol == protoSMTP {
		name, ports = "an SMTP submission", SMTPPorts
	}
	return fmt.Sprintf("port %d is not %s port (%s); other ports are allowed only for a loopback server in development", e.port, name, joinPorts(ports))
}
func (e *portError) Is(target error) bool { return target == ErrPortRefused }
func (e *portError) public() string       { return e.Error() }

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// plaintextError refuses SecurityNone.
type plaintextError struct{}

func (plaintextError) Error() string {
	return "security none (plain text, the password readable on the way) is allowed only for a loopback server in development; use tls or starttls"
}
func (plaintextError) Is(target error) bool { return target == ErrPlaintextRefused }
func (e plaintextError) public() string     { return e.Error() }

// server is one of the two servers of the settings.
type server struct {
	protocol, host, security string
	port                     int
}

func (c *Client) server(protocol string) server {
	if protocol == protoSMTP {
		return server{protoSMTP, c.s.SMTPHost, c.s.SMTPSecurity, c.s.SMTPPort}
	}
	return server{protoIMAP, c.s.IMAPHost, c.s.IMAPSecurity, c.s.IMAPPort}
}

func (s server) usualPort() bool {
	if s.protocol == protoSMTP {
		return slices.Contains(SMTPPorts, s.port)
	}
	return slices.Contains(IMAPPorts, s.port)
}

// checkServers applies the policy to both servers as far as it can be
// decided without DNS (see New): nil, a *helpdeskflow.Error, or the *Error
// of each refused server, joined.
func (c *Client) checkServers() error {
	var problems []helpdeskflow.FieldProblem
	var refused []error
	for _, s := range []server{c.server(protoIMAP), c.server(protoSMTP)} {
		addr := net.JoinHostPort(hostIP(s.host), strconv.Itoa(s.port))
		refuse := func(kind string, err error) {
			refused = append(refused, &Error{Protocol: s.protocol, Server: addr, Step: stepConnect, Kind: kind, Err: err})
		}
		err := c.policy.CheckHost(s.host)
		var hostErr *egress.HostError
		switch {
		case errors.As(err, &hostErr):
			problems = append(problems, helpdeskflow.FieldProblem{Field: s.protocol + "_host", Problem: hostErr.Problem})
			continue
		case err != nil:
			refuse(ErrorBlocked, err)
			continue
		}
		// Only a loopback server may be reached on another port or in plain
		// text: a literal says at once whether it is one; a name is judged
		// on the addresses it resolves to, when dialled.
		lit, notLit := netip.ParseAddr(hostIP(s.host))
		maybeLoopback := c.policy.AllowLoopback && (notLit != nil || lit.Unmap().IsLoopback())
		switch {
		case !s.usualPort() && !maybeLoopback:
			refuse(ErrorBlocked, &portError{protocol: s.protocol, port: s.port})
		case s.security == SecurityNone && !maybeLoopback:
			refuse(ErrorTLS, plaintextError{})
		}
	}
	if len(problems) > 0 {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid mail server settings", Details: problems}
	}
	return errors.Join(refused...)
}

// dialer is the protocol's dialer: the policy's, which checks every
// address before connecting, and then the port and plain text rules,
// which only a loopback address escapes.
func (c *Client) dialer(protocol string) *net.Dialer {
	s := c.server(protocol)
	d := c.policy.Dialer()
	d.Timeout = 0 // dial bounds it with its context
	checkAddr := d.Control
	d.Control = func(network, address string, rc syscall.RawConn) error {
		if err := checkAddr(network, address, rc); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || ap.Addr().Unmap().IsLoopback() {
			return err // loopback: only where the policy allowed it above
		}
		switch {
		case !s.usualPort():
			return &portError{protocol: s.protocol, port: s.port}
		case s.security == SecurityNone:
			return plaintextError{}
		}
		return nil
	}
	return d
}

// logFailure logs what err's *Errors leave out of their text: the
// servers' own words (when a logger is set).
func (c *Client) logFailure(err error) {
	if c.logger == nil || err == nil {
		return
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, err := range errs {
		var e *Error
		if errors.As(err, &e) {
			c.logger.Warn("imapmail: talking to a mail server failed", "protocol", e.Protocol, "server", e.Server, "step", e.Step,
				"class", e.Kind, "detail", e.Detail())
		}
	}
}
