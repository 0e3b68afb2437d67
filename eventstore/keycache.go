package eventstore

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
)

// KeyCache answers API key lookups from memory: every request authenticates,
// and the lookup was one of the few statements on a create's path. Only
// known keys are cached (an unknown key always asks Postgres, so a new key
// works at once), each for at most TTL, and at most maxKeys of them.
//
// Contract for key revocation (a later feature): a revoke must call Forget
// on every process before it returns (e.g. through LISTEN/NOTIFY); until
// then TTL bounds how long a revoked key keeps working.
type KeyCache struct {
	store *Store
	ttl   time.Duration

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedKey
}

type cachedKey struct {
	principal helpdeskflow.Principal
	expires   time.Time
}

// maxKeys bounds the cache; when full it starts over, which costs one
// lookup per key.
const maxKeys = 100_000

// NewKeyCache returns a cache in front of store's Authenticate; ttl <= 0
// means 10 s.
func NewKeyCache(store *Store, ttl time.Duration) *KeyCache {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return &KeyCache{store: store, ttl: ttl, entries: map[[sha256.Size]byte]cachedKey{}}
}

// Authenticate returns the principal of the API key secret, from memory
// when it was looked up less than TTL ago. Errors are those of
// Store.Authenticate (EUnauthorized for unknown or revoked keys).
func (c *KeyCache) Authenticate(ctx context.Context, secret string) (helpdeskflow.Principal, error) {
	hash := sha256.Sum256([]byte(secret))
	now := time.Now()
	c.mu.Lock()
	entry, ok := c.entries[hash]
	c.mu.Unlock()
	if ok && now.Before(entry.expires) {
		return entry.principal, nil
	}
	p, err := c.store.Authenticate(ctx, secret)
	if err != nil {
		return helpdeskflow.Principal{}, err
	}
	c.mu.Lock()
	if len(c.entries) >= maxKeys {
		clear(c.entries)
	}
	c.entries[hash] = cachedKey{principal: p, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return p, nil
}

// Forget drops the cached entry of the API key secret, so its next request
// asks Postgres.
func (c *KeyCache) Forget(secret string) {
	hash := sha256.Sum256([]byte(secret))
	c.mu.Lock()
	delete(c.entries, hash)
	c.mu.Unlock()
}
