package webhook_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

const (
	testSecret = "whsec_test"
	oldSecret  = "whsec_old"
	testBody   = `{"id":"evt_1","type":"ticket.created"}`
)

var testTime = time.Unix(1700000000, 0)

// The expected values were computed outside Go (Python's hmac and hashlib).
func TestSign_Vectors(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		t       time.Time
		body    string
		want    string
	}{
		{"one secret", []string{testSecret}, testTime, testBody,
			"t=1700000000,v1=525c42978d3993e94acf235fc6d62e9b8a661347612aabbf1fe360ad0f631c7d"},
		{"rotation: new then old", []string{testSecret, oldSecret}, testTime, testBody,
			"t=1700000000,v1=525c42978d3993e94acf235fc6d62e9b8a661347612aabbf1fe360ad0f631c7d,v1=ddda13895bc8f8b11894a9134f899fb01d91c33c92fd7a2ad36272befeed631d"},
		{"rotation: the order given", []string{oldSecret, testSecret}, testTime, testBody,
			"t=1700000000,v1=ddda13895bc8f8b11894a9134f899fb01d91c33c92fd7a2ad36272befeed631d,v1=525c42978d3993e94acf235fc6d62e9b8a661347612aabbf1fe360ad0f631c7d"},
		{"empty body", []string{testSecret}, testTime, "",
			"t=1700000000,v1=5967f3c560522fa40cf2876ebc3c3a08551dd6959aaade3b413460591895bdcc"},
		{"non-ASCII body, sub-second time truncated", []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, time.Unix(1714000000, 999999999),
			`{"id":"0190c2a4-5e7b-7c3e-9d1a-3f2b1c4d5e6f","type":"ticket.created","workspace_id":"w","occurred_at":"2024-04-24T23:06:40Z","data":{"subject":"Café <b>"}}`,
			"t=1714000000,v1=36dbbe1d06db827d724642f110cfb37b4d96996b72fc9e52ef4b310f31eaa43b"},
		{"epoch", []string{"k"}, time.Unix(0, 0), "x",
			"t=0,v1=b3a0faba9028a72310b4195217a6ec49b3f98ce83a44c8d88194ce9a6e75b75a"},
		{"no secrets", nil, testTime, testBody, "t=1700000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webhook.Sign(tt.secrets, tt.t, []byte(tt.body)); got != tt.want {
				t.Errorf("Sign = %s\nwant   %s", got, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	body := []byte(testBody)
	signed := webhook.Sign([]string{testSecret}, testTime, body)
	rotated := webhook.Sign([]string{testSecret, oldSecret}, testTime, body)
	sig := strings.TrimPrefix(signed, "t=1700000000,")
	tests := []struct {
		name      string
		header    string
		body      string
		secret    string
		tolerance time.Duration
		now       time.Time
		want      error // nil or a sentinel
		detail    string
	}{
		{name: "ok", header: signed},
		{name: "ok with the new secret during a rotation", header: rotated},
		{name: "ok with the old secret during a rotation", header: rotated, secret: oldSecret},
		{name: "ok at the tolerance in the past", header: signed, now: testTime.Add(webhook.DefaultTolerance)},
		{name: "ok at the tolerance in the future", header: signed, now: testTime.Add(-webhook.DefaultTolerance)},
		{name: "ok with spaces around elements", header: " t=1700000000 , " + sig + " "},
		{name: "ok with an unknown scheme alongside", header: "t=1700000000,v0=abc," + sig},
		{name: "ok with uppercase hex", header: "t=1700000000,v1=" + strings.ToUpper(strings.TrimPrefix(sig, "v1="))},
		{name: "stale", header: signed, now: testTime.Add(webhook.DefaultTolerance + time.Second), want: webhook.ErrStaleTimestamp},
		{name: "in the future", header: signed, now: testTime.Add(-webhook.DefaultTolerance - time.Second), want: webhook.ErrStaleTimestamp},
		{name: "custom tolerance", header: signed, tolerance: time.Minute, now: testTime.Add(61 * time.Second), want: webhook.ErrStaleTimestamp},
		{name: "wrong secret", header: signed, secret: "whsec_other", want: webhook.ErrNoMatchingSignature},
		{name: "empty secret", header: signed, secret: "-", want: webhook.ErrNoMatchingSignature, detail: "empty"},
		{name: "changed body", header: signed, body: testBody + "\n", want: webhook.ErrNoMatchingSignature},
		{name: "other timestamp", header: strings.Replace(signed, "t=1700000000", "t=1700000001", 1), now: testTime, want: webhook.ErrNoMatchingSignature},
		{name: "stale and wrong: the signature is reported", header: signed, secret: "whsec_other", now: testTime.Add(time.Hour), want: webhook.ErrNoMatchingSignature},
		{name: "empty", header: "", want: webhook.ErrMalformedHeader, detail: "empty"},
		{name: "no t", header: sig, want: webhook.ErrMalformedHeader, detail: "no t="},
		{name: "no v1", header: "t=1700000000", want: webhook.ErrMalformedHeader, detail: "no v1"},
		{name: "t not a number", header: "t=yesterday," + sig, want: webhook.ErrMalformedHeader, detail: "not a Unix time"},
		{name: "t negative", header: "t=-1," + sig, want: webhook.ErrMalformedHeader, detail: "not a Unix time"},
		{name: "t in milliseconds", header: "t=1700000000000," + sig, want: webhook.ErrMalformedHeader, detail: "milliseconds"},
		{name: "t twice", header: "t=1700000000,t=1700000000," + sig, want: webhook.ErrMalformedHeader, detail: "more than once"},
		{name: "v1 short", header: signed[:len(signed)-2], want: webhook.ErrMalformedHeader, detail: "not 64 hex digits"},
		{name: "v1 not hex", header: "t=1700000000,v1=" + strings.Repeat("zz", 32), want: webhook.ErrMalformedHeader, detail: "not 64 hex digits"},
		{name: "semicolon for comma", header: "t=1700000000;" + sig, want: webhook.ErrMalformedHeader, detail: "not a Unix time"},
		{name: "element without =", header: "t=1700000000,garbage," + sig, want: webhook.ErrMalformedHeader, detail: `element 2 ("garbage") is not key=value`},
		{name: "header name included", header: "X-HDF-Signature: " + signed, want: webhook.ErrMalformedHeader, detail: "header name"},
		{name: "huge", header: signed + strings.Repeat(",v1=00", 1000), want: webhook.ErrMalformedHeader, detail: "bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body
			if tt.body != "" {
				b = []byte(tt.body)
			}
			secret := tt.secret
			switch secret {
			case "":
				secret = testSecret
			case "-":
				secret = ""
			}
			now := tt.now
			if now.IsZero() {
				now = testTime.Add(30 * time.Second)
			}
			err := webhook.Verify(tt.header, b, secret, tt.tolerance, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want errors.Is %v", err, tt.want)
			}
			var ve *webhook.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %T, want *VerifyError", err)
			}
			if !strings.Contains(ve.Detail, tt.detail) {
				t.Errorf("Detail = %q, want it to contain %q", ve.Detail, tt.detail)
			}
			for _, other := range []error{webhook.ErrMalformedHeader, webhook.ErrStaleTimestamp, webhook.ErrNoMatchingSignature} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("Verify = %v is also %v", err, other)
				}
			}
		})
	}
}

