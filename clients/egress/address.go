package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// ErrBlockedAddress is the errors.Is target of a *BlockedAddressError.
var ErrBlockedAddress = errors.New("egress: blocked address")

// ErrInvalidHost is the errors.Is target of a *HostError.
var ErrInvalidHost = errors.New("egress: invalid host")

// BlockedAddressError says that a connection may not go to Addr, and why:
// Reason is a kind of address such as "loopback", "private", "link-local"
// or "IPv4-mapped IPv6 form of loopback". Host is the name or literal it
// came from, when that differs from Addr; for the names localhost and
// *.localhost Addr is the zero Addr. errors.Is(err, ErrBlockedAddress)
// holds.
type BlockedAddressError struct {
	Addr   netip.Addr
	Host   string
	Reason string
}

// Describe says what the address is, without saying that it is refused:
// "127.1 is a loopback address 127.0.0.1", "10.0.0.1 is a private
// address", "localhost is a loopback name".
func (e *BlockedAddressError) Describe() string {
	switch {
	case !e.Addr.IsValid() && e.Host != "":
		return fmt.Sprintf("%s is %s name", e.Host, article(e.Reason))
	case e.Host != "" && e.Host != e.Addr.String():
		return fmt.Sprintf("%s is %s address %s", e.Host, article(e.Reason), e.Addr)
	}
	return fmt.Sprintf("%s is %s address", e.Addr, article(e.Reason))
}

// Error implements the error interface.
func (e *BlockedAddressError) Error() string {
	return e.Describe() + "; outbound connections may not reach it"
}

// Is reports whether target is ErrBlockedAddress.
func (e *BlockedAddressError) Is(target error) bool { return target == ErrBlockedAddress }

func article(s string) string {
	if s != "" && strings.ContainsRune("aeiouAEIOU", rune(s[0])) && !strings.HasPrefix(s, "uni") {
		return "an " + s
	}
	return "a " + s
}

// HostError is CheckHost's answer for a host that is neither a valid name
// nor an IP address in standard form; Problem says why, in words fit for
// an API client ("the host 127.1 is the IPv4 address 127.0.0.1 written in
// a non-standard form; write 127.0.0.1"). errors.Is(err, ErrInvalidHost)
// holds.
type HostError struct {
	Host    string
	Problem string
}

// Error returns Problem.
func (e *HostError) Error() string { return e.Problem }

// Is reports whether target is ErrInvalidHost.
func (e *HostError) Is(target error) bool { return target == ErrInvalidHost }

// Policy is the outbound address policy. The zero value is the production
// setting: public addresses only. A Policy is a value, safe for concurrent
// use.
type Policy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1 (development and tests).
	AllowLoopback bool
	// AllowPrivate allows 10/8, 172.16/12, 192.168/16, the carrier-grade
	// NAT range 100.64/10 and IPv6 unique-local fc00::/7 (site-local
	// fec0::/10 too). It does not allow link-local addresses, where cloud
	// metadata services live. No configuration of the binary sets it.
	AllowPrivate bool
	// AllowedNets are allowed whatever their kind, for a receiver inside
	// a network that is otherwise refused. No configuration of the binary
	// sets them.
	AllowedNets []netip.Prefix
	// Resolver resolves host names for Dialer, DialContext and Transport;
	// nil means net.DefaultResolver (tests point it at a fake DNS server).
	Resolver *net.Resolver
}

// Check returns a *BlockedAddressError when p forbids connecting to a, and
// nil when it allows it.
func (p Policy) Check(a netip.Addr) error {
	if blocked := p.check(a); blocked != nil {
		return blocked
	}
	return nil
}

// CheckHost checks a host as a user wrote it — a name, or an IP address
// (an IPv6 one with or without brackets) — without DNS. An IP address,
// also in legacy forms such as 127.1, 0x7f000001, 2130706433 or
// [::ffff:127.0.0.1], is refused with a *BlockedAddressError when p
// forbids it; a permitted one written in a non-standard form is a
// *HostError, since resolvers disagree on those. The names localhost and
// *.localhost count as loopback. A host with characters no host name has,
// or that looks like an IPv4 address but is not one, is a *HostError.
// Other names pass: they are checked when dialled (Control).
func (p Policy) CheckHost(host string) error {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	addr, kind := parseHostAddr(host)
	switch kind {
	case hostInvalidNumeric:
		return &HostError{Host: host, Problem: fmt.Sprintf("the host %q looks like an IPv4 address but is not a valid one", host)}
	case hostInvalid:
		return &HostError{Host: host, Problem: fmt.Sprintf("the host %q contains characters not allowed in a host name", host)}
	case hostName:
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		if (name == "localhost" || strings.HasSuffix(name, ".localhost")) && !p.AllowLoopback {
			return &BlockedAddressError{Host: host, Reason: "loopback"}
		}
		return nil
	}
	if blocked := p.check(addr); blocked != nil {
		blocked.Host = host
		return blocked
	}
	if kind == hostLegacyIPv4 {
		return &HostError{Host: host, Problem: fmt.Sprintf("the host %s is the IPv4 address %s written in a non-standard form; write %s", host, addr, addr)}
	}
	return nil
}

// Control is a net.Dialer Control func that applies p: it runs before
// each connect, on the address actually dialled (after DNS), and returns
// a *BlockedAddressError for a refused one, so no connection is made. An
// address it cannot read is refused too.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address we cannot read is not one we checked.
		return &BlockedAddressError{Host: address, Reason: "unrecognised"}
	}
	if blocked := p.check(ap.Addr()); blocked != nil {
		return blocked
	}
	return nil
}

