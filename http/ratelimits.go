package http

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
)

// Rate limit response headers. RateLimit-Policy and RateLimit follow the
// IETF draft (draft-ietf-httpapi-ratelimit-headers, structured fields):
// `RateLimit-Policy: "tickets.create";q=1200;w=60` and
// `RateLimit: "tickets.create";r=1199;t=3`, where t is seconds until the
// remaining quota next grows. X-RateLimit-Reset is that moment as Unix
// seconds, like GitHub's. A key in soft-throttle mode gets
// X-HDF-Soft-Throttle-Delay-Ms on every response.
const (
	headerPolicy        = "RateLimit-Policy"
	headerRateLimit     = "RateLimit"
	headerLimit         = "X-RateLimit-Limit"
	headerRemaining     = "X-RateLimit-Remaining"
	headerReset         = "X-RateLimit-Reset"
	headerRetryAfter    = "Retry-After"
	headerSoftThrottled = "X-HDF-Soft-Throttle-Delay-Ms"
)

// ceilSeconds rounds up to whole seconds, so that a client waiting that
// long is never early.
func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// rateLimit counts the request, as cost requests (a batch's items), against
// its key's bucket for category and writes the rate limit headers. It
// returns the soft-throttle delay to add (0 when the key is not throttled)
// and, when the request does not fit, ERateLimited naming the category.
func (s *Server) rateLimit(w http.ResponseWriter, access helpdeskflow.Access, category string, cost int) (time.Duration, error) {
	limit, ok := access.RateLimits.Limits[category]
	if !ok {
		return 0, nil
	}
	d := s.cfg.Limiter.AllowN(access.WorkspaceID, access.KeyID, category, limit, cost)
	var delay time.Duration
	if d.SoftThrottled {
		delay = access.RateLimits.SoftThrottleDelay
		w.Header().Set(headerSoftThrottled, strconv.FormatInt(delay.Milliseconds(), 10))
	}
	err := limitAnswer(w, category, "key", d)
	if e, ok := err.(*helpdeskflow.Error); ok && cost > 1 {
		e.Message += fmt.Sprintf(" (this batch counts as its %d items; %d remain)", cost, d.Remaining)
	}
	return delay, err
}

// limitAnswer writes the rate limit headers of decision d on category and,
// when d denies the request, sets Retry-After and returns ERateLimited
// naming the category (per says whose bucket it is: "key", "client IP").
func limitAnswer(w http.ResponseWriter, category, per string, d ratelimit.Decision) error {
	h := w.Header()
	window := ceilSeconds(d.Window)
	reset := ceilSeconds(d.Reset)
	h.Set(headerPolicy, fmt.Sprintf("%q;q=%d;w=%d", category, d.Limit, window))
	h.Set(headerRateLimit, fmt.Sprintf("%q;r=%d;t=%d", category, d.Remaining, reset))
	h.Set(headerLimit, strconv.Itoa(d.Limit))
	h.Set(headerRemaining, strconv.Itoa(d.Remaining))
	h.Set(headerReset, strconv.FormatInt(time.Now().Add(d.Reset).Add(time.Second-1).Unix(), 10))
	if d.Allowed {
		return nil
	}
	retry := ceilSeconds(d.RetryAfter)
	h.Set(headerRetryAfter, strconv.FormatInt(retry, 10))
	return &helpdeskflow.Error{Code: helpdeskflow.ERateLimited,
		Message: fmt.Sprintf("rate limit exceeded for %s: %d requests per %d s per %s; retry in %d s", category, d.Limit, window, per, retry),
		Details: []helpdeskflow.FieldProblem{{Field: "category", Problem: category}}}
}

type rateLimitJSON struct {
	Category      string `json:"category"`
	Limit         int    `json:"limit"`
	WindowSeconds int64  `json:"window_seconds"`
	Used          int    `json:"used"`
	Remaining     int    `json:"remaining"`
	ResetSeconds  int64  `json:"reset_seconds"`
}

type softThrottleJSON struct {
	Active  bool    `json:"active"`
	Since   *string `json:"since"`
	DelayMs int64   `json:"delay_ms"`
}

type rateLimitsJSON struct {
	KeyID        string           `json:"key_id"`
	Limits       []rateLimitJSON  `json:"limits"`
	SoftThrottle softThrottleJSON `json:"soft_throttle"`
}

// handleRateLimitsGet is GET /v1/rate-limits: the calling key's limits and
// current usage per category (this request included), and whether its
// workspace is soft-throttled. Usage is shared by the API processes as the
// README's rate limit section says.
func (s *Server) handleRateLimitsGet(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	writeJSON(w, http.StatusOK, s.rateLimitsView(accessOf(r.Context()), accessOf(r.Context()).RateLimits))
	return nil
}

func (s *Server) rateLimitsView(access helpdeskflow.Access, policy helpdeskflow.RateLimitPolicy) rateLimitsJSON {
	out := rateLimitsJSON{KeyID: access.KeyID.String(), Limits: []rateLimitJSON{}}
	for _, category := range helpdeskflow.RateLimitCategories {
		u := s.cfg.Limiter.Usage(access.KeyID, category, policy.Limits[category])
		out.Limits = append(out.Limits, rateLimitJSON{
			Category: category, Limit: u.Limit, WindowSeconds: ceilSeconds(u.Window),
			Used: u.Used, Remaining: u.Remaining, ResetSeconds: ceilSeconds(u.Reset),
		})
	}
	throttled, since := s.cfg.Limiter.SoftThrottled(access.WorkspaceID)
	out.SoftThrottle = softThrottleJSON{Active: throttled, DelayMs: policy.SoftThrottleDelay.Milliseconds()}
	if throttled {
		t := formatTime(since)
		out.SoftThrottle.Since = &t
	}
	return out
}

// handleRateLimitsPut is PUT /v1/rate-limits (admin): change some
// categories' limits and the soft-throttle delay for every key of the
// workspace. It answers like GET with the new limits.
func (s *Server) handleRateLimitsPut(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd access.SetRateLimits
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	access := accessOf(r.Context())
	policy, err := s.cfg.Admin.SetRateLimits(r.Context(), metadata(r), access.WorkspaceID, cmd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.rateLimitsView(access, policy))
	return nil
}
