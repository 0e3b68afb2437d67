package main

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

// TestFollowReadCache: with the default limit applied, the memory limit
// follows what the read cache holds (memoryLimit plus its bytes), up as it
// fills and down as it empties; with the operator's GOMEMLIMIT it is left
// alone.
func TestFollowReadCache(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev); memoryLimitTuned.Store(false) })
	debug.SetMemoryLimit(memoryLimit)

	var cacheBytes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	follow := func() {
		done = make(chan struct{})
		ctx, cancel = context.WithCancel(context.Background())
		go func() { followReadCache(ctx, cacheBytes.Load, time.Millisecond); close(done) }()
	}
	waitFor := func(want int64) {
		t.Helper()
		for debug.SetMemoryLimit(-1) != want {
			select {
			case <-done:
				t.Fatalf("memory limit %d, want %d", debug.SetMemoryLimit(-1), want)
			case <-time.After(time.Millisecond):
			}
		}
	}

	memoryLimitTuned.Store(false) // the operator set GOMEMLIMIT: followReadCache returns at once
	cacheBytes.Store(64 << 20)
	follow()
	<-done
	if got := debug.SetMemoryLimit(-1); got != memoryLimit {
		t.Fatalf("memory limit %d with GOMEMLIMIT set, want %d untouched", got, memoryLimit)
	}
	cancel()

	memoryLimitTuned.Store(true)
	follow()
	waitFor(memoryLimit + 64<<20)
	cacheBytes.Store(10 << 20)
	waitFor(memoryLimit + 10<<20)
	cancel()
	<-done
	if got := memoryLimitWithCache(-1); got != memoryLimit {
		t.Fatalf("memoryLimitWithCache(-1) = %d, want %d", got, memoryLimit)
	}
}
