package helpdeskflow

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Rate limit categories. Each API route belongs to one; every API key has
// its own bucket per category, so unrelated operations never starve each
// other (guide 3.1).
const (
	RateTicketsCreate  = "tickets.create"
	RateTicketsUpdate  = "tickets.update"
	RateTicketsRead    = "tickets.read"
	RateCustomersRead  = "customers.read"
	RateCustomersWrite = "customers.write"
	RateEventsRead     = "events.read"
	RateAdmin          = "admin"
)

// RateLimitCategories lists every category in the order the API shows them.
var RateLimitCategories = []string{
	RateTicketsCreate, RateTicketsUpdate, RateTicketsRead,
	RateCustomersRead, RateCustomersWrite, RateEventsRead, RateAdmin,
}

// RateLimit allows Limit requests in any sliding window of length Window.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// Bounds of a configured rate limit and soft-throttle delay.
const (
	MinRateLimitWindow       = time.Second
	MaxRateLimitWindow       = time.Hour
	MaxRateLimit             = 1_000_000
	MaxSoftThrottleDelay     = 5 * time.Second
	DefaultSoftThrottleDelay = 250 * time.Millisecond
)

// RateLimitPolicy is a workspace's rate limit configuration: one limit per
// category, and the delay added to every response of a key in soft-throttle
// mode.
type RateLimitPolicy struct {
	Limits            map[string]RateLimit
	SoftThrottleDelay time.Duration
}

// DefaultRateLimitPolicy is the policy of a workspace that never set one:
// per key and per minute, 1,200 creates, updates and customer writes, 3,000
// ticket and customer reads, 600 change-feed reads and 120 admin calls.
func DefaultRateLimitPolicy() RateLimitPolicy {
	return RateLimitPolicy{
		Limits: map[string]RateLimit{
			RateTicketsCreate:  {Limit: 1200, Window: time.Minute},
			RateTicketsUpdate:  {Limit: 1200, Window: time.Minute},
			RateTicketsRead:    {Limit: 3000, Window: time.Minute},
			RateCustomersRead:  {Limit: 3000, Window: time.Minute},
			RateCustomersWrite: {Limit: 1200, Window: time.Minute},
			RateEventsRead:     {Limit: 600, Window: time.Minute},
			RateAdmin:          {Limit: 120, Window: time.Minute},
		},
		SoftThrottleDelay: DefaultSoftThrottleDelay,
	}
}

// ValidRateLimitCategory reports whether category is one of
// RateLimitCategories.
func ValidRateLimitCategory(category string) bool {
	for _, c := range RateLimitCategories {
		if c == category {
			return true
		}
	}
	return false
}

// Validate checks l against the bounds above and names the problem.
func (l RateLimit) Validate() error {
	switch {
	case l.Limit < 1 || l.Limit > MaxRateLimit:
		return fmt.Errorf("limit must be between 1 and %d", MaxRateLimit)
	case l.Window < MinRateLimitWindow || l.Window > MaxRateLimitWindow:
		return fmt.Errorf("window must be between %s and %s", MinRateLimitWindow, MaxRateLimitWindow)
	case l.Window%time.Second != 0:
		return fmt.Errorf("window must be a whole number of seconds")
	}
	return nil
}

// RateLimitExchange is what one API process sends when it shares its rate
// limit state with the others (http/ratelimit's Shared, kept in Postgres by
// store/ratelimits). Times are nanoseconds since the processes' common
// origin (the Unix epoch unless configured otherwise); slot k of a window W
// is [k·g, (k+1)·g) with g = ⌈W/60⌉.
type RateLimitExchange struct {
	// Node identifies the process (its limiter).
	Node uuid.UUID
	// Now is the process's time.
	Now int64
	// Counts are Node's counts that changed since its last exchange.
	Counts []RateLimitSlot
	// Buckets are the buckets whose other nodes' counts Node wants.
	Buckets []RateLimitBucket
	// Streaks are Node's denial streaks that changed since its last
	// exchange.
	Streaks []RateLimitStreak
	// Workspaces are the workspaces whose other nodes' streaks Node wants.
	Workspaces []uuid.UUID
}

// RateLimitExchanged is what an exchange returns: the other nodes' counts
// (summed per bucket and slot) and streaks (one per node and workspace).
type RateLimitExchanged struct {
	Counts  []RateLimitSlot
	Streaks []RateLimitStreak
}

// RateLimitSlot is a bucket's (key, category, window) admissions in one
// slot.
type RateLimitSlot struct {
	Key      uuid.UUID
	Category string
	Window   time.Duration
	Slot     int64
	Count    int64
	// Expires is when the slot stops counting.
	Expires int64
}

// RateLimitBucket names a bucket and the oldest of its slots that still
// counts.
type RateLimitBucket struct {
	Key      uuid.UUID
	Category string
	Window   time.Duration
	FromSlot int64
}

// RateLimitStreak is a run of a workspace's denials on one process: the
// first at Start, the latest at LastDenial.
type RateLimitStreak struct {
	Workspace         uuid.UUID
	Start, LastDenial int64
	// Expires is when the streak stops mattering (its last denial is older
	// than the streak gap and the recovery time).
	Expires int64
}
