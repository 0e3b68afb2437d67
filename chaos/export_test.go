package chaos

import "time"

// What the external tests of the checks use.

type (
	Write           = write
	StoredEvent     = storedEvent
	TicketInput     = ticketInput
	TicketOutput    = ticketOutput
	TicketState     = ticketState
	DeliveryRecord  = deliveryRecord
	Availability    = availability
	Linearizability = linearizability
)

var (
	TallyStore          = tallyStore
	TokenCounts         = tokenCounts
	NewToken            = newToken
	CheckLinearizable   = checkLinearizable
	TallyWebhooks       = tallyWebhooks
	TallyProjection     = tallyProjection
	PendingReturn       = int64(pendingReturn)
	WriteCreate         = writeCreate
	WriteUpdate         = writeUpdate
	OutcomeOK           = outcomeOK
	OutcomeUnknown      = outcomeUnknown
	OutcomePrecondition = outcomePrecondition
	OpInit              = opInit
	OpRead              = opRead
	OpWrite             = opWrite
)

// Record records one request's availability.
func (a *availability) Record(api, phase int, start, end time.Time, ok bool) {
	a.record(api, phase, start, end, ok)
}

// MarkDown records a window a process was known down.
func (a *availability) MarkDown(api int, start, end time.Time) { a.markDown(api, start, end) }

// Tally is availability.tally.
func (a *availability) Tally(phases int) []availabilityTally { return a.tally(phases) }
