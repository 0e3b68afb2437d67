package secretbox_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
)

func ring(t *testing.T, ids ...string) (*secretbox.Keyring, []string) {
	t.Helper()
	var specs []string
	for _, id := range ids {
		s, err := secretbox.NewKey(id)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	k, err := secretbox.ParseKeyring(join(specs))
	if err != nil {
		t.Fatal(err)
	}
	return k, specs
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestKeyring_SealOpenRotate(t *testing.T) {
	old, specs := ring(t, "k1")
	sealed, err := old.Seal([]byte("xoxb-secret"), []byte("ws|conn"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("xoxb-secret")) {
		t.Fatal("plaintext visible in the ciphertext")
	}
	// A new current key still opens what the old one sealed.
	newKey, err := secretbox.NewKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := secretbox.ParseKeyring(newKey + "," + specs[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed, []byte("ws|conn")); err != nil || string(got) != "xoxb-secret" {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
	if rotated.CurrentKeyID() != "k2" {
		t.Errorf("current key %s", rotated.CurrentKeyID())
	}
	// Moved elsewhere (other aad), damaged, or with the key gone: refused.
	if _, err := rotated.Open(sealed, []byte("ws|other")); !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("other aad: %v", err)
	}
	damaged := bytes.Clone(sealed)
	damaged[len(damaged)-1] ^= 1
	if _, err := rotated.Open(damaged, []byte("ws|conn")); !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("damaged: %v", err)
	}
	onlyNew, _ := secretbox.ParseKeyring(newKey)
	if _, err := onlyNew.Open(sealed, []byte("ws|conn")); !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := onlyNew.Open(nil, nil); !errors.Is(err, secretbox.ErrOpen) {
		t.Errorf("empty: %v", err)
	}
}

func TestParseKeyring_Errors(t *testing.T) {
	for _, spec := range []string{"", "k1", "k1:short", "bad id:AAAA", "k1:" + string(bytes.Repeat([]byte("A"), 44)) + ",k1:" + string(bytes.Repeat([]byte("A"), 44))} {
		if _, err := secretbox.ParseKeyring(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}
