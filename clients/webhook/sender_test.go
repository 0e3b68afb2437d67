package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

// testTimeout keeps the timeout tests fast.
const testTimeout = 300 * time.Millisecond

func loopbackSender(cfg webhook.Config) *webhook.Sender {
	cfg.AllowLoopback = true
	if cfg.Timeout == 0 {
		cfg.Timeout = testTimeout
	}
	return webhook.NewSender(cfg)
}

func checkResult(t *testing.T, res webhook.Result, status int, class string) {
	t.Helper()
	if res.StatusCode != status || res.ErrorClass != class {
		t.Fatalf("Send = status %d, class %q (%v); want status %d, class %q", res.StatusCode, res.ErrorClass, res.Err, status, class)
	}
	if (res.Err == nil) != (class == "") {
		t.Errorf("Send: Err = %v with class %q", res.Err, class)
	}
	if got := webhook.Classify(res.Err); got != class {
		t.Errorf("Classify(%v) = %q, want %q", res.Err, got, class)
	}
}

func TestNewSender_Defaults(t *testing.T) {
	cfg := webhook.NewSender(webhook.Config{}).Config()
	if got, want := cfg.Timeout, 3*time.Second; got != want {
		t.Errorf("Timeout = %s, want %s", got, want)
	}
	if got, want := cfg.MaxResponseBytes, 4096; got != want {
		t.Errorf("MaxResponseBytes = %d, want %d", got, want)
	}
	if cfg.AllowLoopback || cfg.AllowPrivate || len(cfg.AllowedNets) > 0 {
		t.Errorf("the zero Config allows internal addresses: %+v", cfg)
	}
}

