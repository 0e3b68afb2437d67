package access

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// MaxIPBlocklistEntries bounds a workspace's IP blocklist.
const MaxIPBlocklistEntries = 1000

// SetIPBlocklist replaces the workspace's IP blocklist with cidrs (IPv4 or
// IPv6 CIDRs, or single addresses, which become /32 or /128) and records
// workspace.ip_blocklist_updated with the old and new lists. When it
// returns, every API process refuses the listed addresses with 401. It
// returns the stored, canonical list (host bits cleared, duplicates
// removed, sorted), or EValidation naming each bad entry by index,
// including an entry that would block caller, the address of the request
// making the change (so an admin cannot lock themselves out).
func (s *Service) SetIPBlocklist(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID, cidrs []string, caller netip.Addr) ([]netip.Prefix, error) {
	var p commands.Problems
	if cidrs == nil {
		p.Add("cidrs", "required (an empty list clears the blocklist)")
	}
	if len(cidrs) > MaxIPBlocklistEntries {
		p.Add("cidrs", "must have at most %d entries, got %d", MaxIPBlocklistEntries, len(cidrs))
	}
	var list []netip.Prefix
	for i, c := range cidrs {
		field := fmt.Sprintf("cidrs[%d]", i)
		prefix, err := parseCIDR(c)
		if err != nil {
			p.Add(field, "%s", err)
			continue
		}
		if caller.IsValid() && prefix.Contains(caller.Unmap()) {
			p.Add(field, "would block %s, the address this request comes from", caller.Unmap())
			continue
		}
		list = append(list, prefix)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	list = slices.Compact(list)

	err := s.changeSettings(ctx, md, workspaceID, func(settings *helpdeskflow.WorkspaceSettings) (*helpdeskflow.NewEvent, error) {
		previous := settings.IPBlocklist
		settings.IPBlocklist = list
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventIPBlocklistUpdated, helpdeskflow.IPBlocklistUpdated{
			CIDRs: prefixStrings(list), Previous: prefixStrings(previous),
		})
		return &e, err
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// parseCIDR accepts a CIDR or a single address and returns the canonical
// prefix (host bits cleared, IPv4-mapped IPv6 addresses as IPv4).
func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("required")
	}
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("must be a CIDR like 203.0.113.0/24 or 2001:db8::/32, or a single address; got %q", s)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("must be a CIDR like 203.0.113.0/24 or 2001:db8::/32, or a single address; got %q", s)
	}
	if prefix.Addr().Is4In6() && prefix.Bits() >= 96 {
		prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()-96)
	}
	return prefix.Masked(), nil
}

func prefixStrings(list []netip.Prefix) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.String()
	}
	return out
}

// SetRateLimits is the body of PUT /v1/rate-limits: the categories to
// change (others keep their limit) and, optionally, the soft-throttle
// delay. A category set to null goes back to its default.
type SetRateLimits struct {
	Limits              map[string]*helpdeskflow.RateLimitSetting `json:"limits"`
	SoftThrottleDelayMs *int                                      `json:"soft_throttle_delay_ms"`
}

// Validate checks every category, limit and window and the delay,
// returning all problems at once as EValidation.
func (cmd SetRateLimits) Validate() error {
	var p commands.Problems
	if len(cmd.Limits) == 0 && cmd.SoftThrottleDelayMs == nil {
		p.Add("limits", "required: give limits to change or soft_throttle_delay_ms")
	}
	for category, setting := range cmd.Limits {
		field := "limits." + category
		if !helpdeskflow.ValidRateLimitCategory(category) {
			p.Add(field, "unknown category; categories are %s", strings.Join(helpdeskflow.RateLimitCategories, ", "))
			continue
		}
		if setting == nil {
			continue
		}
		if setting.Limit < 1 || setting.Limit > helpdeskflow.MaxRateLimit {
			p.Add(field+".limit", "must be between 1 and %d, got %d", helpdeskflow.MaxRateLimit, setting.Limit)
		}
		min, max := int(helpdeskflow.MinRateLimitWindow/time.Second), int(helpdeskflow.MaxRateLimitWindow/time.Second)
		if setting.WindowSeconds < min || setting.WindowSeconds > max {
			p.Add(field+".window_seconds", "must be between %d and %d, got %d", min, max, setting.WindowSeconds)
		}
	}
	if d := cmd.SoftThrottleDelayMs; d != nil && (*d < 0 || *d > int(helpdeskflow.MaxSoftThrottleDelay/time.Millisecond)) {
		p.Add("soft_throttle_delay_ms", "must be between 0 and %d, got %d", helpdeskflow.MaxSoftThrottleDelay/time.Millisecond, *d)
	}
	return p.Err()
}

