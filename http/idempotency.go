package http

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
)

// Idempotency keeps, per API key, the Idempotency-Keys of POST and PATCH
// requests and the responses to replay to their retries. Implementations
// must be safe for concurrent use, also across processes sharing a
// database.
type Idempotency interface {
	// Begin claims key for a request whose identity hashes to requestHash:
	// either the caller must run the request (the claim's Token), or the
	// same request already completed (the claim's Replay). Errors:
	// EIdempotencyKeyReused (the key was used for another request),
	// EIdempotencyKeyInUse (its first request is still running),
	// EUnavailable.
	Begin(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, requestHash []byte) (helpdeskflow.IdempotencyClaim, error)
	// Complete stores the response of a claimed request for replay.
	Complete(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, token uuid.UUID, resp helpdeskflow.IdempotentResponse) error
	// Abandon gives the key up, so a retry runs the request again.
	Abandon(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, token uuid.UUID) error
}

const (
	// idempotencyKeyHeader names the request header; maxIdempotencyKeyLen
	// is the longest key accepted.
	idempotencyKeyHeader = "Idempotency-Key"
	maxIdempotencyKeyLen = 255
	// replayedHeader marks a replayed response.
	replayedHeader = "Idempotent-Replayed"
	// idempotencyWriteTimeout bounds storing or giving up a key once the
	// handler has finished, even when the client has gone.
	idempotencyWriteTimeout = 5 * time.Second
)

// replayedHeaders are the response headers kept with a response and
// replayed; the others (request id, rate limits) are the retry's own.
var replayedHeaders = []string{"Content-Type", "ETag", "Location", "Cache-Control"}

// runHandler runs rt's handler. A POST or PATCH carrying an Idempotency-Key
// (and a Server with Config.Idempotency) goes through the key: a new key
// runs the handler once and keeps its response when it is final (see
// finalStatus); a retry of the same request gets that response again,
// byte for byte, with Idempotent-Replayed: true; the same key with another
// request is EIdempotencyKeyReused (422) and, while the first request
// runs, EIdempotencyKeyInUse (409). A malformed key is EValidation naming
// the header, an oversized body EPayloadTooLarge. Errors of the handler
// itself are written here (and recorded in entry) when the key is used,
// since they are part of the response kept.
func (s *Server) runHandler(w http.ResponseWriter, r *http.Request, rt route, p httprouter.Params, entry *helpdeskflow.APIRequest) error {
	values := r.Header.Values(idempotencyKeyHeader)
	if s.cfg.Idempotency == nil || rt.public || (rt.method != http.MethodPost && rt.method != http.MethodPatch) || len(values) == 0 {
		return rt.handle(w, r, p)
	}
	key, err := idempotencyKey(values)
	if err != nil {
		return err
	}
	limit := int64(MaxBodyBytes)
	if rt.batch {
		limit = MaxBatchBodyBytes
	}
	body, err := readBody(r, limit)
	if err != nil {
		return err
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	hash := requestHash(r, body)
	principal := principalOf(r.Context())
	workspaceID := principal.WorkspaceID
	// The key is the API key's own: another API key with the same
	// Idempotency-Key makes a separate request and never sees this one's
	// response (an agent key must not replay an admin's answer).
	scope := helpdeskflow.IdempotencyScope{WorkspaceID: workspaceID, APIKeyID: principal.KeyID}

	claim, err := s.cfg.Idempotency.Begin(r.Context(), scope, key, hash)
	if err != nil {
		return err
	}
	if claim.Replay != nil {
		return s.replay(w, r, *claim.Replay, sealingKey(r, workspaceID, key, hash), entry)
	}

	// Writes of the key happen after the handler, whatever became of the
	// client: they must not be cancelled with its request.
	storeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(r.Context()), idempotencyWriteTimeout)
	}
	// A batch or a ticket create keeps its response in its own
	// transaction, with what it stores (see batch.go), so a crash between
	// the two cannot make a retry store it twice.
	var held *heldKey
	if rt.batch || rt.keeps {
		held = &heldKey{key: helpdeskflow.HeldIdempotencyKey{Scope: scope, Key: key, Token: claim.Token}}
		r = r.WithContext(context.WithValue(r.Context(), heldKeyKey, held))
	}
	rec := &idempotentRecorder{header: w.Header()}
	finished := false
	defer func() {
		if finished {
			return
		}
		// The handler panicked: give the key up so a retry runs again.
		ctx, cancel := storeCtx()
		defer cancel()
		if err := s.cfg.Idempotency.Abandon(ctx, scope, key, claim.Token); err != nil {
			logRequest(r.Context(), s.cfg.Logger, slog.LevelWarn, "idempotency key: could not give up the key of a panicked request",
				"idempotency_key", key, helpdeskflow.LogError, err)
		}
	}()
	if err := rt.handle(rec, r, p); err != nil {
		entry.ErrorCode = helpdeskflow.ErrorCode(err)
		writeError(rec, r, s.cfg.Logger, err)
	}
	finished = true
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}

	ctx, cancel := storeCtx()
	defer cancel()
	switch {
	case held != nil && held.kept:
		// Kept by the handler's own transaction.
	case finalStatus(rec.status):
		// The response is kept before the client sees it, so a client
		// that got it can count on a retry replaying it. If keeping it
		// fails the key stays running until its lease ends (retries get
		// 409), then a retry runs the request again.
		if err := s.keepResponse(ctx, rec, scope, key, claim.Token, sealingKey(r, workspaceID, key, hash)); err != nil {
			logRequest(r.Context(), s.cfg.Logger, slog.LevelWarn, "idempotency key: could not keep the response",
				"idempotency_key", key, helpdeskflow.LogError, err)
		}
	default:
		if err := s.cfg.Idempotency.Abandon(ctx, scope, key, claim.Token); err != nil {
			logRequest(r.Context(), s.cfg.Logger, slog.LevelWarn, "idempotency key: could not give the key up",
				"idempotency_key", key, helpdeskflow.LogError, err)
		}
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes()) //nolint:errcheck // the client went away; nothing to do
	return nil
}

