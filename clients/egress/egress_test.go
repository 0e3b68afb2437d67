package egress_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
)

func TestPolicy_CheckHost(t *testing.T) {
	tests := []struct {
		host     string
		loopback bool   // AllowLoopback
		want     error  // nil, egress.ErrBlockedAddress or egress.ErrInvalidHost
		text     string // in the error
	}{
		{host: "mail.example.com"},
		{host: "outlook.office365.com"},
		{host: "8.8.8.8"},
		{host: "2606:4700:4700::1111"},
		{host: "[2606:4700:4700::1111]"},
		{host: "private.example.test"}, // names are checked when dialled
		{host: "10.0.0.1", want: egress.ErrBlockedAddress, text: "10.0.0.1 is a private address"},
		{host: "172.16.5.4", want: egress.ErrBlockedAddress, text: "private"},
		{host: "192.168.1.1", want: egress.ErrBlockedAddress, text: "192.168.1.1 is a private address"},
		{host: "169.254.169.254", want: egress.ErrBlockedAddress, text: "link-local"},
		{host: "100.64.0.1", want: egress.ErrBlockedAddress, text: "carrier-grade NAT"},
		{host: "fd00::1", want: egress.ErrBlockedAddress, text: "unique local"},
		{host: "[fe80::1%eth0]", want: egress.ErrBlockedAddress, text: "link-local"},
		{host: "224.0.0.1", want: egress.ErrBlockedAddress, text: "multicast"},
		{host: "0.0.0.0", want: egress.ErrBlockedAddress, text: "unspecified"},
		{host: "[::]", want: egress.ErrBlockedAddress, text: "unspecified"},
		{host: "::ffff:10.0.0.1", want: egress.ErrBlockedAddress, text: "IPv4-mapped IPv6 form of private"},
		{host: "127.0.0.1", want: egress.ErrBlockedAddress, text: "loopback"},
		{host: "[::1]", want: egress.ErrBlockedAddress, text: "::1 is a loopback address"},
		{host: "127.1", want: egress.ErrBlockedAddress, text: "127.1 is a loopback address 127.0.0.1"},
		{host: "2130706433", want: egress.ErrBlockedAddress, text: "loopback address 127.0.0.1"},
		{host: "localhost", want: egress.ErrBlockedAddress, text: "localhost is a loopback name"},
		{host: "Mail.LOCALHOST.", want: egress.ErrBlockedAddress, text: "loopback name"},
		{host: "127.0.0.1", loopback: true},
		{host: "[::1]", loopback: true},
		{host: "localhost", loopback: true},
		{host: "127.1", loopback: true, want: egress.ErrInvalidHost, text: "non-standard form; write 127.0.0.1"},
		{host: "10.0.0.1", loopback: true, want: egress.ErrBlockedAddress, text: "private"},
		{host: "169.254.169.254", loopback: true, want: egress.ErrBlockedAddress, text: "link-local"},
		{host: "0x08080808", want: egress.ErrInvalidHost, text: "the host 0x08080808 is the IPv4 address 8.8.8.8 written in a non-standard form"},
		{host: "256.1.1.1", want: egress.ErrInvalidHost, text: "not a valid one"},
		{host: "mail.exa*mple.com", want: egress.ErrInvalidHost, text: "characters not allowed"},
	}
	for _, tt := range tests {
		p := egress.Policy{AllowLoopback: tt.loopback}
		err := p.CheckHost(tt.host)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%+v.CheckHost(%q) = %v, want nil", p, tt.host, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%+v.CheckHost(%q) = %v, want errors.Is %v containing %q", p, tt.host, err, tt.want, tt.text)
		}
	}
}

