package helpdeskflow

import "github.com/google/uuid"

// IdempotentResponse is the response to a request made with an
// Idempotency-Key, kept so that a retry of the same request replays it.
// Header holds only the headers worth replaying (Content-Type, ETag,
// Location, Cache-Control). When Sealed is set, Body is encrypted with a key
// only the API key that made the request can derive (the response holds a
// secret shown once, such as a new API key).
type IdempotentResponse struct {
	Status int
	Header map[string]string
	Body   []byte
	Sealed bool
}

// IdempotencyClaim is the outcome of claiming an Idempotency-Key for a
// request. Exactly one of the two is set: Token, when the caller now owns
// the key and must run the request, then complete or abandon the claim with
// this token; or Replay, the response of the first request made with the
// key.
type IdempotencyClaim struct {
	Token  uuid.UUID
	Replay *IdempotentResponse
}

// IdempotencyScope is whose an Idempotency-Key is: the API key that sent
// it, in its workspace. The same key string sent by another API key (of
// the same workspace or not) is another key, and a replay answers only the
// API key that made the first request.
type IdempotencyScope struct {
	WorkspaceID uuid.UUID
	APIKeyID    uuid.UUID
}

// HeldIdempotencyKey is an Idempotency-Key claimed for a request that is
// running: whose it is, the key, and the claim's Token. A command that
// keeps its response in its own transaction (the batch routes) is given
// it, so that the response commits with what the request changed.
type HeldIdempotencyKey struct {
	Scope IdempotencyScope
	Key   string
	Token uuid.UUID
}
