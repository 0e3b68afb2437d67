package ratelimit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
)

const (
	// slotsPerWindow is how many slots one window is split into.
	slotsPerWindow = 60
	// ringSize is how many slots a bucket keeps: the window [t−W, t]
	// overlaps the current slot, 59 whole ones and the oldest partial one.
	ringSize = slotsPerWindow + 1
)

// bucket is the sliding window of one (key, category). Times are
// nanoseconds since Config.Origin. Its owner's mutex guards it.
type bucket struct {
	category string
	// denied counts this category's denials in the shared metric.
	denied prometheus.Counter

	window int64 // W
	width  int64 // g = ⌈W/60⌉
	// head is the newest slot the bucket has advanced to; it holds slots
	// head−60 … head, slot k at counts[k mod ringSize].
	head int64
	// sum is the total of counts.
	sum int64
	// counts are this process's admissions per slot. uint32 is enough: a
	// slot's count never exceeds the limit (at most
	// helpdeskflow.MaxRateLimit).
	counts [ringSize]uint32
	// others are the other processes' admissions per slot as the last
	// exchange through Config.Shared reported them, othersSum their total;
	// they expire with their slots like counts.
	others    [ringSize]uint32
	othersSum int64
	// dirty reports admissions not yet sent to Config.Shared, in slots
	// dirtyFrom … head (admissions happen at the head, which only moves
	// forward).
	dirty     bool
	dirtyFrom int64
}

func newBucket(category string, denied prometheus.Counter, window time.Duration, t int64) *bucket {
	b := &bucket{category: category, denied: denied}
	b.reset(window, t)
	return b
}

// reset empties the bucket and gives it window.
func (b *bucket) reset(window time.Duration, t int64) {
	b.window = int64(window)
	b.width = (b.window + slotsPerWindow - 1) / slotsPerWindow
	b.head = floorDiv(t, b.width)
	b.sum, b.othersSum = 0, 0
	clear(b.counts[:])
	clear(b.others[:])
	b.dirty = false
}

func ringIndex(slot int64) int {
	i := slot % ringSize
	if i < 0 {
		i += ringSize
	}
	return int(i)
}

// floorDiv is ⌊a/b⌋ for b > 0; Go's / truncates towards zero.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// advance moves the bucket to time t, which is never before the time of
// its previous call, and expires the slots that fell out of the ring.
func (b *bucket) advance(t int64) {
	k := floorDiv(t, b.width)
	if k <= b.head {
		return
	}
	if k-b.head >= ringSize {
		clear(b.counts[:])
		clear(b.others[:])
		b.sum, b.othersSum = 0, 0
	} else {
		for s := b.head + 1; s <= k; s++ {
			i := ringIndex(s)
			b.sum -= int64(b.counts[i])
			b.othersSum -= int64(b.others[i])
			b.counts[i], b.others[i] = 0, 0
		}
	}
	b.head = k
}

// at is the admissions of every process that count in slot s, which is
// one of the ring's.
func (b *bucket) at(s int64) int64 {
	i := ringIndex(s)
	return int64(b.counts[i]) + int64(b.others[i])
}

// counted returns how many admissions, this process's and the others' it
// knows of, count at t (the bucket advanced to t) and the oldest counted
// slot, the one holding t−W. Since 60·g ≥ W that slot is head−60 or
// head−59, so at most one slot is subtracted.
func (b *bucket) counted(t int64) (n int64, oldest int64) {
	oldest = floorDiv(t-b.window, b.width)
	n = b.sum + b.othersSum
	for s := b.head - slotsPerWindow; s < oldest; s++ {
		n -= b.at(s)
	}
	return n, oldest
}

// admit counts n admissions at the bucket's head slot.
func (b *bucket) admit(n int) {
	b.counts[ringIndex(b.head)] += uint32(n)
	b.sum += int64(n)
	if !b.dirty {
		b.dirty, b.dirtyFrom = true, b.head
	}
}

// setOthers replaces the other processes' counts with counts (slot →
// admissions), the bucket advanced to its time. Slots that left the ring
// are ignored; a slot after the head (another process's clock is ahead)
// counts at the head, so it is not lost.
func (b *bucket) setOthers(counts []helpdeskflow.RateLimitSlot) {
	clear(b.others[:])
	b.othersSum = 0
	for _, c := range counts {
		s := min(c.Slot, b.head)
		if s < b.head-slotsPerWindow || c.Count <= 0 {
			continue
		}
		n := uint32(min(c.Count, helpdeskflow.MaxRateLimit))
		b.others[ringIndex(s)] += n
		b.othersSum += int64(n)
	}
}

// retryAfter returns the time from t until the count, n now at or above
// limit ≥ 1, falls below limit with no further admissions: slot s stops
// counting at W + (s+1)·g, when t−W reaches the next slot.
func (b *bucket) retryAfter(t, n, oldest, limit int64) time.Duration {
	s := oldest
	for n >= limit {
		n -= b.at(s)
		s++
	}
	return time.Duration(b.window + s*b.width - t)
}

// resetAfter returns the time from t until the oldest counted admission
// stops counting, or 0 when nothing counts.
func (b *bucket) resetAfter(t, oldest int64) time.Duration {
	for s := oldest; s <= b.head; s++ {
		if b.at(s) > 0 {
			return time.Duration(b.window + (s+1)*b.width - t)
		}
	}
	return 0
}
