package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address a request comes from: the socket's peer,
// unless that peer is one of the trusted proxies, in which case the
// right-most address of X-Forwarded-For that is not itself a trusted proxy
// (addresses further left were written by the client and can be forged).
// It returns the zero Addr when the peer address cannot be parsed.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var addrs []string
	for _, h := range hops {
		addrs = append(addrs, strings.Split(h, ",")...)
	}
	for i := len(addrs) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(addrs[i]))
		if !a.IsValid() {
			// A hop we cannot read: stop at the last address we trust.
			return peer
		}
		if !isTrusted(a, trusted) {
			return a
		}
		peer = a
	}
	return peer
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port".
func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
