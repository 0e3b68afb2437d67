package chaos

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sync"
	"time"
)

// writeKind is what a recorded write did.
type writeKind string

const (
	writeCreate  writeKind = "create"
	writeUpdate  writeKind = "update"
	writeMessage writeKind = "message"
)

// write is one write the load made, identified by a token that only its
// event carries (in the subject or the message body).
type write struct {
	Token   string
	Kind    writeKind
	Phase   int
	Outcome outcome // outcomeOK: acknowledged (201 or 200); else unknown or refused
	Refused bool    // a definite 4xx: it must not be stored
}

// ledger records the writes the load made, for the checks at the end. It
// is safe for concurrent use.
type ledger struct {
	mu     sync.Mutex
	writes []write
}

func (l *ledger) add(w write) {
	l.mu.Lock()
	l.writes = append(l.writes, w)
	l.mu.Unlock()
}

func (l *ledger) all() []write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]write(nil), l.writes...)
}

// tokenPattern matches the tokens newToken makes.
var tokenPattern = regexp.MustCompile(`chz[0-9a-f]{20}`)

// newToken returns a token unique to one write.
func newToken() string {
	b := make([]byte, 10)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read does not fail
	return "chz" + hex.EncodeToString(b)
}

// storedEvent is an event of the event store as the checks read it.
type storedEvent struct {
	ID         string
	Type       string
	Data       string
	OccurredAt time.Time
}

// tokenCounts counts, per token, the events whose data writes it: carries
// it anywhere but as the old value of a change ({"old": …, "new": …}),
// where a later update names what an earlier write set.
func tokenCounts(events []storedEvent) map[string]int {
	counts := map[string]int{}
	for _, e := range events {
		seen := map[string]bool{}
		var data any
		if err := json.Unmarshal([]byte(e.Data), &data); err != nil {
			data = e.Data
		}
		collectTokens(data, seen)
		for t := range seen {
			counts[t]++
		}
	}
	return counts
}

// collectTokens adds the tokens in v, but not under an "old" key, to seen.
func collectTokens(v any, seen map[string]bool) {
	switch v := v.(type) {
	case string:
		for _, t := range tokenPattern.FindAllString(v, -1) {
			seen[t] = true
		}
	case []any:
		for _, x := range v {
			collectTokens(x, seen)
		}
	case map[string]any:
		for k, x := range v {
			if k != "old" {
				collectTokens(x, seen)
			}
		}
	}
}

// storeTally is, for one phase, how the writes made during it ended up in
// the event store.
type storeTally struct {
	Acknowledged int // 201/200 answers
	Unknown      int // no answer (timeout, reset, 5xx) even after retries
	UnknownKept  int // of those, how many are stored (once)
	Lost         int // acknowledged but not stored
	Duplicated   int // stored more than once
	Phantom      int // refused (4xx) but stored
}

// Failed reports whether the tally shows a loss, a duplicate or a phantom.
func (t storeTally) Failed() bool { return t.Lost+t.Duplicated+t.Phantom > 0 }

// tallyStore checks writes against counts (see tokenCounts), per phase:
// every acknowledged write must be stored exactly once, a write of unknown
// outcome at most once, a refused one never.
func tallyStore(writes []write, counts map[string]int, phases int) []storeTally {
	out := make([]storeTally, phases)
	for _, w := range writes {
		t := &out[w.Phase]
		n := counts[w.Token]
		if n > 1 {
			t.Duplicated++
		}
		switch {
		case w.Refused:
			if n > 0 {
				t.Phantom++
			}
		case w.Outcome == outcomeOK:
			t.Acknowledged++
			if n == 0 {
				t.Lost++
			}
		default:
			t.Unknown++
			if n > 0 {
				t.UnknownKept++
			}
		}
	}
	return out
}
