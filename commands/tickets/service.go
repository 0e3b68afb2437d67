// Package tickets is the write side of tickets and customers: it decides
// the events of ticket and customer commands and of mail imports, runs the
// workspace's automation rules on the result and chooses the ticket's SLA
// policy, appending all of it in one transaction; it checks the SLA clocks
// for the timer worker, simulates automations, and composes consistent
// single-ticket and single-customer reads from the event store (with
// snapshots). It knows storage only through the interfaces in store.go.
package tickets

import (
	"time"

	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

// Service handles ticket and customer commands and their consistent
// reads. It is safe for concurrent use.
type Service struct {
	store   Store
	clock   func() time.Time
	metrics *rules.Metrics
	rules   rules.Cache
	cache   *readCache // nil: reads fold from the store each time
}

// Option configures a Service.
type Option func(*Service)

// WithClock makes the Service stamp events and judge SLA times with now
// instead of the wall clock (tests move it instead of sleeping).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.clock = now } }

// WithMetrics makes the Service record its automation metrics in m.
func WithMetrics(m *rules.Metrics) Option { return func(s *Service) { s.metrics = m } }

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
