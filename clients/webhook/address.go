package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// MaxURLLength is the longest webhook URL ValidateURL accepts.
const MaxURLLength = 2048

// ErrBlockedAddress is the errors.Is target of a *BlockedAddressError
// (egress.ErrBlockedAddress).
var ErrBlockedAddress = egress.ErrBlockedAddress

// ErrInvalidURL is the errors.Is target of every *URLError.
var ErrInvalidURL = errors.New("webhook: invalid URL")

// BlockedAddressError says that a webhook may not connect to an address,
// and why: it is the outbound address policy's egress.BlockedAddressError.
type BlockedAddressError = egress.BlockedAddressError

// URLError is the error of ValidateURL: Problem says, in words fit for an
// API client, what is wrong with URL. Err is ErrInvalidURL or, for a
// literal address that is refused, a *BlockedAddressError; errors.Is(err,
// ErrInvalidURL) always holds.
type URLError struct {
	URL     string
	Problem string
	Err     error
}

// Error returns Problem.
func (e *URLError) Error() string { return e.Problem }

// Unwrap returns Err.
func (e *URLError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidURL.
func (e *URLError) Is(target error) bool { return target == ErrInvalidURL }

// ValidateURL checks a webhook URL when a subscription is created: an
// absolute http or https URL of at most MaxURLLength characters with a
// host and no user name or password. A host that is an IP address — also
// in legacy forms such as 127.1, 0x7f000001, 2130706433 or
// [::ffff:127.0.0.1] — is refused when it is loopback (unless
// allowLoopback), private, link-local or otherwise internal, and refused
// too when written in a non-standard form, since resolvers disagree on
// those; "localhost" and *.localhost count as loopback. Other names are
// checked when a Sender dials them. The error is a *URLError.
func ValidateURL(raw string, allowLoopback bool) error {
	return Config{AllowLoopback: allowLoopback}.ValidateURL(raw)
}

// ValidateURL is the package's ValidateURL with c's rules on which
// addresses are allowed (AllowLoopback, AllowPrivate, AllowedNets).
func (c Config) ValidateURL(raw string) error {
	bad := func(format string, args ...any) error {
		return &URLError{URL: raw, Problem: fmt.Sprintf(format, args...), Err: ErrInvalidURL}
	}
	if len(raw) > MaxURLLength {
		return bad("the URL is %d characters long, more than %d", len(raw), MaxURLLength)
	}
	if raw == "" {
		return bad("the URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("not a valid URL: %v", err)
	}
	switch {
	case u.Scheme == "":
		return bad("the URL must be absolute, starting with https:// or http://")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the URL scheme must be https or http, not %s", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return bad("the URL has no host")
	case u.User != nil:
		return bad("the URL must not contain a user name or password")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("the port %q is not a number from 1 to 65535", p)
		}
	}
	host := u.Hostname()
	if host == "" {
		return bad("the URL has no host")
	}
	err = c.policy().CheckHost(host)
	var blocked *BlockedAddressError
	switch {
	case errors.As(err, &blocked):
		return &URLError{URL: raw, Problem: "the host " + blocked.Describe() + "; webhooks may not target it", Err: blocked}
	case err != nil:
		return bad("%s", err.Error())
	}
	return nil
}
