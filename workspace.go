package helpdeskflow

import (
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// API key roles.
const (
	RoleAdmin = "admin"
	RoleAgent = "agent"
)

// WorkspaceCreated is the data of a workspace.created event.
type WorkspaceCreated struct {
	Name string `json:"name"`
}

// APIKeyCreated is the data of an api_key.created event. It never holds the
// key itself, only its id, role and display prefix.
type APIKeyCreated struct {
	KeyID  uuid.UUID `json:"key_id"`
	Role   string    `json:"role"`
	Prefix string    `json:"prefix"`
	Name   string    `json:"name,omitempty"`
}

// APIKeyRevoked is the data of an api_key.revoked event.
type APIKeyRevoked struct {
	KeyID  uuid.UUID `json:"key_id"`
	Role   string    `json:"role"`
	Prefix string    `json:"prefix"`
}

// IPBlocklistUpdated is the data of a workspace.ip_blocklist_updated event:
// the new list and the one it replaced, as canonical CIDRs.
type IPBlocklistUpdated struct {
	CIDRs    []string `json:"cidrs"`
	Previous []string `json:"previous"`
}

// RateLimitSetting is a rate limit as events and the API show it.
type RateLimitSetting struct {
	Limit         int `json:"limit"`
	WindowSeconds int `json:"window_seconds"`
}

// RateLimitsUpdated is the data of a workspace.rate_limits_updated event:
// the categories whose limit changed, old and new, and the soft-throttle
// delay when it changed.
type RateLimitsUpdated struct {
	Changed             map[string]RateLimitSetting `json:"changed,omitempty"`
	Previous            map[string]RateLimitSetting `json:"previous,omitempty"`
	SoftThrottleDelayMs *int                        `json:"soft_throttle_delay_ms,omitempty"`
	PreviousDelayMs     *int                        `json:"previous_soft_throttle_delay_ms,omitempty"`
}

// Principal is who an authenticated request acts as: an API key of a
// workspace, with a role.
type Principal struct {
	WorkspaceID uuid.UUID
	KeyID       uuid.UUID
	Role        string
}

// APIKey describes a stored key; the secret itself is never stored.
// LastUsedAt is updated every few seconds, not on every request.
type APIKey struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Role        string
	Name        string
	Prefix      string
	CreatedAt   time.Time
	LastUsedAt  *time.Time
	RevokedAt   *time.Time
}

// WorkspaceSettings are a workspace's access settings. RateLimits holds only
// the categories the workspace overrides; SoftThrottleDelay is nil for the
// default.
type WorkspaceSettings struct {
	IPBlocklist       []netip.Prefix
	RateLimits        map[string]RateLimit
	SoftThrottleDelay *time.Duration
}

// RateLimitPolicy is the effective policy: the defaults with s's overrides.
func (s WorkspaceSettings) RateLimitPolicy() RateLimitPolicy {
	p := DefaultRateLimitPolicy()
	for c, l := range s.RateLimits {
		p.Limits[c] = l
	}
	if s.SoftThrottleDelay != nil {
		p.SoftThrottleDelay = *s.SoftThrottleDelay
	}
	return p
}

// Access is what an API key grants: its principal and its workspace's
// access settings, resolved once and cached together.
type Access struct {
	Principal
	IPBlocklist []netip.Prefix
	RateLimits  RateLimitPolicy
}

// Blocks reports whether ip is in the workspace's IP blocklist.
func (a Access) Blocks(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.IPBlocklist {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// APIKeyPage is one page of a workspace's active keys, oldest first. Next
// is the cursor of the following page, empty on the last one.
type APIKeyPage struct {
	Keys []APIKey
	Next string
}