type hostKind int

const (
	hostName hostKind = iota
	hostIP
	hostLegacyIPv4 // 127.1, 0x7f000001, 017700000001, 2130706433…
	hostInvalidNumeric
	hostInvalid
)

// parseHostAddr says whether host (without brackets) is an IP address,
// following the WHATWG URL rule: a host whose last label is a number is
// an IPv4 address, in any of inet_aton's forms, or invalid.
func parseHostAddr(host string) (netip.Addr, hostKind) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, hostIP
	}
	if strings.Contains(host, ":") {
		return netip.Addr{}, hostInvalid // an IPv6 literal that does not parse
	}
	trimmed := strings.TrimSuffix(host, ".")
	labels := strings.Split(trimmed, ".")
	if !isNumberLabel(labels[len(labels)-1]) {
		for _, r := range host {
			ok := r >= utf8.RuneSelf || r == '-' || r == '.' || r == '_' ||
				'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
			if !ok {
				return netip.Addr{}, hostInvalid
			}
		}
		return netip.Addr{}, hostName
	}
	if a, ok := parseLegacyIPv4(labels); ok {
		if a.String() == host {
			return a, hostIP
		}
		return a, hostLegacyIPv4
	}
	return netip.Addr{}, hostInvalidNumeric
}

func isNumberLabel(s string) bool {
	if s == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		for _, r := range rest {
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
		return true
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseLegacyIPv4 parses 1 to 4 numbers, each decimal, octal (leading 0)
// or hexadecimal (0x), the last filling the remaining bytes, as
// inet_aton does.
func parseLegacyIPv4(labels []string) (netip.Addr, bool) {
	if len(labels) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(labels))
	for i, l := range labels {
		base, digits := 10, l
		switch {
		case len(l) > 2 && (l[:2] == "0x" || l[:2] == "0X"):
			base, digits = 16, l[2:]
		case l == "0x" || l == "0X":
			digits = "0"
		case len(l) > 1 && l[0] == '0':
			base, digits = 8, l[1:]
		}
		n, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

type addrClass int

const (
	classLoopback addrClass = iota + 1 // allowed by AllowLoopback
	classPrivate                       // allowed by AllowPrivate
	classInternal                      // allowed only by AllowedNets
)

// blockedRanges are the addresses a connection may not reach by default,
// the more specific before the ranges that contain them.
var blockedRanges = []struct {
	prefix netip.Prefix
	reason string
	class  addrClass
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", classLoopback},
	{netip.MustParsePrefix("::1/128"), "loopback", classLoopback},
	{netip.MustParsePrefix("10.0.0.0/8"), "private", classPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), "private", classPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), "private", classPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (shared)", classPrivate},
	{netip.MustParsePrefix("fc00::/7"), "unique local", classPrivate},
	{netip.MustParsePrefix("fec0::/10"), "site-local", classPrivate},
	// Link-local holds cloud metadata services (169.254.169.254), so
	// AllowPrivate does not open it.
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local", classInternal},
	{netip.MustParsePrefix("fe80::/10"), "link-local", classInternal},
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified", classInternal},
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`, classInternal},
	{netip.MustParsePrefix("::/128"), "unspecified", classInternal},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", classInternal},
	{netip.MustParsePrefix("ff00::/8"), "multicast", classInternal},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast", classInternal},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved", classInternal},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment", classInternal},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking", classInternal},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation", classInternal},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation", classInternal},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation", classInternal},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation", classInternal},
	{netip.MustParsePrefix("100::/64"), "discard-only", classInternal},
}

// IPv6 ranges that embed an IPv4 address, which is checked in their stead.
var (
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	ipv4Compat  = netip.MustParsePrefix("::/96")
	noEmbedding = netip.Addr{}
)

// classify returns why a is blocked by default and who may allow it, or
// "" for a public address.
func classify(a netip.Addr) (string, addrClass) {
	a = a.WithZone("")
	if embedded, how := embeddedIPv4(a); embedded != noEmbedding {
		if reason, class := classify(embedded); reason != "" {
			return how + " form of " + reason, class
		}
		return "", 0
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.reason, r.class
		}
	}
	return "", 0
}

func embeddedIPv4(a netip.Addr) (netip.Addr, string) {
	if !a.Is6() {
		return noEmbedding, ""
	}
	b := a.As16()
	switch {
	case a.Is4In6():
		return a.Unmap(), "IPv4-mapped IPv6"
	case nat64.Contains(a) || nat64Local.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4"
	case ipv4Compat.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:16])), "IPv4-compatible IPv6"
	}
	return noEmbedding, ""
}

// check returns why p forbids connecting to a, or nil.
func (p Policy) check(a netip.Addr) *BlockedAddressError {
	a = a.WithZone("")
	for _, n := range p.AllowedNets {
		if n.Contains(a) || (a.Is4In6() && n.Contains(a.Unmap())) {
			return nil
		}
	}
	reason, class := classify(a)
	switch {
	case reason == "":
		return nil
	case class == classLoopback && p.AllowLoopback, class == classPrivate && p.AllowPrivate:
		return nil
	}
	return &BlockedAddressError{Addr: a, Reason: reason}
}
