package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// StateLifetime is how long a state (and so an authorization attempt) is
// valid when State.ExpiresAt is not set.
const StateLifetime = 10 * time.Minute

// MinStateKeyLen is the shortest key NewStateSigner accepts.
const MinStateKeyLen = 16

// State is what the state parameter carries through the provider and back to
// the callback: who started the authorization, for which provider (and
// shop), and the PKCE verifier, which so never leaves the server in the
// clear.
type State struct {
	WorkspaceID  uuid.UUID
	ConnectionID uuid.UUID
	Provider     string
	// Verifier is the PKCE code verifier ("" without PKCE).
	Verifier string
	// Shop is the Shopify shop domain ("" for other providers).
	Shop string
	// Data is what the start of a connection hands to its callback
	// besides the above (Slack's channels), opaque here; short, as the
	// state rides in a URL. Sealed like the rest: nobody without the key
	// reads or changes it.
	Data string
	// ExpiresAt is when the state stops verifying, to the second.
	ExpiresAt time.Time
}

// State errors. Verify and Check return them wrapped in a
// *helpdeskflow.Error with code EValidation, except ErrStateKey (EInternal);
// test for them with errors.Is.
var (
	// ErrStateInvalid: not a state this signer made — forged, tampered
	// with, truncated, or made with another key.
	ErrStateInvalid = errors.New("oauth: invalid state")
	// ErrStateExpired: a genuine state past its ExpiresAt.
	ErrStateExpired = errors.New("oauth: state expired")
	// ErrStateWrongProvider: a genuine state for another provider.
	ErrStateWrongProvider = errors.New("oauth: state is for another provider")
	// ErrStateWrongWorkspace: a genuine state for another workspace.
	ErrStateWrongWorkspace = errors.New("oauth: state is for another workspace")
	// ErrStateKey: the signer's key is shorter than MinStateKeyLen, or a
	// state to sign lacks its workspace or provider.
	ErrStateKey = errors.New("oauth: cannot sign state")
)

// stateFormat is the first byte of every state; a later format can change
// the layout. stateAAD binds the ciphertext to its purpose, so nothing else
// sealed with a key derived the same way opens as a state.
const (
	stateFormat  = 1
	stateAAD     = "helpdeskflow oauth state v1"
	maxStateLen  = 4096
	stateKeyInfo = "helpdeskflow oauth state key v1"
)

// StateSigner seals States into opaque URL-safe tokens with AES-256-GCM under
// a key derived (HKDF-SHA256) from the key it was made with: a token can be
// neither read, forged nor edited (another workspace, provider or expiry)
// by anyone without the key. Safe for concurrent use.
type StateSigner struct {
	key  []byte
	aead cipher.AEAD
	err  error
}

// NewStateSigner returns a signer for key, which should be 32 random bytes
// shared by every API process (one of the secret keys). A key shorter than
// MinStateKeyLen makes Sign and Verify fail with ErrStateKey.
func NewStateSigner(key []byte) *StateSigner {
	s := &StateSigner{key: append([]byte(nil), key...)}
	if len(key) < MinStateKeyLen {
		s.err = fmt.Errorf("%w: key of %d bytes, want at least %d", ErrStateKey, len(key), MinStateKeyLen)
		return s
	}
	derived, err := hkdf.Key(sha256.New, s.key, nil, stateKeyInfo, 32)
	if err == nil {
		var block cipher.Block
		if block, err = aes.NewCipher(derived); err == nil {
			s.aead, err = cipher.NewGCM(block)
		}
	}
	if err != nil {
		s.err = fmt.Errorf("%w: %w", ErrStateKey, err)
	}
	return s
}

// statePayload is State on the wire, kept short because it rides in a URL.
type statePayload struct {
	Workspace  uuid.UUID `json:"w"`
	Connection uuid.UUID `json:"c"`
	Provider   string    `json:"p"`
	Verifier   string    `json:"v,omitempty"`
	Shop       string    `json:"s,omitempty"`
	Data       string    `json:"d,omitempty"`
	Expires    int64     `json:"e"`
}

// Sign seals st into a URL-safe token. A zero ExpiresAt becomes now plus
// StateLifetime. It returns ErrStateKey (code EInternal) for a bad key or a
// state without workspace or provider.
func (s *StateSigner) Sign(st State) (string, error) {
	if s.err != nil {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "cannot sign oauth state", Err: s.err}
	}
	if st.WorkspaceID == uuid.Nil || st.Provider == "" {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "cannot sign oauth state",
			Err: fmt.Errorf("%w: workspace and provider are required", ErrStateKey)}
	}
	if st.ExpiresAt.IsZero() {
		st.ExpiresAt = time.Now().Add(StateLifetime)
	}
	plain, err := json.Marshal(statePayload{
		Workspace: st.WorkspaceID, Connection: st.ConnectionID, Provider: st.Provider,
		Verifier: st.Verifier, Shop: st.Shop, Data: st.Data, Expires: st.ExpiresAt.Unix(),
	})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	out := append([]byte{stateFormat}, nonce...)
	out = s.aead.Seal(out, nonce, plain, []byte(stateAAD))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Verify opens token and returns its State if it is still valid at now. It
// returns ErrStateInvalid for anything this signer did not seal and
// ErrStateExpired for a genuine state at or past its ExpiresAt (code
// EValidation), or ErrStateKey (EInternal) for a bad key. Verify does not
// know which provider's callback or which workspace it serves: call
// State.Check on the result.
func (s *StateSigner) Verify(token string, now time.Time) (State, error) {
	if s.err != nil {
		return State{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "cannot verify oauth state", Err: s.err}
	}
	invalid := &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid oauth state", Err: ErrStateInvalid}
	if len(token) > maxStateLen {
		return State{}, invalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 1+s.aead.NonceSize()+s.aead.Overhead() || raw[0] != stateFormat {
		return State{}, invalid
	}
	nonce, sealed := raw[1:1+s.aead.NonceSize()], raw[1+s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, sealed, []byte(stateAAD))
	if err != nil {
		return State{}, invalid
	}
	var p statePayload
	if err := json.Unmarshal(plain, &p); err != nil || p.Workspace == uuid.Nil || p.Provider == "" {
		return State{}, invalid
	}
	st := State{
		WorkspaceID: p.Workspace, ConnectionID: p.Connection, Provider: p.Provider,
		Verifier: p.Verifier, Shop: p.Shop, Data: p.Data, ExpiresAt: time.Unix(p.Expires, 0).UTC(),
	}
	if !now.Before(st.ExpiresAt) {
		return State{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation,
			Message: "the authorization took too long; start again", Err: ErrStateExpired}
	}
	return st, nil
}

// Check returns ErrStateWrongProvider when st was issued for a provider other
// than provider, and ErrStateWrongWorkspace when workspaceID is not uuid.Nil
// and differs from st's (code EValidation); nil otherwise. Pass uuid.Nil when
// the callback has no authenticated workspace of its own.
func (st State) Check(provider string, workspaceID uuid.UUID) error {
	if st.Provider != provider {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation,
			Message: fmt.Sprintf("oauth state is for %q, not %q", st.Provider, provider), Err: ErrStateWrongProvider}
	}
	if workspaceID != uuid.Nil && st.WorkspaceID != workspaceID {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation,
			Message: "oauth state is for another workspace", Err: ErrStateWrongWorkspace}
	}
	return nil
}
