package main

import (
	"os"
	"runtime/debug"
)

// The garbage collector's defaults, chosen with `make bench` (see the
// README's "Memory and garbage collection"). Most of what a request
// allocates dies with it and the live heap of a busy process is a few tens
// of MiB, so Go's default GOGC=100 collects ten times a second under load;
// gcPercent lets the heap grow further between collections, and
// memoryLimit keeps the process's memory bounded, collecting more often
// only when the heap nears it. The operator's GOGC and GOMEMLIMIT win (set
// GOMEMLIMIT to about 80% of the container's memory).
const (
	gcPercent   = 300
	memoryLimit = 160 << 20
)

// tuneGC applies the defaults above unless GOGC or GOMEMLIMIT is set (the
// runtime has then applied it already).
func tuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(memoryLimit)
	}
}
