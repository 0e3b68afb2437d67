package http

import (
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

// FuzzBearerKey: whatever Authorization headers a client sends, parsing
// never panics, yields either a well-formed key taken from the header or a
// 401 with reason missing or malformed, and never a key the header does not
// hold.
func FuzzBearerKey(f *testing.F) {
	key, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		f.Fatal(err)
	}
	for _, h := range []string{"Bearer " + key, "bearer  " + key + " ", "Basic " + key, "Bearer", "", " ", "Bearer hdf_x", key, "Bearer " + key + " extra"} {
		f.Add(h, "")
	}
	f.Add("Bearer "+key, "Bearer "+key)
	f.Fuzz(func(t *testing.T, first, second string) {
		values := []string{first}
		if second != "" {
			values = append(values, second)
		}
		got, reason, err := bearerKey(values)
		if err != nil {
			if helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized || (reason != "missing" && reason != "malformed") || got != "" {
				t.Fatalf("bearerKey(%q) = %q, %q, %v", values, got, reason, err)
			}
			return
		}
		if !helpdeskflow.ValidAPIKeyFormat(got) || !strings.Contains(first, got) || len(values) != 1 {
			t.Fatalf("bearerKey(%q) accepted %q", values, got)
		}
	})
}
