package webhook_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

// The Standard Webhooks libraries' published test vector (libraries/go
// webhook_test.go TestSign and python tests/test_webhooks.py test_sign_function).
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignStandard_SpecVector(t *testing.T) {
	got := webhook.SignStandard([]string{specSecret}, specMsgID, time.Unix(specTimestamp, 0), []byte(specBody))
	if got != specSignature {
		t.Errorf("SignStandard = %s\nwant           %s", got, specSignature)
	}
	// Sub-second parts are dropped, as the spec's Unix seconds are.
	if got := webhook.SignStandard([]string{specSecret}, specMsgID, time.Unix(specTimestamp, 999_999_999), []byte(specBody)); got != specSignature {
		t.Errorf("SignStandard with nanoseconds = %s", got)
	}
	err := webhook.VerifyStandard(specMsgID, "1614265330", specSignature, []byte(specBody), specSecret, 0, time.Unix(specTimestamp+60, 0))
	if err != nil {
		t.Errorf("VerifyStandard(spec vector) = %v", err)
	}
}

// TestSignStandard_LibraryVerifies: what SignStandard produces for new
// secrets, during a rotation too, verifies with the spec's Go library.
func TestSignStandard_LibraryVerifies(t *testing.T) {
	current, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	previous, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"0190c2a4-5e7b-7c3e-9d1a-3f2b1c4d5e6f","type":"ticket.created","data":{"subject":"Café"}}`)
	now := time.Now()
	header := http.Header{}
	header.Set(webhook.HeaderWebhookID, "0190c2a4-5e7b-7c3e-9d1a-3f2b1c4d5e6f")
	header.Set(webhook.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	header.Set(webhook.HeaderWebhookSignature, webhook.SignStandard([]string{current, previous}, "0190c2a4-5e7b-7c3e-9d1a-3f2b1c4d5e6f", now, body))
	if n := len(strings.Fields(header.Get(webhook.HeaderWebhookSignature))); n != 2 {
		t.Fatalf("webhook-signature has %d entries, want 2: %s", n, header.Get(webhook.HeaderWebhookSignature))
	}
	for _, secret := range []string{current, previous} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatalf("the library refuses the secret %s…: %v", secret[:10], err)
		}
		if err := wh.Verify(body, header); err != nil {
			t.Errorf("library Verify = %v", err)
		}
		if err := wh.Verify(append(body, ' '), header); err == nil {
			t.Error("library Verify of another body = nil")
		}
	}
	other, _ := webhook.NewSecret()
	wh, _ := standardwebhooks.NewWebhook(other)
	if err := wh.Verify(body, header); err == nil {
		t.Error("library Verify with another secret = nil")
	}
}

func TestNewSecret_Standard(t *testing.T) {
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	text, ok := strings.CutPrefix(s, webhook.SecretPrefix)
	if !ok {
		t.Fatalf("NewSecret = %q, want the whsec_ prefix", s)
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(key) != 32 {
		t.Fatalf("NewSecret = %q: not 32 bytes of standard base64 (%v)", s, err)
	}
	if !webhook.IsStandardSecret(s) {
		t.Errorf("IsStandardSecret(%q) = false", s)
	}
}

// TestStandardKey_OldSecrets: secrets issued before were URL-safe base64
// without padding. The libraries refuse them; StandardKey decodes them,
// so their deliveries still carry a signature VerifyStandard checks.
func TestStandardKey_OldSecrets(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(250 - i) // bytes whose base64 has - and _
	}
	old := webhook.SecretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	if webhook.IsStandardSecret(old) {
		t.Fatalf("IsStandardSecret(%q) = true", old)
	}
	if _, err := standardwebhooks.NewWebhook(old); err == nil {
		t.Fatalf("the library accepts %q; the README's advice to rotate would be wrong", old)
	}
	key, err := webhook.StandardKey(old)
	if err != nil || string(key) != string(raw) {
		t.Fatalf("StandardKey(old) = %x, %v; want %x", key, err, raw)
	}
	body := []byte(testBody)
	sig := webhook.SignStandard([]string{old}, "evt", testTime, body)
	if err := webhook.VerifyStandard("evt", "1700000000", sig, body, old, 0, testTime); err != nil {
		t.Errorf("VerifyStandard with an old secret = %v", err)
	}
	if _, err := webhook.StandardKey("whsec_!!"); !errors.Is(err, webhook.ErrSecretNotStandard) {
		t.Errorf("StandardKey(whsec_!!) = %v, want ErrSecretNotStandard", err)
	}
	if got := webhook.SignStandard([]string{"whsec_!!"}, "evt", testTime, body); got != "" {
		t.Errorf("SignStandard without a key = %q, want empty", got)
	}
}

func TestVerifyStandard(t *testing.T) {
	body := []byte(specBody)
	now := time.Unix(specTimestamp+30, 0)
	rotated := webhook.SignStandard([]string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("another key")), specSecret}, specMsgID, time.Unix(specTimestamp, 0), body)
	tests := []struct {
		name                string
		id, ts, sig, secret string
		body                string
		now                 time.Time
		want                error
	}{
		{name: "ok", sig: specSignature},
		{name: "ok: the second of two", sig: rotated},
		{name: "ok: other versions ignored", sig: "v1a,abc " + specSignature},
		{name: "other id", id: "msg_other", sig: specSignature, want: webhook.ErrNoMatchingSignature},
		{name: "other timestamp", ts: "1614265331", sig: specSignature, want: webhook.ErrNoMatchingSignature},
		{name: "other body", body: specBody + "\n", sig: specSignature, want: webhook.ErrNoMatchingSignature},
		{name: "wrong secret", secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("nope")), sig: specSignature, want: webhook.ErrNoMatchingSignature},
		{name: "stale", sig: specSignature, now: time.Unix(specTimestamp+301, 0), want: webhook.ErrStaleTimestamp},
		{name: "future", sig: specSignature, now: time.Unix(specTimestamp-301, 0), want: webhook.ErrStaleTimestamp},
		{name: "no signature", sig: " ", want: webhook.ErrMalformedHeader},
		{name: "no v1", sig: "v2,abc", want: webhook.ErrMalformedHeader},
		{name: "not base64", sig: "v1,%%%", want: webhook.ErrMalformedHeader},
		{name: "timestamp not a number", ts: "soon", sig: specSignature, want: webhook.ErrMalformedHeader},
		{name: "no id", id: " ", sig: specSignature, want: webhook.ErrMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ts, secret, b, at := specMsgID, "1614265330", specSecret, body, now
			if tt.id != "" {
				id = tt.id
			}
			if tt.ts != "" {
				ts = tt.ts
			}
			if tt.secret != "" {
				secret = tt.secret
			}
			if tt.body != "" {
				b = []byte(tt.body)
			}
			if !tt.now.IsZero() {
				at = tt.now
			}
			err := webhook.VerifyStandard(id, ts, tt.sig, b, secret, 0, at)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyStandard = %v, want %v", err, tt.want)
			}
		})
	}
}
