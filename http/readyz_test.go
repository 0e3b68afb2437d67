package http

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadyz_NamesTheDependencyNotItsError: /readyz on the public port says
// which dependency is down, never its error text (an address, a user name,
// a driver message), which goes to the log.
func TestReadyz_NamesTheDependencyNotItsError(t *testing.T) {
	var log strings.Builder
	s := &Server{cfg: Config{Logger: slog.New(slog.NewTextHandler(&log, nil)), Ready: map[string]Checker{
		"postgres": func(context.Context) error {
			return errors.New("failed to connect to `user=hdf database=prod host=10.1.2.3`: password authentication failed")
		},
		"kafka": func(context.Context) error { return nil },
	}}}
	w := httptest.NewRecorder()
	if err := s.handleReadyz(w, httptest.NewRequest("GET", "/readyz", nil), nil); err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != 503 || !strings.Contains(string(body), `"postgres":"unavailable"`) || !strings.Contains(string(body), `"kafka":"ok"`) {
		t.Errorf("readyz = %d %s, want 503 naming postgres as unavailable", w.Code, body)
	}
	for _, leak := range []string{"10.1.2.3", "user=hdf", "password"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("readyz shows %q: %s", leak, body)
		}
	}
	if !strings.Contains(log.String(), "10.1.2.3") {
		t.Errorf("the error is not in the log: %s", log.String())
	}
}
