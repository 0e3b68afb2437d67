package helpdeskflow

import (
	"encoding/json"

	"github.com/google/uuid"
)

// SnapshotFormat is the version of the snapshot encoding: the JSON of a
// Ticket or Customer exactly as ApplyTicket or ApplyCustomer leave it.
// Bump it whenever those types (or the types they hold) or the fold
// functions change what a fold produces: loads ignore snapshots of any
// other format and fold the whole stream instead, so an old snapshot can
// never stand in for a state the current code would fold differently. A
// test lists the fields each format holds. Format 2 added
// Customer.ExternalID.
const SnapshotFormat = 2

// Snapshot is a stream's folded state at Version, kept so that a load
// folds only the events after it. State is the encoding (EncodeSnapshot)
// of a Ticket or a Customer; Format is the SnapshotFormat it was written
// with.
type Snapshot struct {
	StreamID    uuid.UUID
	WorkspaceID uuid.UUID
	StreamType  string
	Version     int64
	Format      int
	State       []byte
}

// StreamTail is a stream as a load from its snapshot finds it: Snapshot
// (nil when the stream has none of the current SnapshotFormat) and the
// events after it in version order (every event when Snapshot is nil).
type StreamTail struct {
	Snapshot *Snapshot
	Events   []Event
}

// StreamType returns the type of the tail's stream, "" for an empty tail.
func (t StreamTail) StreamType() string {
	switch {
	case t.Snapshot != nil:
		return t.Snapshot.StreamType
	case len(t.Events) > 0:
		return t.Events[0].StreamType
	}
	return ""
}

// StreamID returns the id of the tail's stream, uuid.Nil for an empty
// tail.
func (t StreamTail) StreamID() uuid.UUID {
	switch {
	case t.Snapshot != nil:
		return t.Snapshot.StreamID
	case len(t.Events) > 0:
		return t.Events[0].StreamID
	}
	return uuid.Nil
}

// InWorkspace reports whether the tail is not empty and its stream belongs
// to workspace workspaceID.
func (t StreamTail) InWorkspace(workspaceID uuid.UUID) bool {
	switch {
	case t.Snapshot != nil:
		return t.Snapshot.WorkspaceID == workspaceID
	case len(t.Events) > 0:
		return t.Events[0].WorkspaceID == workspaceID
	}
	return false
}

// EncodeSnapshot encodes state, a Ticket or a Customer, for a Snapshot.
// DecodeSnapshot gives back a deeply equal value.
func EncodeSnapshot(state any) ([]byte, error) {
	b, err := MarshalJSON(state)
	if err != nil {
		return nil, &Error{Code: EInternal, Message: "encode snapshot", Err: err}
	}
	return b, nil
}

// DecodeSnapshot decodes a snapshot's state into state, a *Ticket or a
// *Customer; EInternal when it cannot.
func DecodeSnapshot(data []byte, state any) error {
	if err := json.Unmarshal(data, state); err != nil {
		return &Error{Code: EInternal, Message: "decode snapshot", Err: err}
	}
	return nil
}
