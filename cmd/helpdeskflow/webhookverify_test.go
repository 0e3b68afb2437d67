package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

func TestRunWebhookVerify(t *testing.T) {
	const secret = "whsec_cli_test"
	body := `{"id":"evt_1","type":"ticket.created","data":{"subject":"Refund"}}`
	signedAt := time.Unix(1714000000, 0)
	header := webhook.Sign([]string{secret}, signedAt, []byte(body))
	at := func(d time.Duration) string { return strconv.FormatInt(signedAt.Add(d).Unix(), 10) }

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const stdSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	stdSig := webhook.SignStandard([]string{stdSecret}, "evt_1", signedAt, []byte(body))
	stdHDF := webhook.Sign([]string{stdSecret}, signedAt, []byte(body))
	std := []string{"--header", "webhook-id: evt_1", "--header", "Webhook-Timestamp: " + at(0), "--header", "webhook-signature: " + stdSig}
	exact := file("exact.json", body)
	withNewline := file("newline.json", body+"\n")

	tests := []struct {
		name  string
		args  []string
		first string // the first line printed
		fails bool
	}{
		{"ok", []string{"verify", "--secret", secret, "--header", header, "--body-file", exact, "--now", at(10 * time.Second)},
			"signature OK", false},
		{"ok with the header name", []string{"verify", "--secret", secret, "--header", "X-HDF-Signature: " + header, "--body-file", exact, "--now", at(0)},
			"signature OK", false},
		{"ok with single-dash flags and = values", []string{"verify", "-secret=" + secret, "-header=" + header, "-body-file=" + exact, "-now=" + at(0)},
			"signature OK", false},
		{"ok during a rotation with the old secret", []string{"verify", "--secret", secret, "--header", webhook.Sign([]string{"whsec_new", secret}, signedAt, []byte(body)), "--body-file", exact, "--now", at(0)},
			"signature OK", false},
		{"stale", []string{"verify", "--secret", secret, "--header", header, "--body-file", exact, "--now", at(2*time.Hour + 3*time.Minute)},
			"stale timestamp: signed 2h3m ago, tolerance 5m0s", true},
		{"a longer tolerance", []string{"verify", "--secret", secret, "--header", header, "--body-file", exact, "--now", at(2 * time.Hour), "--tolerance", "3h"},
			"signature OK", false},
		{"body changed", []string{"verify", "--secret", secret, "--header", header, "--body-file", withNewline, "--now", at(0)},
			"body changed: a trailing newline was added", true},
		{"wrong secret", []string{"verify", "--secret", "whsec_other", "--header", header, "--body-file", exact, "--now", at(0)},
			"wrong secret: the secret does not match, or the body was changed in a way not recognised", true},
		{"secret without its prefix", []string{"verify", "--secret", "cli_test", "--header", header, "--body-file", exact, "--now", at(0)},
			"wrong secret: the signature matches once you add the whsec_ prefix to the secret (it is part of the key)", true},
		{"malformed", []string{"verify", "--secret", secret, "--header", "v1=abc", "--body-file", exact, "--now", at(0)},
			"malformed header: v1 signature 1 is not 64 hex digits (3 characters: \"abc\")", true},
		{"flags without the subcommand", []string{"--secret", secret, "--header", header, "--body-file", exact, "--now", at(0)},
			"signature OK", false},
		{"Standard Webhooks headers", append([]string{"verify", "--secret", stdSecret, "--body-file", exact, "--now", at(0)}, std...),
			"signature OK", false},
		{"Standard Webhooks headers, body changed", append([]string{"verify", "--secret", stdSecret, "--body-file", withNewline, "--now", at(0)}, std...),
			"body changed: a trailing newline was added", true},
		{"Standard Webhooks headers, stale", append([]string{"verify", "--secret", stdSecret, "--body-file", exact, "--now", at(time.Hour)}, std...),
			"stale timestamp: signed 1h ago, tolerance 5m0s", true},
		{"Standard Webhooks headers without webhook-id", []string{"verify", "--secret", stdSecret, "--body-file", exact, "--now", at(0),
			"--header", "webhook-timestamp: " + at(0), "--header", "webhook-signature: " + stdSig},
			"malformed header: the webhook-id header is empty", true},
		{"both schemes: each is checked", append([]string{"verify", "--secret", stdSecret, "--body-file", exact, "--now", at(0), "--header", stdHDF}, std...),
			"X-HDF-Signature: signature OK", false},
		{"an unknown header name", []string{"verify", "--secret", secret, "--header", "X-Other: 1", "--body-file", exact}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runWebhookVerify(tt.args, &stdout, &stderr)
			if got, want := err != nil, tt.fails; got != want {
				t.Errorf("runWebhookVerify = %v, want an error: %t\n%s%s", err, want, stdout.String(), stderr.String())
			}
			first, _, _ := strings.Cut(stdout.String(), "\n")
			if first != tt.first {
				t.Errorf("printed %q\nwant     %q", first, tt.first)
			}
		})
	}
}

func TestRunWebhookVerify_StdinAndEnvironment(t *testing.T) {
	const secret = "whsec_from_env"
	body := "{\"id\":\"evt_2\"}"
	now := time.Now()
	header := webhook.Sign([]string{secret}, now, []byte(body))
	getenv := func(k string) string {
		if k == "HDF_WEBHOOK_SECRET" {
			return secret
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := webhookVerify([]string{"verify", "--header", header, "--body-file", "-"}, strings.NewReader(body), getenv, &stdout, &stderr)
	if err != nil || !strings.HasPrefix(stdout.String(), "signature OK\n") {
		t.Fatalf("webhookVerify = %v\n%s%s", err, stdout.String(), stderr.String())
	}

	stdout.Reset()
	err = webhookVerify([]string{"verify", "--header", header, "--body-file", "-"}, strings.NewReader(body+"\r\n"), getenv, &stdout, &stderr)
	if err == nil || !strings.HasPrefix(stdout.String(), "body changed: a trailing newline was added\n") {
		t.Fatalf("webhookVerify = %v\n%s", err, stdout.String())
	}
}

func TestRunWebhookVerify_Usage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // in the error
	}{
		{"nothing", nil, []string{"usage: helpdeskflow webhook verify"}},
		{"unknown command", []string{"sign"}, []string{`unknown webhook command "sign"`}},
		{"no flags", []string{"verify"}, []string{"--secret is required", "--header is required", "--body-file is required"}},
		{"bad tolerance", []string{"verify", "--secret", "s", "--header", "t=1,v1=00", "--body-file", "x", "--tolerance", "-1m"}, []string{"--tolerance must be positive"}},
		{"missing file", []string{"verify", "--secret", "s", "--header", "t=1,v1=00", "--body-file", filepath.Join(t.TempDir(), "nope")}, []string{"read the body"}},
		{"stray argument", []string{"verify", "--secret", "s", "--header", "t=1", "--body-file", "x", "extra"}, []string{`unexpected arguments ["extra"]`}},
		{"unknown flag", []string{"verify", "--signature", "x"}, []string{"flag provided but not defined: -signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := webhookVerify(tt.args, strings.NewReader(""), func(string) string { return "" }, &stdout, &stderr)
			if err == nil {
				t.Fatalf("webhookVerify(%q) = nil", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
