package chaos

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// opKind is what one recorded ticket operation did.
type opKind int

const (
	// opInit is the ticket's creation: its output is the first state.
	opInit opKind = iota
	// opRead is GET /v1/tickets/{id} (the composite read).
	opRead
	// opWrite is PATCH /v1/tickets/{id} setting the subject, with If-Match
	// when IfMatch is not 0.
	opWrite
)

// outcome is how a request ended, as the client saw it.
type outcome int

const (
	// outcomeOK is a 2xx answer.
	outcomeOK outcome = iota
	// outcomePrecondition is 412: the If-Match version was stale, and
	// nothing happened.
	outcomePrecondition
	// outcomeUnknown is a timeout, a reset connection or a 5xx: the write
	// may or may not have happened, now or later.
	outcomeUnknown
)

// ticketInput is an operation's request.
type ticketInput struct {
	Ticket  string
	Kind    opKind
	Subject string // opWrite: the subject set
	IfMatch int64  // opWrite: the expected version, 0 for none
	API     int    // which API process served it
}

// ticketState is the model of a ticket: a register of the patched field and
// the stream's version. It is also an operation's output.
type ticketState struct {
	Subject string
	Version int64
}

// ticketOutput is an operation's answer.
type ticketOutput struct {
	Outcome outcome
	State   ticketState // outcomeOK: the ticket as answered
}

// ticketModel is the ticket as porcupine checks it, one partition per
// ticket. A read must show the state; a write without If-Match, or with
// the current version, sets the subject and increments the version; a 412
// is legal only when the version differed, and changes nothing; an unknown
// outcome may have happened or not. Recorded with an infinite return time
// (see pendingReturn), porcupine may linearize such a write anywhere after
// its call, including after everything else, which is "it did not happen".
var ticketModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byTicket := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			id := op.Input.(ticketInput).Ticket
			if _, ok := byTicket[id]; !ok {
				order = append(order, id)
			}
			byTicket[id] = append(byTicket[id], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, id := range order {
			out = append(out, byTicket[id])
		}
		return out
	},
	Init: func() interface{} { return ticketState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(ticketState), input.(ticketInput), output.(ticketOutput)
		switch in.Kind {
		case opInit:
			return true, out.State
		case opRead:
			return out.State == st, st
		}
		applies := in.IfMatch == 0 || in.IfMatch == st.Version
		next := ticketState{Subject: in.Subject, Version: st.Version + 1}
		switch out.Outcome {
		case outcomeOK:
			return applies && out.State == next, next
		case outcomePrecondition:
			return !applies, st
		default: // unknown: it happened if it could have
			if applies {
				return true, next
			}
			return true, st
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(ticketInput), output.(ticketOutput)
		result := fmt.Sprintf("%q v%d", out.State.Subject, out.State.Version)
		switch out.Outcome {
		case outcomePrecondition:
			result = "412"
		case outcomeUnknown:
			result = "unknown"
		}
		switch in.Kind {
		case opInit:
			return "create -> " + result
		case opRead:
			return fmt.Sprintf("api%d GET -> %s", in.API+1, result)
		}
		if in.IfMatch != 0 {
			return fmt.Sprintf("api%d PATCH %q If-Match %d -> %s", in.API+1, in.Subject, in.IfMatch, result)
		}
		return fmt.Sprintf("api%d PATCH %q -> %s", in.API+1, in.Subject, result)
	},
	DescribeState: func(state interface{}) string {
		st := state.(ticketState)
		return fmt.Sprintf("%q v%d", st.Subject, st.Version)
	},
}

// pendingReturn is the return time of an operation whose outcome is
// unknown: it never returned, so it may take effect at any later time.
const pendingReturn = math.MaxInt64

// linearizability is the result of checking one phase's ticket histories.
type linearizability struct {
	Operations int
	Unknown    int // operations with an unknown outcome
	Result     porcupine.CheckResult
	// Visualization is the HTML file porcupine wrote for a history that is
	// not linearizable (or could not be decided in time), else "".
	Visualization string
}

// checkLinearizable checks history against ticketModel within timeout; when
// it is not linearizable (or the check timed out) it writes porcupine's
// visualisation into dir, named after name.
func checkLinearizable(history []porcupine.Operation, timeout time.Duration, dir, name string) (linearizability, error) {
	res := linearizability{Operations: len(history)}
	for _, op := range history {
		if op.Output.(ticketOutput).Outcome == outcomeUnknown {
			res.Unknown++
		}
	}
	// Stable client ids for the visualisation: one row per client.
	sort.SliceStable(history, func(i, j int) bool { return history[i].Call < history[j].Call })
	result, info := porcupine.CheckOperationsVerbose(ticketModel, history, timeout)
	res.Result = result
	if result == porcupine.Ok {
		return res, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	res.Visualization = filepath.Join(dir, "linearizability-"+name+".html")
	if err := porcupine.VisualizePath(ticketModel, info, res.Visualization); err != nil {
		return res, fmt.Errorf("write the visualisation: %w", err)
	}
	return res, nil
}