func TestVerify_StaleSaysHowOld(t *testing.T) {
	body := []byte(testBody)
	signed := webhook.Sign([]string{testSecret}, testTime, body)
	err := webhook.Verify(signed, body, testSecret, 0, testTime.Add(2*time.Hour+3*time.Minute))
	var ve *webhook.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Verify = %v, want *VerifyError", err)
	}
	if got, want := ve.Age, 2*time.Hour+3*time.Minute; got != want {
		t.Errorf("Age = %s, want %s", got, want)
	}
	if got, want := ve.Tolerance, webhook.DefaultTolerance; got != want {
		t.Errorf("Tolerance = %s, want %s", got, want)
	}
	if got, want := err.Error(), "signed 2h3m ago, tolerance 5m0s"; !strings.Contains(got, want) {
		t.Errorf("Error() = %q, want it to contain %q", got, want)
	}
	err = webhook.Verify(signed, body, testSecret, 0, testTime.Add(-10*time.Minute))
	if got, want := err.Error(), "signed 10m in the future, tolerance 5m0s"; !strings.Contains(got, want) {
		t.Errorf("Error() = %q, want it to contain %q", got, want)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1700000000,v1=525c42978d3993e94acf235fc6d62e9b8a661347612aabbf1fe360ad0f631c7d", []byte(testBody), testSecret, int64(1700000000))
	f.Add("t=,v1=", []byte{}, "", int64(0))
	f.Add("t=1,t=2,v1=zz,,=,v1", []byte("\xef\xbb\xbf{\"a\":1}\r\n"), " whsec_x\n", int64(-5))
	f.Add("X-HDF-Signature: t=9223372036854775807,v1=00", []byte("[1,2"), "s", int64(9223372036))
	f.Fuzz(func(t *testing.T, header string, body []byte, secret string, unix int64) {
		unix %= 1 << 40 // a time.Time can hold it
		now := time.Unix(unix, 0)
		if err := webhook.Verify(header, body, secret, 0, now); err != nil {
			var ve *webhook.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify returned %T, want *VerifyError", err)
			}
		}
		_ = webhook.Diagnose(header, body, secret, 0, now).String()

		if secret == "" || unix < 0 {
			return
		}
		h := webhook.Sign([]string{secret, secret + "old"}, now, body)
		if !strings.HasPrefix(h, "t="+strconv.FormatInt(unix, 10)+",v1=") {
			t.Fatalf("Sign = %q", h)
		}
		if unix <= 1e11 {
			if err := webhook.Verify(h, body, secret, 0, now.Add(time.Minute)); err != nil {
				t.Fatalf("Verify(Sign) = %v", err)
			}
			if err := webhook.Verify(h, body, secret+"old", 0, now); err != nil {
				t.Fatalf("Verify(Sign) with the second secret = %v", err)
			}
			if d := webhook.Diagnose(h, body, secret, 0, now); !d.OK() {
				t.Fatalf("Diagnose(Sign) = %s", d)
			}
			if err := webhook.Verify(h, append(body, 'x'), secret, 0, now); !errors.Is(err, webhook.ErrNoMatchingSignature) {
				t.Fatalf("Verify(Sign) of another body = %v", err)
			}
		}
	})
}