func TestSender_Send_OK(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"ticket.created"}`)
	type seen struct {
		method, contentType, eventID, userAgent string
		body                                    []byte
		verify                                  error
	}
	got := make(chan seen, 1)
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		got <- seen{req.Method, req.Header.Get("Content-Type"), req.Header.Get(webhook.HeaderEventID), req.Header.Get("User-Agent"), b,
			webhook.Verify(req.Header.Get(webhook.HeaderSignature), b, testSecret, 0, time.Now())}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "thanks")
	})
	header := http.Header{}
	header.Set(webhook.HeaderSignature, webhook.Sign([]string{"whsec_new", testSecret}, time.Now(), body))
	header.Set(webhook.HeaderEventID, "evt_1")
	header.Set("Content-Type", "text/plain") // replaced

	res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL + "/hook", Body: body, Header: header})
	checkResult(t, res, http.StatusAccepted, "")
	if got, want := string(res.Body), "thanks"; got != want {
		t.Errorf("Body = %q, want %q", got, want)
	}
	if res.Duration <= 0 || res.Duration > time.Second {
		t.Errorf("Duration = %s", res.Duration)
	}
	s := <-got
	if s.method != http.MethodPost || s.contentType != "application/json" || s.eventID != "evt_1" || !bytes.Equal(s.body, body) {
		t.Errorf("the receiver saw %s, Content-Type %q, event id %q, body %q", s.method, s.contentType, s.eventID, s.body)
	}
	if s.userAgent == "" || strings.HasPrefix(s.userAgent, "Go-http-client") {
		t.Errorf("User-Agent = %q", s.userAgent)
	}
	if s.verify != nil {
		t.Errorf("the receiver could not verify the signature: %v", s.verify)
	}
}

func TestSender_Send_Status(t *testing.T) {
	t.Run("500", func(t *testing.T) {
		r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "database down", http.StatusInternalServerError)
		})
		res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 500, webhook.ErrorClassHTTPStatus)
		if got, want := string(res.Body), "database down\n"; got != want {
			t.Errorf("Body = %q, want %q", got, want)
		}
		var se *webhook.StatusError
		if !errors.As(res.Err, &se) || se.StatusCode != 500 {
			t.Errorf("Err = %v, want a *StatusError for 500", res.Err)
		}
	})
	t.Run("302 is not followed", func(t *testing.T) {
		target := newReceiver(t, ok)
		r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, target.URL+"/elsewhere", http.StatusFound)
		})
		res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, http.StatusFound, webhook.ErrorClassHTTPStatus)
		if n := target.hits.Load(); n != 0 {
			t.Errorf("the redirect was followed (%d requests to its target)", n)
		}
		var se *webhook.StatusError
		if !errors.As(res.Err, &se) || se.Location != target.URL+"/elsewhere" {
			t.Errorf("Err = %v, want a *StatusError naming the Location", res.Err)
		}
	})
	t.Run("304", func(t *testing.T) {
		r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotModified) })
		res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, http.StatusNotModified, webhook.ErrorClassHTTPStatus)
	})
	t.Run("204", func(t *testing.T) {
		r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, http.StatusNoContent, "")
	})
}

func TestSender_Send_Timeout(t *testing.T) {
	release := make(chan struct{})
	hang := func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}
	r := newReceiver(t, hang)
	t.Cleanup(func() { close(release) }) // before r.Close, which waits for handlers

	res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
	checkResult(t, res, 0, webhook.ErrorClassTimeout)
	if res.Duration < testTimeout || res.Duration > testTimeout+time.Second {
		t.Errorf("Duration = %s, want about %s", res.Duration, testTimeout)
	}

	t.Run("body sent slowly", func(t *testing.T) {
		// Headers arrive in time, so the 2xx counts even though the
		// body is cut off by the timeout.
		r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			hang(w, req)
		})
		res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 200, "")
		if got, want := string(res.Body), "partial"; got != want {
			t.Errorf("Body = %q, want %q", got, want)
		}
		if res.Duration > testTimeout+time.Second {
			t.Errorf("Duration = %s: the timeout did not bound the whole attempt", res.Duration)
		}
	})
	t.Run("the caller's deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		res := loopbackSender(webhook.Config{Timeout: time.Minute}).Send(ctx, webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTimeout)
	})
}

func TestSender_Send_ResponseTruncated(t *testing.T) {
	big := strings.Repeat("0123456789", 1000)
	r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, big)
	})
	for _, tt := range []struct{ max, want int }{{0, 4096}, {100, 100}, {20000, len(big)}} {
		res := loopbackSender(webhook.Config{MaxResponseBytes: tt.max}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, http.StatusBadRequest, webhook.ErrorClassHTTPStatus)
		if got := string(res.Body); got != big[:tt.want] {
			t.Errorf("MaxResponseBytes %d: Body has %d bytes, want the first %d", tt.max, len(got), tt.want)
		}
	}
}

func TestSender_Send_ConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := loopbackSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: "http://" + addr + "/", Body: []byte("{}")})
	checkResult(t, res, 0, webhook.ErrorClassConnectionRefused)
}

func TestSender_Send_DNS(t *testing.T) {
	resolver := fakeDNS(t, nil)
	res := loopbackSender(webhook.Config{Resolver: resolver}).Send(context.Background(), webhook.Request{URL: "http://no-such-host.example.test/", Body: []byte("{}")})
	checkResult(t, res, 0, webhook.ErrorClassDNS)
}

func TestSender_Send_TLS(t *testing.T) {
	// Loading the system's roots can take longer than testTimeout, and
	// these attempts fail or succeed without waiting.
	const tlsTimeout = 10 * time.Second
	now := time.Now()
	valid, validPool := selfSigned(t, now.Add(-time.Hour), now.Add(time.Hour), "127.0.0.1")
	expired, expiredPool := selfSigned(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "127.0.0.1")
	other, otherPool := selfSigned(t, now.Add(-time.Hour), now.Add(time.Hour), "hooks.other.example")

	t.Run("valid", func(t *testing.T) {
		r := newTLSReceiver(t, valid, ok)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout, RootCAs: validPool}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 200, "")
	})
	t.Run("self-signed, not trusted", func(t *testing.T) {
		r := newTLSReceiver(t, valid, ok)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTLSUnknownAuthority)
		if n := r.hits.Load(); n != 0 {
			t.Errorf("the receiver got %d requests", n)
		}
	})
	t.Run("signed by another authority", func(t *testing.T) {
		r := newTLSReceiver(t, valid, ok)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout, RootCAs: otherPool}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTLSUnknownAuthority)
	})
	t.Run("expired", func(t *testing.T) {
		r := newTLSReceiver(t, expired, ok)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout, RootCAs: expiredPool}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTLSCertificateExpired)
	})
	t.Run("hostname mismatch", func(t *testing.T) {
		r := newTLSReceiver(t, other, ok)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout, RootCAs: otherPool}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTLSHostnameMismatch)
	})
	t.Run("not TLS", func(t *testing.T) {
		r := newReceiver(t, ok)
		url := strings.Replace(r.URL, "http://", "https://", 1)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout}).Send(context.Background(), webhook.Request{URL: url, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTLSHandshake)
	})
	t.Run("TLS 1.1 only", func(t *testing.T) {
		r := newTLSReceiverConfig(t, &tls.Config{Certificates: []tls.Certificate{valid}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, ok)
		res := loopbackSender(webhook.Config{Timeout: tlsTimeout, RootCAs: validPool}).Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassTLSHandshake)
	})
}

func TestSender_Send_Blocked(t *testing.T) {
	live := newReceiver(t, ok) // a request that got through would succeed
	port := live.port()
	resolver := fakeDNS(t, map[string][]netip.Addr{
		"loopback.example.test": {netip.MustParseAddr("127.0.0.1")},
		"private.example.test":  {netip.MustParseAddr("10.0.0.1")},
		"metadata.example.test": {netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00::1")},
		"mapped.example.test":   {netip.MustParseAddr("::ffff:127.0.0.1")},
	})
	tests := []struct {
		url    string
		reason string
		atDial bool // a name: ValidateURL lets it through, the dialer refuses it
	}{
		{url: "http://127.0.0.1:" + port + "/", reason: "loopback"},
		{url: "http://127.1:" + port + "/", reason: "loopback"},
		{url: "http://0x7f000001:" + port + "/", reason: "loopback"},
		{url: "http://0x7f.1:" + port + "/", reason: "loopback"},
		{url: "http://017700000001:" + port + "/", reason: "loopback"},
		{url: "http://2130706433:" + port + "/", reason: "loopback"},
		{url: "http://127.0.0.1.:" + port + "/", reason: "loopback"},
		{url: "http://localhost:" + port + "/", reason: "loopback"},
		{url: "http://LOCALHOST.:" + port + "/", reason: "loopback"},
		{url: "http://api.localhost:" + port + "/", reason: "loopback"},
		{url: "http://[::1]:" + port + "/", reason: "loopback"},
		{url: "http://[::ffff:127.0.0.1]:" + port + "/", reason: "IPv4-mapped IPv6 form of loopback"},
		{url: "http://[::ffff:7f00:1]:" + port + "/", reason: "IPv4-mapped IPv6 form of loopback"},
		{url: "http://[64:ff9b::7f00:1]/", reason: "NAT64 form of loopback"},
		{url: "http://[2002:a9fe:a9fe::1]/", reason: "6to4 form of link-local"},
		{url: "http://169.254.169.254/latest/meta-data/", reason: "link-local"},
		{url: "http://[fe80::1%25eth0]/", reason: "link-local"},
		{url: "http://10.0.0.1/", reason: "private"},
		{url: "http://172.16.5.4/", reason: "private"},
		{url: "http://192.168.1.1/", reason: "private"},
		{url: "http://100.64.0.1/", reason: "carrier-grade NAT"},
		{url: "http://[fd00::1]/", reason: "unique local"},
		{url: "http://0.0.0.0:" + port + "/", reason: "unspecified"},
		{url: "http://0:" + port + "/", reason: "unspecified"},
		{url: "http://[::]:" + port + "/", reason: "unspecified"},
		{url: "http://224.0.0.1/", reason: "multicast"},
		{url: "http://[ff02::1]/", reason: "multicast"},
		{url: "http://255.255.255.255/", reason: "broadcast"},
		{url: "http://loopback.example.test:" + port + "/", reason: "loopback", atDial: true},
		{url: "http://private.example.test/", reason: "private", atDial: true},
		{url: "http://metadata.example.test/", reason: "", atDial: true},
		{url: "http://mapped.example.test:" + port + "/", reason: "loopback", atDial: true},
	}
	s := webhook.NewSender(webhook.Config{Timeout: testTimeout, Resolver: resolver})
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := webhook.ValidateURL(tt.url, false)
			if tt.atDial {
				if err != nil {
					t.Errorf("ValidateURL = %v, want nil (names are checked when dialled)", err)
				}
			} else {
				if !errors.Is(err, webhook.ErrBlockedAddress) || !errors.Is(err, webhook.ErrInvalidURL) {
					t.Errorf("ValidateURL = %v, want a blocked address", err)
				} else if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("ValidateURL = %q, want the reason %q", err, tt.reason)
				}
			}
			res := s.Send(context.Background(), webhook.Request{URL: tt.url, Body: []byte("{}")})
			checkResult(t, res, 0, webhook.ErrorClassBlockedAddress)
			var be *webhook.BlockedAddressError
			if !errors.As(res.Err, &be) || !strings.Contains(be.Reason, tt.reason) {
				t.Errorf("Err = %v, want a *BlockedAddressError for %q", res.Err, tt.reason)
			}
		})
	}
	if n := live.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the loopback receiver", n)
	}

	// The names resolve: allowed, the same request gets through.
	res := loopbackSender(webhook.Config{Resolver: resolver}).Send(context.Background(), webhook.Request{URL: "http://loopback.example.test:" + port + "/", Body: []byte("{}")})
	checkResult(t, res, 200, "")
}

func TestSender_Send_Allowed(t *testing.T) {
	target := newReceiver(t, ok)
	t.Run("AllowedNets", func(t *testing.T) {
		s := webhook.NewSender(webhook.Config{Timeout: testTimeout, AllowedNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")}})
		res := s.Send(context.Background(), webhook.Request{URL: target.URL, Body: []byte("{}")})
		checkResult(t, res, 200, "")
		res = s.Send(context.Background(), webhook.Request{URL: "http://[::1]:" + target.port(), Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassBlockedAddress)
	})
	t.Run("AllowPrivate does not allow loopback", func(t *testing.T) {
		s := webhook.NewSender(webhook.Config{Timeout: testTimeout, AllowPrivate: true})
		res := s.Send(context.Background(), webhook.Request{URL: target.URL, Body: []byte("{}")})
		checkResult(t, res, 0, webhook.ErrorClassBlockedAddress)
	})
	t.Run("a redirect to loopback from an allowed receiver", func(t *testing.T) {
		inner := newReceiver(t, ok)
		r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, "http://localhost:"+inner.port()+"/admin", http.StatusTemporaryRedirect)
		})
		s := webhook.NewSender(webhook.Config{Timeout: testTimeout, AllowedNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		res := s.Send(context.Background(), webhook.Request{URL: r.URL, Body: []byte("{}")})
		checkResult(t, res, http.StatusTemporaryRedirect, webhook.ErrorClassHTTPStatus)
		if n := inner.hits.Load(); n != 0 {
			t.Errorf("the redirect was followed (%d requests)", n)
		}
	})
}
