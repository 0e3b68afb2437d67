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
