package egress

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// DefaultDialTimeout bounds a connect of Dialer, DialContext and
// Transport (DNS included).
const DefaultDialTimeout = 10 * time.Second

// Dialer returns a new net.Dialer that applies p: Control checks each
// address before connecting to it, Resolver is p.Resolver, Timeout is
// DefaultDialTimeout and KeepAlive 30 s. The caller may change the
// Timeout; changing Control removes the check.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second, Resolver: p.Resolver, Control: p.Control}
}

// DialContext connects to address on the named network like
// net.Dialer.DialContext, through Dialer: a refused address (after DNS)
// fails with an error wrapping a *BlockedAddressError before any
// connection is made; when a name resolves to several addresses, the
// refused ones are skipped and each other one is tried in turn.
func (p Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer().DialContext(ctx, network, address)
}

// Transport returns a new HTTP transport that connects through
// DialContext and takes no proxy from the environment (a proxy would be
// the address checked, not the host asked for). It requires TLS 1.2 or
// later and verifies certificates with the system's roots; its TLS
// handshake timeout is 10 s. It sets no overall timeout: give the
// http.Client one. Redirects are the client's business; those it follows
// are dialled through the same check.
func (p Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
