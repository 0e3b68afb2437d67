package helpdeskflow

import (
	"context"
	"sync"
)

// WriteRecorder collects the event store positions of what one request
// wrote: the event store notes, after each commit, the position of the
// last event the transaction appended (NoteWrite) in the recorder its
// context carries (RecordWrites). It is safe for concurrent use.
type WriteRecorder struct {
	mu   sync.Mutex
	last Position
	set  bool
}

type writeRecorderKey struct{}

// RecordWrites returns ctx carrying a new WriteRecorder, and the recorder:
// every transaction committed under the returned context (or one derived
// from it) that appended events notes its last event's position there.
func RecordWrites(ctx context.Context) (context.Context, *WriteRecorder) {
	r := &WriteRecorder{}
	return context.WithValue(ctx, writeRecorderKey{}, r), r
}

// NoteWrite notes in ctx's WriteRecorder, if it carries one, that events up
// to position p were committed; the recorder keeps the latest position.
func NoteWrite(ctx context.Context, p Position) {
	r, _ := ctx.Value(writeRecorderKey{}).(*WriteRecorder)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.set || r.last.Less(p) {
		r.last, r.set = p, true
	}
}

// Last returns the latest position noted, and false when none was (the
// request wrote no event).
func (r *WriteRecorder) Last() (Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.set
}
