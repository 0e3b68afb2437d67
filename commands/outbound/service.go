// Package outbound is the write side of what the dispatcher sends out:
// webhook subscriptions (URLs checked with webhook.ValidateURL, secrets
// sealed and rotated with an overlap) and the workspace's Slack
// connection (token checked with Slack, sealed; marked for revalidation
// when Slack refuses it). It knows storage only through the interfaces in
// store.go.
package outbound

import (
	"time"
)

// Service handles webhook and Slack commands. It is safe for concurrent
// use.
type Service struct {
	store Store
	clock func() time.Time
	// sealer seals webhook secrets; allowLoopback lets webhooks target
	// loopback addresses (dev, tests).
	sealer        Sealer
	allowLoopback bool
	slack         SlackVerifier
}

// Option configures a Service.
type Option func(*Service)

// WithClock makes the Service stamp events and changes with now instead of
// the wall clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.clock = now } }

// New returns a Service on store. Without WithSecrets, webhook and Slack
// commands answer EUnavailable.
func New(store Store, opts ...Option) *Service {
	s := &Service{store: fieldNamingStore{store}, clock: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// now is the Service's clock in UTC at the microsecond precision Postgres
// keeps, so answers show the times later reads show.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }
