package access

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// accessChannel is the LISTEN/NOTIFY channel that announces a new access
// generation: an API key was revoked or workspace settings changed.
const accessChannel = "helpdeskflow_access"

// Cache answers API key lookups from memory, so a request costs no
// database round trip to authenticate, while keeping revocation immediate
// on every API process:
//
//   - A change to keys or workspace settings commits, then takes a new
//     access generation and announces it with NOTIFY (the Tx of the change does
//     this). Every Cache listens, clears itself on each announcement
//     and records the generation it has seen in access_cache_members.
//   - Transact returns only when every member has seen the generation or
//     its trusted_until has passed.
//   - A cache serves from memory only while its listening session is up and
//     its last heartbeat (every HeartbeatInterval) is younger than
//     TrustWindow; otherwise every lookup goes to Postgres. A wedged or
//     partitioned process therefore stops trusting its cache by the time a
//     revoker stops waiting for it.
//   - A lookup that was in flight while the cache was cleared does not
//     store its (possibly stale) answer.
//
// Only known keys are cached (an unknown key always asks Postgres, so a new
// key works at once). The cache also notes when each key was last used and
// writes that to api_keys.last_used_at with each heartbeat.
type Cache struct {
	store *Store
	cfg   CacheConfig
	id    uuid.UUID

	mu           sync.RWMutex
	entries      map[[sha256.Size]byte]*cachedAccess
	epoch        uint64    // incremented by every clear
	trustedUntil time.Time // zero while not listening
}

type cachedAccess struct {
	access   helpdeskflow.Access
	expires  time.Time
	lastUsed atomic.Int64 // unix microseconds; 0 when flushed
}

// CacheConfig tunes an Cache. Zero values take the defaults.
type CacheConfig struct {
	// TTL bounds an entry's age even without announcements. Default 5 min.
	TTL time.Duration
	// HeartbeatInterval is how often the cache confirms its membership
	// and flushes last-used times. Default 2 s.
	HeartbeatInterval time.Duration
	// TrustWindow is how long after a heartbeat the cache keeps serving from
	// memory, and so the longest a change waits for an unresponsive
	// process. Default 6 s; it must exceed HeartbeatInterval.
	TrustWindow time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *CacheConfig) setDefaults() {
	if c.TTL <= 0 {
		c.TTL = 5 * time.Minute
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.TrustWindow <= c.HeartbeatInterval {
		c.TrustWindow = 3 * c.HeartbeatInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// maxCachedKeys bounds the cache; when full it starts over, which costs one
// lookup per key.
const maxCachedKeys = 100_000

// NewCache returns a cache in front of store.Authenticate. It serves
// from memory only while Run runs.
func NewCache(store *Store, cfg CacheConfig) *Cache {
	cfg.setDefaults()
	return &Cache{store: store, cfg: cfg, id: uuid.New(), entries: map[[sha256.Size]byte]*cachedAccess{}}
}

// Authenticate returns what the API key secret grants, from memory when
// possible. Errors are those of Store.Authenticate (EUnauthorized for
// unknown or revoked keys, EUnavailable when Postgres is down).
func (c *Cache) Authenticate(ctx context.Context, secret string) (helpdeskflow.Access, error) {
	if a, ok := c.Cached(secret); ok {
		return a, nil
	}
	c.mu.RLock()
	epoch := c.epoch
	c.mu.RUnlock()
	now := time.Now()
	hash := sha256.Sum256([]byte(secret))
	a, err := c.store.Authenticate(ctx, secret)
	if err != nil {
		return helpdeskflow.Access{}, err
	}
	entry := &cachedAccess{access: a, expires: now.Add(c.cfg.TTL)}
	entry.lastUsed.Store(now.UnixMicro())
	c.mu.Lock()
	// A clear since the lookup began means the answer may predate a
	// revocation: use it for this request (it was true when read), but do
	// not keep it.
	if c.epoch == epoch && time.Now().Before(c.trustedUntil) {
		if len(c.entries) >= maxCachedKeys {
			clear(c.entries) // last-used times not yet flushed are lost: harmless
		}
		c.entries[hash] = entry
	}
	c.mu.Unlock()
	return a, nil
}

// Cached returns what secret grants when the cache holds it and may be
// trusted (see Authenticate), without any I/O; false otherwise, also for
// keys that are unknown or revoked (those are never cached).
func (c *Cache) Cached(secret string) (helpdeskflow.Access, bool) {
	hash := sha256.Sum256([]byte(secret))
	now := time.Now()
	c.mu.RLock()
	entry, ok := c.entries[hash]
	trusted := now.Before(c.trustedUntil)
	c.mu.RUnlock()
	if !ok || !trusted || !now.Before(entry.expires) {
		return helpdeskflow.Access{}, false
	}
	entry.lastUsed.Store(now.UnixMicro())
	return entry.access, true
}

// forget drops every entry and starts a new epoch, so lookups in flight do
// not store their answers. With distrust it also stops serving from memory
// until the next heartbeat.
func (c *Cache) forget(distrust bool) {
	c.mu.Lock()
	clear(c.entries)
	c.epoch++
	if distrust {
		c.trustedUntil = time.Time{}
	}
	c.mu.Unlock()
}

// Run keeps the cache's listening session and heartbeat until ctx ends,
// reconnecting after errors; while disconnected the cache passes every
// lookup to Postgres. It returns nil when ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	for {
		err := c.listen(ctx)
		c.forget(true)
		if ctx.Err() != nil {
			c.leave()
			return nil
		}
		c.cfg.Logger.Warn("access cache lost its Postgres session; authenticating every request against Postgres until it is back", "err", err)
		if !poll.Sleep(ctx, time.Second) {
			c.leave()
			return nil
		}
	}
}

// listen runs one listening session until it fails or ctx ends.
func (c *Cache) listen(ctx context.Context) error {
	pooled, err := c.store.pool.Acquire(ctx)
	if err != nil {
		return pg.Unavailable("acquire access cache connection", err)
	}
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+accessChannel); err != nil {
		return pg.Internal("listen for access changes", err)
	}
	// Listening now: every generation taken from here on is announced to
	// us. Whatever the cache held before may predate earlier ones.
	var seen int64
	if err := conn.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM access_generation`).Scan(&seen); err != nil {
		return pg.Internal("read access generation", err)
	}
	c.forget(true)
	for {
		if err := c.heartbeat(ctx, conn, seen); err != nil {
			return err
		}
		waitCtx, cancel := context.WithTimeout(ctx, c.cfg.HeartbeatInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			g, perr := strconv.ParseInt(n.Payload, 10, 64)
			if perr == nil && g > seen {
				seen = g
			}
			c.forget(false)
		case errors.Is(err, context.DeadlineExceeded):
		default:
			return pg.Internal("wait for access changes", err)
		}
	}
}

// heartbeat records that this process has seen generation seen and extends
// its trust, and writes last-used times.
func (c *Cache) heartbeat(ctx context.Context, conn *pgx.Conn, seen int64) error {
	// The local deadline starts before the statement, the stored one when
	// Postgres runs it, so ours always ends first.
	start := time.Now()
	_, err := conn.Exec(ctx, `INSERT INTO access_cache_members (process_id, generation, trusted_until, heartbeat_at)
		VALUES ($1, $2, now() + $3 * interval '1 microsecond', now())
		ON CONFLICT (process_id) DO UPDATE SET generation = $2, trusted_until = excluded.trusted_until, heartbeat_at = now()`,
		c.id, seen, c.cfg.TrustWindow.Microseconds())
	if err != nil {
		return pg.Internal("access cache heartbeat", err)
	}
	c.mu.Lock()
	c.trustedUntil = start.Add(c.cfg.TrustWindow)
	c.mu.Unlock()
	return c.flushLastUsed(ctx, conn)
}

// flushLastUsed writes the keys' last-used times noted since the last
// flush, and forgets members gone for an hour.
func (c *Cache) flushLastUsed(ctx context.Context, conn *pgx.Conn) error {
	var ids []uuid.UUID
	var times []time.Time
	c.mu.RLock()
	for _, e := range c.entries {
		if us := e.lastUsed.Swap(0); us != 0 {
			ids = append(ids, e.access.KeyID)
			times = append(times, time.UnixMicro(us))
		}
	}
	c.mu.RUnlock()
	batch := &pgx.Batch{}
	if len(ids) > 0 {
		batch.Queue(`UPDATE api_keys k SET last_used_at = u.t FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, t)
			WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.t)`, ids, times)
	}
	batch.Queue(`DELETE FROM access_cache_members WHERE heartbeat_at < now() - interval '1 hour'`)
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return pg.Internal("write API key last-used times", err)
	}
	return nil
}

// leave removes this process from the members, so changes stop waiting
// for it.
func (c *Cache) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.store.pool.Exec(ctx, `DELETE FROM access_cache_members WHERE process_id = $1`, c.id) //nolint:errcheck // its trust expires anyway
}

// accessWaitPoll is how often a change polls for the members' confirmation.
const accessWaitPoll = 5 * time.Millisecond

// accessChangedKey marks a transaction that changed access in its locals.
type accessChangedKey struct{}

// accessChanged is called by changes to API keys or workspace settings:
// after the commit, Transact waits for every API process to drop its
// cached access (invalidateAccess), once per transaction.
func (t *Tx) accessChanged() {
	t.tx.Local(accessChangedKey{}, func() any {
		t.tx.AfterCommit(invalidateAccess)
		return true
	})
}

// invalidateAccess announces a new access generation after a change has
// committed and waits until every Cache has seen it or stopped
// trusting itself. It returns EUnavailable when Postgres fails meanwhile or
// ctx ends first (the change itself is committed either way).
func invalidateAccess(ctx context.Context, db *pg.DB) error {
	// The generation is taken after the commit: a member that has seen it
	// (or any later one) cleared its cache after the change was visible.
	var gen int64
	if err := db.Pool().QueryRow(ctx, `SELECT g, pg_notify('`+accessChannel+`', g::text) FROM nextval('access_generation') AS g`).Scan(&gen, nil); err != nil {
		return pg.Unavailable("announce access change (the change is committed)", err)
	}
	for {
		var waiting int
		err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM access_cache_members WHERE generation < $1 AND trusted_until > now()`, gen).Scan(&waiting)
		if err != nil {
			return pg.Unavailable("confirm access change (the change is committed)", err)
		}
		if waiting == 0 {
			return nil
		}
		if !poll.Sleep(ctx, accessWaitPoll) {
			return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "the change is committed, but not every API process confirmed it before the request ended", Err: ctx.Err()}
		}
	}
}
