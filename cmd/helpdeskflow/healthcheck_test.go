package main

import (
	"bytes"
	"context"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHealthcheck: `helpdeskflow healthcheck` succeeds on a 2xx answer
// and fails on any other status, an unreachable address, an answer slower
// than --timeout, and bad flags; by default it asks /readyz on
// HDF_HTTP_ADDR, an unspecified host read as loopback.
func TestHealthcheck(t *testing.T) {
	var status atomic.Int32 // what the server answers
	var lastPath atomic.Value
	status.Store(nethttp.StatusOK)
	release := make(chan struct{})
	server := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		lastPath.Store(r.URL.Path)
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(`{"ready":false,"checks":{"postgres":"unavailable"}} secret-looking text`))
	}))
	defer server.Close()
	defer close(release)
	_, port, _ := net.SplitHostPort(server.Listener.Addr().String())
	closed := httptest.NewServer(nethttp.NotFoundHandler())
	closed.Close()

	healthcheck := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"healthcheck"}, args...), &out, &out)
		return out.String(), err
	}
	if out, err := healthcheck("--url", server.URL+"/readyz"); err != nil || !strings.Contains(out, "200 OK") {
		t.Errorf("200: %v %q, want success", err, out)
	}
	t.Setenv("HDF_HTTP_ADDR", ":"+port)
	if _, err := healthcheck(); err != nil || lastPath.Load() != "/readyz" {
		t.Errorf("default URL on HDF_HTTP_ADDR=:%s: %v, asked %v; want success on /readyz", port, err, lastPath.Load())
	}
	t.Setenv("HDF_HTTP_ADDR", "0.0.0.0:"+port)
	if _, err := healthcheck(); err != nil {
		t.Errorf("default URL on HDF_HTTP_ADDR=0.0.0.0:%s: %v, want success", port, err)
	}

	status.Store(nethttp.StatusServiceUnavailable)
	_, err := healthcheck()
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), "secret-looking") {
		t.Errorf("503: %v, want an error naming the status and not the body", err)
	}
	status.Store(nethttp.StatusOK)
	for _, args := range [][]string{
		{"--url", closed.URL + "/readyz"},
		{"--url", server.URL + "/slow", "--timeout", "50ms"},
		{"--url", "::not a url"},
		{"--timeout", "0s"},
		{"--frobnicate"},
		{"extra"},
	} {
		if _, err := healthcheck(args...); err == nil {
			t.Errorf("healthcheck %v succeeded, want an error", args)
		}
	}
	t.Setenv("HDF_HTTP_ADDR", "no-port")
	if _, err := healthcheck(); err == nil || !strings.Contains(err.Error(), "HDF_HTTP_ADDR") {
		t.Errorf("HDF_HTTP_ADDR without a port: %v, want an error naming it", err)
	}
}
