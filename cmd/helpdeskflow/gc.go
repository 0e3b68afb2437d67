package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// The garbage collector's defaults, chosen with `make bench` (see the
// README's "Memory and garbage collection"). Most of what a request
// allocates dies with it and the live heap of a busy process is a few tens
// of MiB, so Go's default GOGC=100 collects ten times a second under load;
// gcPercent lets the heap grow further between collections, and
// memoryLimit keeps the process's memory bounded, collecting more often
// only when the heap nears it. What the read cache holds is added to
// memoryLimit as it fills (followReadCache): a full cache is live heap the
// collector would otherwise scan every few MiB of garbage. The operator's
// GOGC and GOMEMLIMIT win (set GOMEMLIMIT to about 80% of the container's
// memory).
const (
	gcPercent   = 300
	memoryLimit = 160 << 20
)

// memoryLimitTuned is set by tuneGC when it applied memoryLimit, so the
// limit is the process's to follow (see followReadCache).
var memoryLimitTuned atomic.Bool

// tuneGC applies the defaults above unless GOGC or GOMEMLIMIT is set (the
// runtime has then applied it already).
func tuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(memoryLimit)
		memoryLimitTuned.Store(true)
	}
}

// memoryLimitWithCache is the default memory limit of a process whose
// read cache holds cacheBytes: memoryLimit plus those bytes.
func memoryLimitWithCache(cacheBytes int64) int64 {
	return memoryLimit + max(cacheBytes, 0)
}

// followReadCache sets the memory limit to memoryLimitWithCache of what
// cacheBytes reports, every interval until ctx ends, when tuneGC applied
// the default limit (not when the operator set GOMEMLIMIT); it changes
// the limit only when the cache has grown or shrunk by 1 MiB or more.
func followReadCache(ctx context.Context, cacheBytes func() int64, interval time.Duration) {
	if !memoryLimitTuned.Load() {
		return
	}
	var applied int64
	// The pass never fails, so poll.Every's logger never logs.
	poll.Every(ctx, interval, slog.Default(), "follow the read cache", func(context.Context) (int, error) {
		if b := cacheBytes(); b-applied >= 1<<20 || applied-b >= 1<<20 {
			debug.SetMemoryLimit(memoryLimitWithCache(b))
			applied = b
		}
		return 0, nil
	})
}