func TestPolicy_Check(t *testing.T) {
	for _, tt := range []struct {
		p       egress.Policy
		allowed []string
		blocked []string
	}{
		{egress.Policy{}, []string{"8.8.8.8", "2a00:1450:4001::1"}, []string{"127.0.0.1", "::1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::ffff:127.0.0.1", "64:ff9b::a00:1"}},
		{egress.Policy{AllowLoopback: true}, []string{"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"}, []string{"10.0.0.1", "172.16.0.1", "169.254.169.254", "fd00::1"}},
		{egress.Policy{AllowPrivate: true}, []string{"10.0.0.1", "fd00::1"}, []string{"127.0.0.1", "169.254.169.254"}},
		{egress.Policy{AllowedNets: []netip.Prefix{netip.MustParsePrefix("169.254.10.0/24")}}, []string{"169.254.10.5"}, []string{"169.254.169.254"}},
	} {
		for _, a := range tt.allowed {
			if err := tt.p.Check(netip.MustParseAddr(a)); err != nil {
				t.Errorf("%+v.Check(%s) = %v, want nil", tt.p, a, err)
			}
		}
		for _, a := range tt.blocked {
			var be *egress.BlockedAddressError
			if err := tt.p.Check(netip.MustParseAddr(a)); !errors.As(err, &be) {
				t.Errorf("%+v.Check(%s) = %v, want a *BlockedAddressError", tt.p, a, err)
			}
		}
	}
}

// TestPolicy_DialContext proves that a refused address is refused before
// any connection: the loopback listener behind the names never sees one.
// The private, link-local and unique-local addresses are refused the same
// way, so the test never sends a packet to them.
func TestPolicy_DialContext(t *testing.T) {
	l := egresstest.Listen(t)
	port := l.PortString()
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{
		"loopback.example.test": {netip.MustParseAddr("127.0.0.1")},
		"private.example.test":  {netip.MustParseAddr("10.0.0.1")},
		"metadata.example.test": {netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00::1")},
		"mapped.example.test":   {netip.MustParseAddr("::ffff:127.0.0.1")},
	})
	p := egress.Policy{Resolver: resolver}
	for _, addr := range []string{
		l.Addr(), "localhost:" + port, "[::1]:" + port, "[::ffff:127.0.0.1]:" + port,
		"loopback.example.test:" + port, "mapped.example.test:" + port,
		"10.0.0.1:993", "192.168.1.1:143", "169.254.169.254:80", "[fd00::1]:587",
		"private.example.test:993", "metadata.example.test:80",
	} {
		conn, err := p.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
			t.Errorf("DialContext(%s) connected", addr)
			continue
		}
		var be *egress.BlockedAddressError
		if !errors.Is(err, egress.ErrBlockedAddress) || !errors.As(err, &be) {
			t.Errorf("DialContext(%s) = %v, want a blocked address", addr, err)
		}
	}
	if n := l.Accepted(t); n != 0 {
		t.Fatalf("the listener accepted %d connections, want 0", n)
	}

	// Where loopback is allowed, the same name connects.
	loopback := egress.Policy{AllowLoopback: true, Resolver: resolver}
	conn, err := loopback.DialContext(context.Background(), "tcp", "loopback.example.test:"+port)
	if err != nil {
		t.Fatalf("DialContext with loopback allowed: %v", err)
	}
	conn.Close()
	if n := l.Accepted(t); n != 1 {
		t.Errorf("the listener accepted %d connections, want 1", n)
	}
	if _, err := loopback.DialContext(context.Background(), "tcp", "private.example.test:993"); !errors.Is(err, egress.ErrBlockedAddress) {
		t.Errorf("a private address with loopback allowed: %v, want a blocked address", err)
	}
}

func TestPolicy_Transport(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{"shop.example.test": {netip.MustParseAddr("127.0.0.1")}})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	tr := egress.Policy{Resolver: resolver}.Transport()
	if tr.Proxy != nil {
		t.Error("the transport takes a proxy from the environment")
	}
	client := &http.Client{Transport: tr}
	for _, u := range []string{srv.URL, "http://shop.example.test:" + port + "/"} {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, egress.ErrBlockedAddress) {
			t.Errorf("GET %s = %v, want a blocked address", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server got %d requests", n)
	}
	client = &http.Client{Transport: egress.Policy{AllowLoopback: true, Resolver: resolver}.Transport()}
	resp, err := client.Get("http://shop.example.test:" + port + "/")
	if err != nil {
		t.Fatalf("GET with loopback allowed: %v", err)
	}
	resp.Body.Close()
	if n := hits.Load(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
}
