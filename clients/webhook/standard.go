package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com) header names, as
// the spec writes them (HTTP header names are case-insensitive), and the
// header that marks a replayed delivery.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	HeaderReplay           = "X-HDF-Replay"
)

// secretBytes is how many random bytes a new secret encodes.
const secretBytes = 32

// NewSecret returns a new webhook secret as the Standard Webhooks spec
// writes one: SecretPrefix and 32 random bytes in standard base64 (with
// padding), which the spec's libraries accept. It fails only when the
// system's random source does.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ErrSecretNotStandard: a secret's text after SecretPrefix is not base64,
// so no Standard Webhooks key can be derived from it.
var ErrSecretNotStandard = errors.New("webhook: the secret is not whsec_ followed by base64")

// StandardKey returns the HMAC key the Standard Webhooks spec derives from
// secret: the base64-decoded text after SecretPrefix (the prefix is
// optional). Standard base64 is what the spec and its libraries use;
// secrets issued before HelpDeskFlow followed the spec are URL-safe base64
// without padding, which the libraries refuse, and StandardKey decodes
// those as such (so their deliveries carry a webhook-signature that this
// package verifies; their owners rotate to use a library). It returns
// ErrSecretNotStandard for text that is neither, or empty.
func StandardKey(secret string) ([]byte, error) {
	text := strings.TrimPrefix(secret, SecretPrefix)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(text); err == nil && len(key) > 0 {
			return key, nil
		}
	}
	return nil, ErrSecretNotStandard
}

// IsStandardSecret reports whether the Standard Webhooks libraries accept
// secret: SecretPrefix and non-empty standard base64.
func IsStandardSecret(secret string) bool {
	text, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(text)
	return err == nil && len(key) > 0
}

// SignStandard returns the webhook-signature header value for a message
// with id msgID and body sent at t: one "v1,<base64 HMAC-SHA256(key,
// "<msgID>.<unix seconds>.<body>")>" per secret from which StandardKey
// derives a key, in the order given, separated by spaces (the current
// secret first, then a previous one during a rotation). Secrets without a
// key are left out; with none the value is empty.
func SignStandard(secrets []string, msgID string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	for _, s := range secrets {
		key, err := StandardKey(s)
		if err != nil {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(standardMAC(key, msgID, ts, body)))
	}
	return b.String()
}

func standardMAC(key []byte, msgID, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyStandard checks the Standard Webhooks headers of a delivery (the
// values of webhook-id, webhook-timestamp and webhook-signature) against
// the raw body and the webhook's secret. It returns nil when one of the
// signature's v1 entries is the body's and the timestamp is within
// tolerance of now (either way; tolerance <= 0 means DefaultTolerance).
// Otherwise it returns a *VerifyError whose Reason is ErrMalformedHeader
// (a header missing or malformed), ErrNoMatchingSignature (also for a
// secret without a key) or ErrStaleTimestamp, checked in that order.
// Entries of other versions are ignored; signatures are compared in
// constant time.
func VerifyStandard(msgID, timestamp, signature string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	h, err := parseStandard(msgID, timestamp, signature)
	if err != nil {
		return err
	}
	if _, err := StandardKey(secret); err != nil {
		return &VerifyError{Reason: ErrNoMatchingSignature, Detail: "the secret is not whsec_ followed by base64"}
	}
	if h.match(secret, body) == 0 {
		return &VerifyError{Reason: ErrNoMatchingSignature}
	}
	if age := now.Sub(time.Unix(h.unix, 0)); age > tolerance || age < -tolerance {
		return &VerifyError{Reason: ErrStaleTimestamp, Age: age, Tolerance: tolerance}
	}
	return nil
}

// standardHeaders are parsed Standard Webhooks headers.
type standardHeaders struct {
	msgID, ts string // as sent: the signed text uses them verbatim
	unix      int64
	v1        [][]byte
}

func parseStandard(msgID, timestamp, signature string) (standardHeaders, error) {
	h := standardHeaders{msgID: strings.TrimSpace(msgID), ts: strings.TrimSpace(timestamp)}
	signature = strings.TrimSpace(signature)
	switch {
	case h.msgID == "":
		return h, malformed("the %s header is empty", HeaderWebhookID)
	case h.ts == "":
		return h, malformed("the %s header is empty", HeaderWebhookTimestamp)
	case signature == "":
		return h, malformed("the %s header is empty", HeaderWebhookSignature)
	case len(signature) > maxHeaderLen:
		return h, malformed("the %s header is %d bytes long, more than %d", HeaderWebhookSignature, len(signature), maxHeaderLen)
	}
	unix, err := strconv.ParseInt(h.ts, 10, 64)
	if err != nil || unix < 0 || h.ts[0] == '+' {
		return h, malformed("%s %q is not a Unix time in seconds", HeaderWebhookTimestamp, truncate(h.ts, 40))
	}
	h.unix = unix
	for _, entry := range strings.Fields(signature) {
		version, value, ok := strings.Cut(entry, ",")
		if !ok {
			return h, malformed("%s entry %q is not <version>,<base64>", HeaderWebhookSignature, truncate(entry, 40))
		}
		if version != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(value)
		if err != nil || len(sig) != sha256.Size {
			return h, malformed("%s v1 signature %q is not a base64 HMAC-SHA256", HeaderWebhookSignature, truncate(value, 70))
		}
		h.v1 = append(h.v1, sig)
	}
	if len(h.v1) == 0 {
		return h, malformed("the %s header has no v1,<signature>", HeaderWebhookSignature)
	}
	return h, nil
}

// match returns the 1-based index of the v1 signature that body signed
// with secret's key matches, or 0 (also for a secret without a key).
// Every signature is compared, so the time taken does not say which one
// matched.
func (h standardHeaders) match(secret string, body []byte) int {
	key, err := StandardKey(secret)
	if err != nil {
		return 0
	}
	want := standardMAC(key, h.msgID, h.ts, body)
	found := 0
	for i, sig := range h.v1 {
		if hmac.Equal(sig, want) && found == 0 {
			found = i + 1
		}
	}
	return found
}
