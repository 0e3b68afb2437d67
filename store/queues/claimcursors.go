package queues

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// fullClaimEvery is how long, at most, ClaimDeliveries claims from
// cursors before it walks every webhook's claimable deliveries from the
// start again (a full claim), while its cursors keep finding work: what only a full claim finds (a delivery made claimable by
// another process with a due time behind this process's cursor, an
// expired lease of a crashed worker, a webhook new to this process) waits
// at most this long when the queue is busy.
const fullClaimEvery = time.Second

// claimCursors is where this process's delivery claims start, per
// webhook: the latest due time (next_attempt_at) a claim of the webhook
// took. A claim from cursors reads each webhook's claim index from its
// cursor on, so it never walks the deliveries finished or leased before
// it (finished ones stay in the index, dead, until vacuum; leased ones
// are in flight), and its cost does not grow with what was delivered
// since the last vacuum.
//
// A cursor is only a lower bound of what may still be claimable: every
// change this process makes that lets a delivery due before a cursor be
// claimed (enqueued, released, retried, promoted to its stream's head,
// redelivered) lowers the cursor once committed (lower), and a claim
// moves a cursor forward only if no lowering happened while it ran (gen).
// A full claim (no cursors: the recursive walk of every webhook with
// claimable deliveries) runs when there are no cursors, when the last
// claim from cursors found nothing, and at least every fullClaimEvery, and
// finds what other processes made claimable behind the cursors.
type claimCursors struct {
	mu       sync.Mutex
	at       map[uuid.UUID]cursor
	lastFull time.Time
	// wantFull: the last claim from cursors found nothing.
	wantFull bool
}

// cursor is one webhook's claim start and how often it was lowered.
type cursor struct {
	after time.Time
	gen   uint64
}

// claimPlan is what one claim starts from: full, or the webhooks and
// their cursors, with the generations to check when it ends.
type claimPlan struct {
	full  bool
	ids   []uuid.UUID
	after []time.Time
	gens  map[uuid.UUID]uint64
}

func newClaimCursors() *claimCursors {
	return &claimCursors{at: map[uuid.UUID]cursor{}}
}

// plan says where a claim at now starts.
func (c *claimCursors) plan(now time.Time) claimPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := claimPlan{gens: make(map[uuid.UUID]uint64, len(c.at))}
	for id, k := range c.at {
		p.gens[id] = k.gen
	}
	if len(c.at) == 0 || c.wantFull || now.Sub(c.lastFull) >= fullClaimEvery || now.Before(c.lastFull) {
		p.full = true
		c.lastFull, c.wantFull = now, false
		return p
	}
	for id, k := range c.at {
		p.ids, p.after = append(p.ids, id), append(p.after, k.after)
	}
	return p
}

// claimed moves the cursors of the webhooks claim p took deliveries of to
// the latest due time it took, unless a lowering happened meanwhile. A
// claim from cursors that found nothing of a webhook with room (and was
// not cut short by its limit) drops that webhook's cursor; one that found
// nothing at all asks for a full claim next.
func (c *claimCursors) claimed(p claimPlan, out []ClaimedDelivery, limit int, noRoom func(uuid.UUID) bool) {
	latest := map[uuid.UUID]time.Time{}
	for _, d := range out {
		if d.NextAttemptAt != nil && d.NextAttemptAt.After(latest[d.WebhookID]) {
			latest[d.WebhookID] = *d.NextAttemptAt
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	unchanged := func(id uuid.UUID) bool {
		k, ok := c.at[id]
		gen, had := p.gens[id]
		return ok == had && k.gen == gen
	}
	for id, t := range latest {
		if !unchanged(id) {
			continue
		}
		if k, ok := c.at[id]; !ok || t.After(k.after) {
			c.at[id] = cursor{after: t, gen: k.gen}
		}
	}
	if p.full {
		return
	}
	if len(out) == 0 {
		c.wantFull = true
	}
	if len(out) >= limit {
		return
	}
	for _, id := range p.ids {
		if _, took := latest[id]; !took && !noRoom(id) && unchanged(id) {
			delete(c.at, id)
		}
	}
}

// lower records that deliveries of webhook id due at t became claimable
// (committed): claims from cursors read the webhook from t on, and a claim
// running meanwhile does not move the cursor past t.
func (c *claimCursors) lower(id uuid.UUID, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.at[id]
	if !ok || t.Before(k.after) {
		k.after = t
	}
	k.gen++
	c.at[id] = k
}
