package helpdeskflow_test

import (
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

// A fact's endpoint never carries what a URL's user information, query or
// fragment may hold.
func TestWebhookEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@hooks.example.com/in?token=s3cret#x": "https://hooks.example.com/in",
		"http://127.0.0.1:8080":                               "http://127.0.0.1:8080",
		"://nope":                                             "",
	} {
		if got := helpdeskflow.WebhookEndpoint(in); got != want {
			t.Errorf("WebhookEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}