// keepResponse stores rec's response as the outcome of key's request. A
// response marked Cache-Control: no-store holds a secret shown once (a new
// API key): it is kept sealed with sealKey.
func (s *Server) keepResponse(ctx context.Context, rec *idempotentRecorder, scope helpdeskflow.IdempotencyScope, key string, token uuid.UUID, sealKey []byte) error {
	resp := helpdeskflow.IdempotentResponse{Status: rec.status, Header: rec.kept, Body: rec.body.Bytes()}
	if strings.Contains(strings.ToLower(rec.kept["Cache-Control"]), "no-store") {
		var err error
		if resp.Body, err = seal(sealKey, resp.Body); err != nil {
			return err
		}
		resp.Sealed = true
	}
	return s.cfg.Idempotency.Complete(ctx, scope, key, token, resp)
}

// finalStatus reports whether a response with status is the outcome of its
// request, kept and replayed to retries: 2xx and 4xx, except 409 (a
// conflict that may be gone on retry) and 429 (rate limited). 5xx, and
// anything else, give the key up so a retry runs the request again.
func finalStatus(status int) bool {
	switch {
	case status == http.StatusConflict || status == http.StatusTooManyRequests:
		return false
	case status >= 200 && status < 300, status >= 400 && status < 500:
		return true
	}
	return false
}

