// Package secretbox encrypts secrets at rest (webhook signing secrets,
// integration tokens) with AES-256-GCM under a keyring of named keys. Each
// ciphertext records the id of the key that sealed it, so keys can rotate:
// new secrets are sealed with the current key while older ciphertexts still
// open with theirs. Callers bind a ciphertext to where it belongs with
// additional authenticated data (such as the workspace and record ids), so
// a ciphertext copied to another record fails to open.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// format is the first byte of every ciphertext; a later format can change
// the layout.
const format = 1

// ErrOpen is returned (wrapped) when a ciphertext cannot be opened: an
// unknown key id, a damaged ciphertext, or the wrong additional data.
var ErrOpen = errors.New("secretbox: cannot open ciphertext")

// Keyring holds the keys: the first one seals, all of them open.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// ParseKeyring reads a keyring from "id:base64key[,id:base64key…]", each
// key 32 bytes (standard or URL base64); the first key is the current one.
// Ids are 1 to 32 characters of letters, digits, '-' and '_'.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		id, encoded, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !validID(id) {
			return nil, fmt.Errorf("secretbox: key %d: want id:base64key with an id of 1-32 letters, digits, - or _", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			key, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(encoded, "="))
		}
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("secretbox: key %q: want 32 bytes in base64", id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("secretbox: key id %q appears twice", id)
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		k.aeads[id] = aead
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

// NewKey returns a fresh random key in the form ParseKeyring reads.
func NewKey(id string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return cipher.NewGCM(block)
}

// CurrentKeyID is the id of the key Seal uses.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Seal encrypts plaintext with the current key, bound to aad. The result
// is format byte, key id length, key id, nonce, then the sealed text.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	out := make([]byte, 0, 2+len(k.current)+len(nonce)+len(plaintext)+aead.Overhead())
	out = append(out, format, byte(len(k.current)))
	out = append(out, k.current...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a ciphertext Seal made with any key of the ring and the
// same aad; otherwise it returns an error wrapping ErrOpen.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != format {
		return nil, fmt.Errorf("%w: unknown format", ErrOpen)
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return nil, fmt.Errorf("%w: truncated", ErrOpen)
	}
	id := string(sealed[2 : 2+n])
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not in the keyring", ErrOpen, id)
	}
	rest := sealed[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: truncated", ErrOpen)
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key or additional data, or damaged", ErrOpen)
	}
	return plain, nil
}
