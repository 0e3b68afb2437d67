// Package rules is the write side of a workspace's rules: automation rules
// and SLA policies, each kind created, replaced and deleted under the
// workspace's rule-set lock with an event on the rule's own stream, and
// read back in the order they run. It knows storage only through the
// interfaces in store.go.
package rules

import (
	"time"
)

// Service manages automation rules and SLA policies. It is safe for
// concurrent use.
type Service struct {
	store Store
	clock func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithClock makes the Service stamp events, and mark a changed SLA
// policy's tickets due, with now instead of the wall clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.clock = now } }

// New returns a Service on store. An event the store refuses as too large
// is answered EPayloadTooLarge naming the request field (see
// commands.NameTooLarge).
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
