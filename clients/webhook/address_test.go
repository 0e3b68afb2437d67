package webhook_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

func TestValidateURL(t *testing.T) {
	long := "https://hooks.example.com/" + strings.Repeat("a", webhook.MaxURLLength)
	tests := []struct {
		raw     string
		want    error // nil, webhook.ErrInvalidURL or webhook.ErrBlockedAddress
		problem string
	}{
		{raw: "https://hooks.example.com/helpdeskflow?token=abc"},
		{raw: "http://hooks.example.com:8080/x"},
		{raw: "HTTPS://Hooks.Example.COM/"},
		{raw: "https://8.8.8.8/hook"},
		{raw: "https://[2606:4700:4700::1111]/hook"},
		{raw: "https://xn--bcher-kva.example/"},
		{raw: "https://bücher.example/"},
		{raw: "https://my_host.example.com/"},
		{raw: "https://1e100.net/"},
		{raw: long[:webhook.MaxURLLength]},
		{raw: long, want: webhook.ErrInvalidURL, problem: "more than 2048"},
		{raw: "", want: webhook.ErrInvalidURL, problem: "empty"},
		{raw: "ftp://files.example.com/hook", want: webhook.ErrInvalidURL, problem: "must be https or http, not ftp"},
		{raw: "file:///etc/passwd", want: webhook.ErrInvalidURL, problem: "must be https or http, not file"},
		{raw: "gopher://example.com/", want: webhook.ErrInvalidURL, problem: "not gopher"},
		{raw: "/hooks/helpdeskflow", want: webhook.ErrInvalidURL, problem: "absolute"},
		{raw: "hooks.example.com/x", want: webhook.ErrInvalidURL, problem: "absolute"},
		{raw: "https://", want: webhook.ErrInvalidURL, problem: "no host"},
		{raw: "https:///path", want: webhook.ErrInvalidURL, problem: "no host"},
		{raw: "https:hooks.example.com", want: webhook.ErrInvalidURL, problem: "no host"},
		{raw: "https://:443/", want: webhook.ErrInvalidURL, problem: "no host"},
		{raw: "https://user:secret@hooks.example.com/", want: webhook.ErrInvalidURL, problem: "user name or password"},
		{raw: "https://user@hooks.example.com/", want: webhook.ErrInvalidURL, problem: "user name or password"},
		{raw: "https://hooks.example.com:0/", want: webhook.ErrInvalidURL, problem: "port"},
		{raw: "https://hooks.example.com:70000/", want: webhook.ErrInvalidURL, problem: "port"},
		{raw: "https://hooks example.com/", want: webhook.ErrInvalidURL, problem: "not a valid URL"},
		{raw: "https://hooks.exa*mple.com/", want: webhook.ErrInvalidURL, problem: "characters not allowed"},
		{raw: "http://256.1.1.1/", want: webhook.ErrInvalidURL, problem: "not a valid one"},
		{raw: "http://1.2.3.4.5/", want: webhook.ErrInvalidURL, problem: "not a valid one"},
		{raw: "http://08.8.8.8/", want: webhook.ErrInvalidURL, problem: "not a valid one"},
		{raw: "http://hooks.123/", want: webhook.ErrInvalidURL, problem: "not a valid one"},
		{raw: "http://0x08080808/", want: webhook.ErrInvalidURL, problem: "IPv4 address 8.8.8.8 written in a non-standard form"},
		{raw: "http://134744072/", want: webhook.ErrInvalidURL, problem: "IPv4 address 8.8.8.8 written in a non-standard form"},
		{raw: "http://8.8.8.8./", want: webhook.ErrInvalidURL, problem: "non-standard form"},
		{raw: "http://127.0.0.1/", want: webhook.ErrBlockedAddress, problem: "the host 127.0.0.1 is a loopback address; webhooks may not target it"},
		{raw: "http://127.1/", want: webhook.ErrBlockedAddress, problem: "the host 127.1 is a loopback address 127.0.0.1"},
		{raw: "http://0x7f000001/", want: webhook.ErrBlockedAddress, problem: "loopback address 127.0.0.1"},
		{raw: "http://2130706433/", want: webhook.ErrBlockedAddress, problem: "loopback address 127.0.0.1"},
		{raw: "http://[::ffff:127.0.0.1]/", want: webhook.ErrBlockedAddress, problem: "an IPv4-mapped IPv6 form of loopback address"},
		{raw: "http://[::127.0.0.1]/", want: webhook.ErrBlockedAddress, problem: "IPv4-compatible IPv6 form of loopback"},
		{raw: "http://localhost/", want: webhook.ErrBlockedAddress, problem: "the host localhost is a loopback name"},
		{raw: "http://169.254.169.254/", want: webhook.ErrBlockedAddress, problem: "link-local"},
		{raw: "http://10.1.2.3/", want: webhook.ErrBlockedAddress, problem: "a private address"},
		{raw: "http://100.100.100.200/", want: webhook.ErrBlockedAddress, problem: "carrier-grade NAT"},
		{raw: "http://[fc00::5]/", want: webhook.ErrBlockedAddress, problem: "unique local"},
		{raw: "http://0.0.0.0/", want: webhook.ErrBlockedAddress, problem: "unspecified"},
		{raw: "http://0.1.2.3/", want: webhook.ErrBlockedAddress, problem: `"this network"`},
		{raw: "http://240.0.0.1/", want: webhook.ErrBlockedAddress, problem: "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			err := webhook.ValidateURL(tt.raw, false)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateURL = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, webhook.ErrInvalidURL) {
				t.Fatalf("ValidateURL = %v, want errors.Is %v", err, tt.want)
			}
			if tt.want == webhook.ErrInvalidURL && errors.Is(err, webhook.ErrBlockedAddress) {
				t.Errorf("ValidateURL = %v is a blocked address", err)
			}
			if !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("ValidateURL = %q, want it to contain %q", err, tt.problem)
			}
			var ue *webhook.URLError
			if !errors.As(err, &ue) || ue.URL != tt.raw {
				t.Errorf("ValidateURL = %#v, want a *URLError for the URL", err)
			}
			// Send refuses it the same way, without a connection.
			res := webhook.NewSender(webhook.Config{}).Send(context.Background(), webhook.Request{URL: tt.raw})
			want := webhook.ErrorClassInvalidURL
			if tt.want == webhook.ErrBlockedAddress {
				want = webhook.ErrorClassBlockedAddress
			}
			if res.ErrorClass != want {
				t.Errorf("Send: ErrorClass = %q (%v), want %q", res.ErrorClass, res.Err, want)
			}
		})
	}
}

func TestValidateURL_Allowed(t *testing.T) {
	tests := []struct {
		cfg     webhook.Config
		allowed []string
		blocked []string
	}{
		{
			cfg:     webhook.Config{AllowLoopback: true},
			allowed: []string{"http://127.0.0.1:8080/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://localhost:3000/", "http://127.5.6.7/"},
			blocked: []string{"http://10.0.0.1/", "http://169.254.169.254/", "http://0.0.0.0/", "http://127.1/", "http://[fd00::1]/"},
		},
		{
			cfg:     webhook.Config{AllowPrivate: true},
			allowed: []string{"http://10.0.0.1/", "http://172.31.255.255/", "http://192.168.0.10/", "http://100.64.0.1/", "http://[fd12:3456::1]/", "http://[::ffff:10.0.0.1]/"},
			blocked: []string{"http://127.0.0.1/", "http://169.254.169.254/", "http://[fe80::1]/", "http://localhost/"},
		},
		{
			cfg:     webhook.Config{AllowedNets: []netip.Prefix{netip.MustParsePrefix("169.254.10.0/24"), netip.MustParsePrefix("10.20.0.0/16")}},
			allowed: []string{"http://169.254.10.5/", "http://10.20.3.4/", "http://[::ffff:10.20.3.4]/"},
			blocked: []string{"http://169.254.169.254/", "http://10.21.0.1/", "http://127.0.0.1/"},
		},
	}
	for _, tt := range tests {
		for _, raw := range tt.allowed {
			if err := tt.cfg.ValidateURL(raw); err != nil {
				t.Errorf("%+v: ValidateURL(%s) = %v, want nil", tt.cfg, raw, err)
			}
		}
		for _, raw := range tt.blocked {
			if err := tt.cfg.ValidateURL(raw); err == nil {
				t.Errorf("%+v: ValidateURL(%s) = nil, want an error", tt.cfg, raw)
			}
		}
	}
	if err := webhook.ValidateURL("http://127.0.0.1:8080/hook", true); err != nil {
		t.Errorf("ValidateURL(loopback, true) = %v", err)
	}
	if err := webhook.ValidateURL("http://192.168.1.1/hook", true); !errors.Is(err, webhook.ErrBlockedAddress) {
		t.Errorf("ValidateURL(private, allowLoopback true) = %v, want a blocked address", err)
	}
}
