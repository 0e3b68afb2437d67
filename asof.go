package helpdeskflow

import "time"

// AsOf names a past state of a stream for point-in-time reads: the stream
// up to and including Version when Version is above 0, otherwise its
// events in version order up to (not including) the first one that
// occurred after Time. Event times come from the clocks of the processes
// that appended them, under the stream's lock, so they follow the
// versions; a load by time may use a snapshot whose own event occurred at
// or before Time.
type AsOf struct {
	Version int64
	Time    time.Time
}

// ByVersion reports whether a names a version rather than a time.
func (a AsOf) ByVersion() bool { return a.Version > 0 }

// Cut returns the prefix of events, a stream's events from its first in
// version order, that a includes.
func (a AsOf) Cut(events []Event) []Event {
	for i, e := range events {
		if a.ByVersion() && e.Version > a.Version || !a.ByVersion() && e.OccurredAt.After(a.Time) {
			return events[:i]
		}
	}
	return events
}