// replay answers with a kept response, marked Idempotent-Replayed. The
// request id and rate-limit headers already set are the retry's own.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, resp helpdeskflow.IdempotentResponse, sealKey []byte, entry *helpdeskflow.APIRequest) error {
	body := resp.Body
	if resp.Sealed {
		var err error
		if body, err = unseal(sealKey, body); err != nil {
			return helpdeskflow.Errorf(helpdeskflow.EIdempotencyKeyReused,
				"the response kept for Idempotency-Key %q holds a secret that cannot be opened with this API key; use a new key",
				r.Header.Get(idempotencyKeyHeader))
		}
	}
	h := w.Header()
	for name, value := range resp.Header {
		h.Set(name, value)
	}
	h.Set(replayedHeader, "true")
	if resp.Status >= 400 {
		var e errorBody
		if json.Unmarshal(body, &e) == nil {
			entry.ErrorCode = e.Error.Code
		}
	}
	w.WriteHeader(resp.Status)
	w.Write(body) //nolint:errcheck // the client went away; nothing to do
	return nil
}

// idempotencyKey returns the one Idempotency-Key of values, which must be
// 1 to 255 printable ASCII characters.
func idempotencyKey(values []string) (string, error) {
	problem := ""
	key := values[0]
	switch {
	case len(values) > 1:
		problem = "send the header once"
	case key == "" || len(key) > maxIdempotencyKeyLen:
		problem = "must be 1 to 255 printable ASCII characters"
	default:
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				problem = "must be 1 to 255 printable ASCII characters"
				break
			}
		}
	}
	if problem != "" {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the Idempotency-Key header is invalid; see details",
			Details: []helpdeskflow.FieldProblem{{Field: idempotencyKeyHeader, Problem: problem}}}
	}
	return key, nil
}

// requestHash is what makes a request the same request for its
// Idempotency-Key: the method, the path (not the route pattern: a PATCH of
// another ticket is another request), the query, If-Match and the raw
// body, each length-prefixed, and X-HDF-On-Behalf-Of when sent (the same
// key for another agent is another request; without the header the hash
// is what it was before the header existed). The API key is not part of
// it: keys are per workspace.
func requestHash(r *http.Request, body []byte) []byte {
	h := sha256.New()
	parts := [][]byte{
		[]byte(r.Method), []byte(r.URL.Path), []byte(r.URL.RawQuery),
		[]byte(strings.Join(r.Header.Values("If-Match"), ",")), body,
	}
	if agent := agentOf(r.Context()); agent != "" {
		parts = append(parts, []byte(agent))
	}
	for _, part := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return h.Sum(nil)
}

// sealingKey is the AES-256 key that encrypts a kept response holding a
// secret (Cache-Control: no-store): derived from the request's API key,
// which the database holds only as a hash, so the secret cannot be read
// there, and only the same API key can have it replayed.
func sealingKey(r *http.Request, workspaceID uuid.UUID, key string, requestHash []byte) []byte {
	secret, _, _ := bearerKey(r.Header.Values("Authorization")) // checked by authenticate
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("helpdeskflow idempotent response v1\x00"))
	m.Write(workspaceID[:])
	m.Write([]byte(key)) // printable ASCII: the NUL below ends it unambiguously
	m.Write([]byte{0})
	m.Write(requestHash)
	return m.Sum(nil)
}

// seal encrypts plaintext with AES-256-GCM under key; the random nonce
// comes first.
func seal(key, plaintext []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plaintext, nil), nil
}

// unseal decrypts what seal made; it fails for another key.
func unseal(key, sealed []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed response too short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// idempotentRecorder holds a handler's response until it is kept: the
// status, the replayed headers as they were when the status was written,
// and the body. Headers go straight to the real response's header map.
type idempotentRecorder struct {
	header http.Header
	status int
	kept   map[string]string
	body   bytes.Buffer
}

func (rec *idempotentRecorder) Header() http.Header { return rec.header }

func (rec *idempotentRecorder) WriteHeader(status int) {
	if rec.status != 0 {
		return
	}
	rec.status = status
	rec.kept = map[string]string{}
	for _, name := range replayedHeaders {
		if v := rec.header.Get(name); v != "" {
			rec.kept[name] = v
		}
	}
}

func (rec *idempotentRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	return rec.body.Write(b)
}
