package ratelimit

// Held returns how many keys and buckets l holds, for the tests of the
// sweep.
func Held(l *Limiter) (keys, buckets int) {
	for i := range l.keys.shards {
		sh := &l.keys.shards[i]
		sh.mu.RLock()
		for _, ks := range sh.m {
			ks.mu.Lock()
			keys++
			buckets += len(ks.buckets)
			ks.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return keys, buckets
}
