package ratelimit

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Shared is where the API processes exchange what each admitted and denied,
// so that a key's limit and a workspace's soft throttle hold across them.
// Times and slots are counted from Config.Origin, which every process must
// share. store/ratelimits implements it on Postgres.
type Shared interface {
	// Exchange stores ex's counts and streaks as Node's (a count replaces
	// Node's earlier count of the same slot; counts only grow), forgets
	// counts and streaks whose Expires is before ex.Now, and returns the
	// other nodes' counts of ex.Buckets, summed per slot, and their
	// streaks of ex.Workspaces, one per node. It must be safe for
	// concurrent use by several processes.
	Exchange(ctx context.Context, ex helpdeskflow.RateLimitExchange) (helpdeskflow.RateLimitExchanged, error)
}

// bucketID names a bucket across processes.
type bucketID struct {
	key      uuid.UUID
	category string
	window   time.Duration
}

// sent is a bucket whose admissions an exchange carries, to mark it dirty
// again when the exchange fails.
type sent struct {
	ks        *keyState
	b         *bucket
	window    int64
	dirtyFrom int64
}

// Run exchanges counts through Config.Shared every Config.SyncEvery until
// ctx ends, then returns nil. Without Config.Shared it only waits for ctx.
// A failed exchange is counted in
// helpdeskflow_rate_limit_sync_failures_total and retried at the next tick;
// meanwhile requests are limited with what this process knows.
func (l *Limiter) Run(ctx context.Context) error {
	if l.cfg.Shared == nil {
		<-ctx.Done()
		return nil
	}
	ticker := time.NewTicker(l.cfg.SyncEvery)
	defer ticker.Stop()
	failing := false
	for {
		err := l.Sync(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			l.cfg.Logger.Warn("rate limits: exchanging counts with the other API processes failed; limiting with this process's counts until it works again", "err", err)
			failing = true
		case err == nil && failing:
			l.cfg.Logger.Info("rate limits: exchanging counts with the other API processes works again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Sync makes one exchange through Config.Shared (nothing without it): it
// sends the admissions of this process's buckets since the last successful
// exchange and its workspaces' changed streaks, and takes in the other
// processes' counts of every bucket and streaks of every workspace it
// holds. Its error is the exchange's (also counted in
// helpdeskflow_rate_limit_sync_failures_total); what was not sent is sent
// by the next call. Calls are serialized.
func (l *Limiter) Sync(ctx context.Context) error {
	if l.cfg.Shared == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	_, t := l.clock()
	ex := helpdeskflow.RateLimitExchange{Node: l.node, Now: t}
	var carried []sent
	for i := range l.keys.shards {
		sh := &l.keys.shards[i]
		sh.mu.RLock()
		for id, ks := range sh.m {
			ks.mu.Lock()
			kt := ks.observe(t)
			for _, b := range ks.buckets {
				if slices.Contains(l.cfg.Unshared, b.category) {
					continue
				}
				b.advance(kt)
				window := time.Duration(b.window)
				oldest := b.head - slotsPerWindow
				ex.Buckets = append(ex.Buckets, helpdeskflow.RateLimitBucket{Key: id, Category: b.category, Window: window, FromSlot: oldest})
				if !b.dirty {
					continue
				}
				for s := max(b.dirtyFrom, oldest); s <= b.head; s++ {
					if n := b.counts[ringIndex(s)]; n > 0 {
						ex.Counts = append(ex.Counts, helpdeskflow.RateLimitSlot{Key: id, Category: b.category, Window: window, Slot: s, Count: int64(n),
							Expires: b.window + (s+1)*b.width})
					}
				}
				carried = append(carried, sent{ks: ks, b: b, window: b.window, dirtyFrom: b.dirtyFrom})
				b.dirty = false
			}
			ks.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	var carriedStreaks []*workspaceState
	keep := int64(max(l.cfg.StreakGap, l.cfg.Recovery))
	for i := range l.workspaces.shards {
		sh := &l.workspaces.shards[i]
		sh.mu.RLock()
		for id, ws := range sh.m {
			ws.mu.Lock()
			ex.Workspaces = append(ex.Workspaces, id)
			if ws.dirty && ws.streak {
				ex.Streaks = append(ex.Streaks, helpdeskflow.RateLimitStreak{Workspace: id, Start: ws.streakStart, LastDenial: ws.lastDenial, Expires: ws.lastDenial + keep})
				carriedStreaks = append(carriedStreaks, ws)
			}
			ws.dirty = false
			ws.mu.Unlock()
		}
		sh.mu.RUnlock()
	}

	ctx, cancel := context.WithTimeout(ctx, l.cfg.SyncTimeout)
	got, err := l.cfg.Shared.Exchange(ctx, ex)
	cancel()
	if err != nil {
		l.syncFailures.Inc()
		l.redirty(carried, carriedStreaks)
		return err
	}
	l.takeIn(ex, got)
	l.syncs.Inc()
	return nil
}

// redirty marks what a failed exchange carried as not sent.
func (l *Limiter) redirty(carried []sent, streaks []*workspaceState) {
	for _, c := range carried {
		c.ks.mu.Lock()
		if c.b.window == c.window && (!c.b.dirty || c.b.dirtyFrom > c.dirtyFrom) {
			c.b.dirty, c.b.dirtyFrom = true, c.dirtyFrom
		}
		c.ks.mu.Unlock()
	}
	for _, ws := range streaks {
		ws.mu.Lock()
		ws.dirty = true
		ws.mu.Unlock()
	}
}

// takeIn replaces the other processes' counts and streaks with got's.
func (l *Limiter) takeIn(ex helpdeskflow.RateLimitExchange, got helpdeskflow.RateLimitExchanged) {
	now, t := l.clock()
	counts := map[bucketID][]helpdeskflow.RateLimitSlot{}
	for _, c := range got.Counts {
		id := bucketID{c.Key, c.Category, c.Window}
		counts[id] = append(counts[id], c)
	}
	for _, bs := range ex.Buckets {
		ks := l.keys.load(bs.Key)
		if ks == nil {
			continue
		}
		if ks.lock() {
			if b := ks.bucket(bs.Category); b != nil && b.window == int64(bs.Window) {
				b.advance(ks.observe(t))
				b.setOthers(counts[bucketID{bs.Key, bs.Category, bs.Window}])
			}
		}
		ks.unlock()
	}
	streaks := map[uuid.UUID][]helpdeskflow.RateLimitStreak{}
	for _, s := range got.Streaks {
		streaks[s.Workspace] = append(streaks[s.Workspace], s)
	}
	for _, id := range ex.Workspaces {
		ws := l.workspaces.load(id)
		if ws == nil {
			continue
		}
		if ws.lock() {
			ws.others = streaks[id]
			l.evaluateLocked(ws, now, ws.observe(t))
		}
		ws.unlock()
	}
}
