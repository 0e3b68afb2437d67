package http

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// Positions: read-your-writes for lists. Every response to a request that
// appended events carries X-HDF-Position, a token for the event store
// position of the last event it appended; list reads take it back as
// ?min_position= and answer once the read model holds everything up to it
// (waiting up to ?max_wait= seconds), else 503 projection_behind. Every
// list response carries the X-HDF-Position it reflects.
//
// A token is the position (transaction id and sequence number, 16 bytes)
// sealed with authenticated encryption and bound to the workspace, so it
// tells nothing of the write volume behind it and cannot be forged, altered
// or used by another workspace.
const (
	headerPosition = "X-HDF-Position"

	// DefaultMaxWait and MaxMaxWait are max_wait's default and upper
	// bound.
	DefaultMaxWait = 2 * time.Second
	MaxMaxWait     = 10 * time.Second

	// projectionRetryAfter is the Retry-After of projection_behind, in
	// seconds.
	projectionRetryAfter = "1"
)

// PositionSealer seals and opens position tokens with authenticated
// encryption bound to additional data (*secretbox.Keyring).
type PositionSealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// ReadPositions tells how far the read model has got
// (*projections.PositionWatcher): Current cheaply (a copy shared by the
// process's requests), WaitFor until it reaches a position or maxWait
// passes, reporting whether it did and the position it saw last.
type ReadPositions interface {
	Current(ctx context.Context) (helpdeskflow.Position, error)
	WaitFor(ctx context.Context, p helpdeskflow.Position, maxWait time.Duration) (helpdeskflow.Position, bool, error)
}

// positionsEnabled reports whether the server gives and takes positions.
func (s *Server) positionsEnabled() bool {
	return s.cfg.PositionSealer != nil && s.cfg.ReadPositions != nil
}

// positionAAD binds a token to its workspace.
func positionAAD(workspaceID uuid.UUID) []byte {
	return append([]byte("hdf-position\x00"), workspaceID[:]...)
}

// positionToken is the token of p for workspaceID ("" when it cannot be
// sealed: the response then carries none).
func (s *Server) positionToken(workspaceID uuid.UUID, p helpdeskflow.Position) string {
	var plain [16]byte
	binary.BigEndian.PutUint64(plain[:8], p.TxID)
	binary.BigEndian.PutUint64(plain[8:], uint64(p.Seq))
	sealed, err := s.cfg.PositionSealer.Seal(plain[:], positionAAD(workspaceID))
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(sealed)
}

// openPosition reads a token positionToken made for workspaceID.
func (s *Server) openPosition(workspaceID uuid.UUID, token string) (helpdeskflow.Position, bool) {
	sealed, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return helpdeskflow.Position{}, false
	}
	plain, err := s.cfg.PositionSealer.Open(sealed, positionAAD(workspaceID))
	if err != nil || len(plain) != 16 {
		return helpdeskflow.Position{}, false
	}
	return helpdeskflow.Position{TxID: binary.BigEndian.Uint64(plain[:8]), Seq: int64(binary.BigEndian.Uint64(plain[8:]))}, true
}

// setWritePosition sets X-HDF-Position on a response to a request that
// appended events (recorded in writes), for the request's workspace.
func (s *Server) setWritePosition(h http.Header, r *http.Request, writes *helpdeskflow.WriteRecorder) {
	p, ok := writes.Last()
	workspaceID := principalOf(r.Context()).WorkspaceID
	if !ok || !s.positionsEnabled() || workspaceID == uuid.Nil {
		return
	}
	if token := s.positionToken(workspaceID, p); token != "" {
		h.Set(headerPosition, token)
	}
}

// listPosition is what a list read asks of the read model: min_position
// (set: wait for it) and max_wait.
type listPosition struct {
	min     helpdeskflow.Position
	set     bool
	maxWait time.Duration
}

// readListPosition reads min_position and max_wait from q for workspaceID,
// appending a problem naming each bad one to problems.
func (s *Server) readListPosition(q url.Values, workspaceID uuid.UUID, problems []helpdeskflow.FieldProblem) (listPosition, []helpdeskflow.FieldProblem) {
	lp := listPosition{maxWait: DefaultMaxWait}
	if v := q.Get("max_wait"); v != "" {
		seconds, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(seconds) || seconds < 0 || seconds > MaxMaxWait.Seconds() {
			problems = append(problems, helpdeskflow.FieldProblem{Field: "max_wait",
				Problem: fmt.Sprintf("must be a number of seconds from 0 to %d", int(MaxMaxWait.Seconds()))})
		} else {
			lp.maxWait = time.Duration(seconds * float64(time.Second))
		}
	}
	if q.Has("min_position") {
		switch p, ok := s.openPositionParam(q.Get("min_position"), workspaceID); {
		case !s.positionsEnabled():
			problems = append(problems, helpdeskflow.FieldProblem{Field: "min_position", Problem: "positions are not available on this server"})
		case !ok:
			problems = append(problems, helpdeskflow.FieldProblem{Field: "min_position",
				Problem: "must be an X-HDF-Position value this API returned to this workspace, unchanged"})
		default:
			lp.min, lp.set = p, true
		}
	}
	return lp, problems
}

// openPositionParam opens a min_position token (false when positions are
// off or it is not a token of workspaceID).
func (s *Server) openPositionParam(token string, workspaceID uuid.UUID) (helpdeskflow.Position, bool) {
	if !s.positionsEnabled() || token == "" {
		return helpdeskflow.Position{}, false
	}
	return s.openPosition(workspaceID, token)
}

// awaitReadModel makes a list read reflect lp: it waits (up to lp.maxWait)
// until the read model holds lp.min, and sets X-HDF-Position to the
// position the read model held when the list's query starts. It returns
// EProjectionBehind (with Retry-After and the current X-HDF-Position set)
// when the wait ends first, and the read model's errors (EUnavailable).
// Without positions it does nothing.
func (s *Server) awaitReadModel(w http.ResponseWriter, r *http.Request, lp listPosition) error {
	if !s.positionsEnabled() {
		return nil
	}
	workspaceID := principalOf(r.Context()).WorkspaceID
	var current helpdeskflow.Position
	var err error
	if lp.set {
		var reached bool
		current, reached, err = s.cfg.ReadPositions.WaitFor(r.Context(), lp.min, lp.maxWait)
		if err != nil {
			return err
		}
		if !reached {
			w.Header().Set(headerPosition, s.positionToken(workspaceID, current))
			w.Header().Set(headerRetryAfter, projectionRetryAfter)
			return helpdeskflow.Errorf(helpdeskflow.EProjectionBehind,
				"the read model has not reached min_position within max_wait (%s); X-HDF-Position is where it is, retry after %s s",
				lp.maxWait, projectionRetryAfter)
		}
	} else if current, err = s.cfg.ReadPositions.Current(r.Context()); err != nil {
		return nil // the list answers without a position; its own query reports ClickHouse's state
	}
	if token := s.positionToken(workspaceID, current); token != "" {
		w.Header().Set(headerPosition, token)
	}
	return nil
}
