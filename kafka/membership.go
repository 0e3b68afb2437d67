package kafka

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Membership: how long a member may go silent, how often it
// says it is alive, and how long a rebalance may wait for it.
const (
	// DefaultSessionTimeout is how long the group coordinator waits for a
	// member's heartbeat before it removes the member and hands its
	// partitions to the others: the stall after a consumer dies and does
	// not come back (a static member that restarts takes its partitions
	// back at once, see Membership.InstanceID). 15 s rather than
	// franz-go's 45 s: long enough that a loaded machine, a GC pause or a
	// broker leader move (a few seconds) does not expire a live member
	// (Kafka raised its own default from 10 s for that reason, KIP-735),
	// short enough that a lost member costs seconds, not most of a minute.
	// Kafka's default group.min.session.timeout.ms (6 s) and
	// group.max.session.timeout.ms (30 min) accept it.
	DefaultSessionTimeout = 15 * time.Second
	// DefaultHeartbeatInterval is how often a member heartbeats: 1 s, a
	// fifteenth of the session, so that many heartbeats in a row must be
	// lost before the session expires (Kafka asks for at most a third),
	// and a member learns of a rebalance (from a heartbeat's answer)
	// within a second. One small request a second per member is cheap.
	DefaultHeartbeatInterval = time.Second
	// DefaultRebalanceTimeout is how long a rebalance waits for each
	// member to rejoin. A Consumer rejoins only after it flushed and
	// committed the batch it holds (BlockRebalanceOnPoll): one Flush
	// (a ClickHouse insert of up to 5,000 events, or a dispatcher batch,
	// usually well under a few seconds, longer while a server is slow)
	// plus the commit (bounded by ShutdownTimeout, 10 s by default). 60 s
	// covers that with room for a slow server; a member that takes longer
	// is removed from the group, and its uncommitted records go to the
	// next member (at least once).
	DefaultRebalanceTimeout = 60 * time.Second
)

// maxInstanceIDLength is the longest group.instance.id Kafka accepts.
const maxInstanceIDLength = 249

// Membership is how a Consumer is a member of its consumer group. The zero
// value is dynamic membership with the defaults above.
type Membership struct {
	// InstanceID, if set, makes the member static (KIP-345, Kafka 2.3+):
	// the group knows it by this id across restarts. A process that
	// restarts with the same id (after a crash or kill -9) replaces its
	// old member at once and gets its partitions back, without waiting
	// for the old member's session to time out and without a rebalance
	// of the other members. Ids are per group: one process may use the
	// same id in each group it joins, but two live processes must never
	// share one in a group (the newer fences the older out).
	//
	// The trade-off: a static member does not leave the group when it
	// stops (franz-go sends no LeaveGroup for it on LeaveGroup or Close,
	// so that its restart finds its partitions waiting), so a member
	// stopped for good (scaled down, or replaced by one with another id
	// as in a rolling update) holds its partitions until its session
	// times out (SessionTimeout). Empty: dynamic membership, as without
	// an id: a stopped member leaves the group and its partitions move at
	// once, but a killed one holds them until its session times out, and
	// its restart waits for that.
	//
	// Kafka accepts up to 249 letters, digits, '.', '_' and '-'
	// (CheckInstanceID).
	InstanceID string
	// SessionTimeout is how long the group keeps a member that stopped
	// heartbeating. Default DefaultSessionTimeout (15 s); the brokers'
	// group.min.session.timeout.ms and group.max.session.timeout.ms
	// bound it (Kafka's defaults: 6 s and 30 min).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the member heartbeats; below
	// SessionTimeout. Default DefaultHeartbeatInterval (1 s).
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long a rebalance waits for the member to
	// flush, commit and rejoin. Default DefaultRebalanceTimeout (60 s).
	RebalanceTimeout time.Duration
}

// withDefaults returns m with its zero durations set to the defaults.
func (m Membership) withDefaults() Membership {
	if m.SessionTimeout == 0 {
		m.SessionTimeout = DefaultSessionTimeout
	}
	if m.HeartbeatInterval == 0 {
		m.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if m.RebalanceTimeout == 0 {
		m.RebalanceTimeout = DefaultRebalanceTimeout
	}
	return m
}

// Check returns the problems of m after its defaults, each naming the
// field: an instance id Kafka refuses, a negative duration, or a heartbeat
// interval not below the session timeout. Consumers' Validate methods
// include it.
func (m Membership) Check() []error {
	m = m.withDefaults()
	var errs []error
	if err := CheckInstanceID(m.InstanceID); err != nil {
		errs = append(errs, fmt.Errorf("instance id: %w", err))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"session timeout", m.SessionTimeout}, {"heartbeat interval", m.HeartbeatInterval}, {"rebalance timeout", m.RebalanceTimeout}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.name, d.d))
		}
	}
	if m.HeartbeatInterval >= m.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat interval: must be below the session timeout (%s), got %s", m.SessionTimeout, m.HeartbeatInterval))
	}
	return errs
}

// CheckInstanceID returns nil for an empty id (dynamic membership) or one
// Kafka accepts as a group.instance.id (at most 249 ASCII letters, digits,
// '.', '_' and '-'), and otherwise an error saying what is wrong (without
// echoing the id).
func CheckInstanceID(id string) error {
	if len(id) > maxInstanceIDLength {
		return fmt.Errorf("at most %d characters, got %d", maxInstanceIDLength, len(id))
	}
	if id == "." || id == ".." {
		return fmt.Errorf("must not be %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("only letters, digits, '.', '_' and '-' are allowed, got %q at position %d", rune(c), i)
		}
	}
	return nil
}

// options are m's franz-go group options.
func (m Membership) options() []kgo.Opt {
	m = m.withDefaults()
	opts := []kgo.Opt{
		kgo.SessionTimeout(m.SessionTimeout),
		kgo.HeartbeatInterval(m.HeartbeatInterval),
		kgo.RebalanceTimeout(m.RebalanceTimeout),
	}
	if m.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(m.InstanceID))
	}
	return opts
}
