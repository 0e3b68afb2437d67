package profilelookup

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"2.0", 2 * time.Second},
		{" 1.5 ", 1500 * time.Millisecond},
		{"0", 0},
		{"-3", 0},
		{"NaN", 0},
		{"soon", 0},
		{"99999999", maxRetryAfter},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{`<https://a.myshopify.com/x?page_info=p1>; rel="next"`, "https://a.myshopify.com/x?page_info=p1"},
		{`<https://a/x?page_info=p0&fields=id,email>; rel="previous", <https://a/x?page_info=p2&fields=id,email>; rel="next"`, "https://a/x?page_info=p2&fields=id,email"},
		{`<https://a/x?page_info=p0>; rel="previous"`, ""},
		{`<https://a/x?p=1>; rel=next`, "https://a/x?p=1"},
		{`<https://a/x?p=1>; title="a, b"; rel="prev next"`, "https://a/x?p=1"},
		{`<broken`, ""},
	}
	for _, tt := range tests {
		if got := nextLink(tt.in); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestShopName(t *testing.T) {
	for in, want := range map[string]string{
		"acme":                          "acme",
		" ACME ":                        "acme",
		"acme.myshopify.com":            "acme",
		"https://acme-2.myshopify.com/": "acme-2",
		"evil.com":                      "",
		"acme.myshopify.com.evil.com":   "",
		"a/b":                           "",
		"":                              "",
		"-x":                            "",
		"a@b":                           "",
	} {
		got, err := shopName(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("shopName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := escapeStripeQuery(`o'b\r`); got != `o\'b\\r` {
		t.Errorf("escapeStripeQuery = %s", got)
	}
	if got := escapeShopifyQuery(`"o"b\`); got != `\"o\"b\\` {
		t.Errorf("escapeShopifyQuery = %s", got)
	}
}

// TestNew_EveryRequestHasATimeout: without a client timeout of the
// caller's, a provider that never answers would hold a lookup forever.
func TestNew_EveryRequestHasATimeout(t *testing.T) {
	for name, tc := range map[string]struct {
		client *http.Client
		want   time.Duration
	}{
		"nil client":                {nil, DefaultTimeout},
		"client without a timeout":  {&http.Client{}, DefaultTimeout},
		"client with its own limit": {&http.Client{Timeout: time.Second}, time.Second},
	} {
		if got := New(tc.client).hc.Timeout; got != tc.want {
			t.Errorf("%s: timeout %v, want %v", name, got, tc.want)
		}
	}
}
