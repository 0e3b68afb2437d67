package oauth_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
)

func TestStateSigner_Sign(t *testing.T) {
	signer := oauth.NewStateSigner(stateKey)
	want := oauth.State{
		WorkspaceID: uuid.New(), ConnectionID: uuid.New(), Provider: "shopify",
		Verifier: oauth.NewVerifier(), Shop: "acme.myshopify.com",
		ExpiresAt: time.Now().Add(time.Minute).Truncate(time.Second).UTC(),
	}
	token, err := signer.Sign(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := signer.Verify(token, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Verify = %+v, want %+v", got, want)
	}
	if err := got.Check("shopify", want.WorkspaceID); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := got.Check("shopify", uuid.Nil); err != nil {
		t.Errorf("Check without workspace: %v", err)
	}

	t.Run("opaque", func(t *testing.T) {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			t.Fatalf("token %q is not base64url: %v", token, err)
		}
		for _, secret := range []string{want.Verifier, want.WorkspaceID.String(), want.Shop, "shopify"} {
			if strings.Contains(token, secret) || strings.Contains(string(raw), secret) {
				t.Errorf("token shows %q", secret)
			}
		}
		again, _ := signer.Sign(want)
		if again == token {
			t.Error("two signatures of one state are equal")
		}
	})
	t.Run("default lifetime", func(t *testing.T) {
		st := want
		st.ExpiresAt = time.Time{}
		token, err := signer.Sign(st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := signer.Verify(token, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(got.ExpiresAt); d < oauth.StateLifetime-time.Minute || d > oauth.StateLifetime {
			t.Errorf("expires in %v, want about %v", d, oauth.StateLifetime)
		}
		if _, err := signer.Verify(token, time.Now().Add(oauth.StateLifetime+time.Second)); !errors.Is(err, oauth.ErrStateExpired) {
			t.Errorf("after the lifetime: %v, want ErrStateExpired", err)
		}
	})
	t.Run("incomplete", func(t *testing.T) {
		if _, err := signer.Sign(oauth.State{Provider: "google"}); !errors.Is(err, oauth.ErrStateKey) {
			t.Errorf("without workspace: %v", err)
		}
		if _, err := signer.Sign(oauth.State{WorkspaceID: uuid.New()}); !errors.Is(err, oauth.ErrStateKey) {
			t.Errorf("without provider: %v", err)
		}
	})
}

func TestStateSigner_Verify(t *testing.T) {
	signer := oauth.NewStateSigner(stateKey)
	ws := uuid.New()
	now := time.Now()
	st := oauth.State{WorkspaceID: ws, Provider: "google", Verifier: "v", ExpiresAt: now.Add(time.Minute)}
	token, err := signer.Sign(st)
	if err != nil {
		t.Fatal(err)
	}

	flip := func(i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(token)
		raw[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	otherKey, err := oauth.NewStateSigner([]byte("another key, also long enough!!!")).Sign(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		now         time.Time
		want        error
	}{
		{"ErrStateInvalid/tampered ciphertext", flip(20), now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/tampered nonce", flip(3), now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/tampered tag", flip(len(token)*3/4 - 2), now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/format", flip(0), now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/truncated", token[:len(token)-4], now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/other key", otherKey, now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/garbage", "not-a-state", now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/empty", "", now, oauth.ErrStateInvalid},
		{"ErrStateInvalid/huge", strings.Repeat("A", 5000), now, oauth.ErrStateInvalid},
		{"ErrStateExpired/at expiry", token, st.ExpiresAt.Add(time.Second), oauth.ErrStateExpired},
		{"ErrStateExpired/later", token, now.Add(time.Hour), oauth.ErrStateExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signer.Verify(tc.token, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", got, err, tc.want)
			}
			if code := helpdeskflow.ErrorCode(err); code != helpdeskflow.EValidation {
				t.Errorf("code %q, want %q", code, helpdeskflow.EValidation)
			}
		})
	}
	// The distinct errors stay distinct.
	if _, err := signer.Verify(flip(20), now); errors.Is(err, oauth.ErrStateExpired) {
		t.Error("tampered state reported as expired")
	}

	got, err := signer.Verify(token, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ErrStateWrongProvider", func(t *testing.T) {
		if err := got.Check("slack", ws); !errors.Is(err, oauth.ErrStateWrongProvider) {
			t.Errorf("Check = %v", err)
		}
	})
	t.Run("ErrStateWrongWorkspace", func(t *testing.T) {
		err := got.Check("google", uuid.New())
		if !errors.Is(err, oauth.ErrStateWrongWorkspace) {
			t.Errorf("Check = %v", err)
		}
		if errors.Is(err, oauth.ErrStateWrongProvider) {
			t.Error("wrong workspace reported as wrong provider")
		}
	})
}

func TestNewStateSigner_ShortKey(t *testing.T) {
	signer := oauth.NewStateSigner([]byte("short"))
	if _, err := signer.Sign(oauth.State{WorkspaceID: uuid.New(), Provider: "google"}); !errors.Is(err, oauth.ErrStateKey) {
		t.Errorf("Sign = %v, want ErrStateKey", err)
	}
	if _, err := signer.Verify("x", time.Now()); !errors.Is(err, oauth.ErrStateKey) {
		t.Errorf("Verify = %v, want ErrStateKey", err)
	}
}