// SetRateLimits changes the workspace's rate limits and records
// workspace.rate_limits_updated with what changed. When it returns, every
// API process applies the new limits. It returns the effective policy, or
// EValidation naming each bad field (limits.<category>.limit, …).
func (s *Service) SetRateLimits(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID, cmd SetRateLimits) (helpdeskflow.RateLimitPolicy, error) {
	if err := cmd.Validate(); err != nil {
		return helpdeskflow.RateLimitPolicy{}, err
	}
	var policy helpdeskflow.RateLimitPolicy
	err := s.changeSettings(ctx, md, workspaceID, func(settings *helpdeskflow.WorkspaceSettings) (*helpdeskflow.NewEvent, error) {
		before := settings.RateLimitPolicy()
		if settings.RateLimits == nil {
			settings.RateLimits = map[string]helpdeskflow.RateLimit{}
		}
		for category, setting := range cmd.Limits {
			if setting == nil {
				delete(settings.RateLimits, category)
				continue
			}
			settings.RateLimits[category] = helpdeskflow.RateLimit{Limit: setting.Limit, Window: time.Duration(setting.WindowSeconds) * time.Second}
		}
		if cmd.SoftThrottleDelayMs != nil {
			d := time.Duration(*cmd.SoftThrottleDelayMs) * time.Millisecond
			settings.SoftThrottleDelay = &d
		}
		policy = settings.RateLimitPolicy()
		data := helpdeskflow.RateLimitsUpdated{Changed: map[string]helpdeskflow.RateLimitSetting{}, Previous: map[string]helpdeskflow.RateLimitSetting{}}
		for category, l := range policy.Limits {
			if old := before.Limits[category]; old != l {
				data.Changed[category] = rateLimitSetting(l)
				data.Previous[category] = rateLimitSetting(old)
			}
		}
		if before.SoftThrottleDelay != policy.SoftThrottleDelay {
			old, now := int(before.SoftThrottleDelay/time.Millisecond), int(policy.SoftThrottleDelay/time.Millisecond)
			data.PreviousDelayMs, data.SoftThrottleDelayMs = &old, &now
		}
		if len(data.Changed) == 0 && data.SoftThrottleDelayMs == nil {
			return nil, nil // nothing changed: no event
		}
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventRateLimitsUpdated, data)
		return &e, err
	})
	if err != nil {
		return helpdeskflow.RateLimitPolicy{}, err
	}
	return policy, nil
}

// changeSettings runs change on the workspace's settings under the
// workspace stream's lock, stores the changed settings and appends the
// event change returns (none when it returns nil), in one transaction.
func (s *Service) changeSettings(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID,
	change func(*helpdeskflow.WorkspaceSettings) (*helpdeskflow.NewEvent, error)) error {
	return s.store.Transact(ctx, func(tx Tx) error {
		ref := commands.WorkspaceRef(workspaceID)
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		settings, err := tx.WorkspaceSettings(ctx, workspaceID)
		if err != nil {
			return err
		}
		e, err := change(&settings)
		if err != nil {
			return err
		}
		if err := tx.SetWorkspaceSettings(ctx, workspaceID, settings); err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{*e})
		return err
	})
}

func rateLimitSetting(l helpdeskflow.RateLimit) helpdeskflow.RateLimitSetting {
	return helpdeskflow.RateLimitSetting{Limit: l.Limit, WindowSeconds: int(l.Window / time.Second)}
}
