package helpdeskflow

import (
	"time"

	"github.com/google/uuid"
)

// APIRequest is one entry of the request log: every API request,
// authenticated or not, tied to the key used (guide 2.1). Its JSON encoding
// is the value of a record on TopicAPIRequests (key: the request id) and
// becomes a row of ClickHouse's api_requests table.
type APIRequest struct {
	// Time is when the request arrived, UTC.
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// WorkspaceID and KeyID are uuid.Nil when no valid key was presented.
	WorkspaceID uuid.UUID `json:"workspace_id"`
	KeyID       uuid.UUID `json:"key_id"`
	// KeyPrefix is the display prefix (APIKeyDisplayPrefix) of the key the
	// request presented when it was well-formed, known or not; never the
	// key itself.
	KeyPrefix string `json:"key_prefix,omitempty"`
	Method    string `json:"method"`
	// Route is the route pattern (/v1/tickets/:id); Path the path without
	// the query string, which may hold a misplaced key.
	Route     string        `json:"route"`
	Path      string        `json:"path"`
	Status    int           `json:"status"`
	Latency   time.Duration `json:"latency_ns"`
	ClientIP  string        `json:"client_ip"`
	UserAgent string        `json:"user_agent,omitempty"`
	// ErrorCode is the error code of a failed request (unauthorized,
	// rate_limited, …), empty on success.
	ErrorCode string `json:"error_code,omitempty"`
	// RateLimitCategory is the route's rate limit category, empty for
	// routes without one.
	RateLimitCategory string `json:"rate_limit_category,omitempty"`
}
