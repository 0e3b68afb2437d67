package http

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// RateUnauthenticated is the rate limit category of requests without a
// valid API key: they are counted per client IP (IPv6 addresses per /64,
// which one subscriber usually holds) in a bucket of their own, so that a
// flood of made-up keys or probes of public routes is cheap and cannot
// spend anyone's budget but its own.
const RateUnauthenticated = "unauthenticated"

// DefaultUnauthenticatedLimit is each client IP's default budget of
// requests without a valid key: failed authentications and calls of the
// public API routes (the OpenAPI document, OAuth callbacks). Health,
// readiness and metrics probes are not counted.
var DefaultUnauthenticatedLimit = helpdeskflow.RateLimit{Limit: 120, Window: time.Minute}

// unauthenticatedKeys namespaces the limiter keys of client IPs.
var unauthenticatedKeys = uuid.MustParse("6b2f4f0e-8a51-4d7e-9d0c-5b1f1f3b7a21")

// unauthenticatedKey is the limiter key of the request's client IP.
func unauthenticatedKey(r *http.Request) uuid.UUID {
	ip := clientIPOf(r.Context()).Unmap()
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return uuid.NewSHA1(unauthenticatedKeys, ip.AsSlice())
}

func (s *Server) unauthenticatedLimit() helpdeskflow.RateLimit {
	if s.cfg.UnauthenticatedLimit.Limit > 0 {
		return s.cfg.UnauthenticatedLimit
	}
	return DefaultUnauthenticatedLimit
}

// unauthenticated counts a request without a valid key against its client
// IP's budget and returns refusal (the reason it has no valid key, or nil
// for a public route) while within budget, and ERateLimited (with the
// rate limit headers) once over it.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, refusal error) error {
	key := unauthenticatedKey(r)
	d := s.cfg.Limiter.Allow(key, key, RateUnauthenticated, s.unauthenticatedLimit()) // the client IP is its own workspace
	if !d.Allowed {
		return limitAnswer(w, RateUnauthenticated, "client IP without a valid API key", d)
	}
	return refusal
}

// unauthenticatedExhausted returns ERateLimited, without counting, when
// the request's client IP has no unauthenticated budget left.
func (s *Server) unauthenticatedExhausted(w http.ResponseWriter, r *http.Request) error {
	limit := s.unauthenticatedLimit()
	u := s.cfg.Limiter.Usage(unauthenticatedKey(r), RateUnauthenticated, limit)
	if u.Remaining > 0 {
		return nil
	}
	return s.unauthenticated(w, r, nil)
}
