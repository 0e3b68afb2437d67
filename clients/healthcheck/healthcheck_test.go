package healthcheck_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/healthcheck"
)

// TestGet: a 2xx answer is healthy whatever its body; any other status is
// an error that names the status and not the body; a zero timeout is
// refused before any request.
func TestGet(t *testing.T) {
	requests := make(chan string, 10)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- r.URL.Path
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		w.Write([]byte("postgres at 10.1.2.3 refused")) //nolint:errcheck // a test server
	}))
	defer server.Close()
	ctx := context.Background()
	if status, err := healthcheck.Get(ctx, server.URL+"/readyz", time.Minute); err != nil || status != "204 No Content" {
		t.Errorf("204: %q %v, want healthy", status, err)
	}
	if _, err := healthcheck.Get(ctx, server.URL+"/down", time.Minute); err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("503: %v, want an error naming the status, not the body", err)
	}
	if _, err := healthcheck.Get(ctx, server.URL+"/readyz", 0); err == nil {
		t.Error("a zero timeout was accepted")
	}
	if got := len(requests); got != 2 {
		t.Errorf("%d requests, want 2 (none with a zero timeout)", got)
	}
}
