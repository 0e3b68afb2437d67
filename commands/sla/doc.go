// Package sla decides which SLA policy applies to a ticket and which SLA
// events are due. It is pure (no I/O, no clock, no randomness): the caller
// passes the workspace's policies, the ticket, its customer and the time,
// and appends the ticket.sla_policy_applied event that Choose returns (built
// with Select, NeedsApply and Applied) and the warnings and breaches that
// Due returns, with Metadata. The ticket commands (commands/tickets) do so
// on every change and in CheckSLA, the SLA timer worker's command; the
// policies are stored by commands/rules.
// The clocks themselves live in the root package (helpdeskflow.TicketSLA),
// kept by helpdeskflow.ApplyTicket from the ticket's events; this comment is
// the reference for how they run.
//
// # Policies
//
// A Policy has up to two targets, first_response and resolution (at least
// one), each due a number of minutes (1 to 525,600) after its clock starts,
// with an optional warning point warn_before_minutes before the deadline
// (0 for none, less than minutes). Its conditions use the automation
// package's condition language over ticket.* and customer.* fields (for
// example ticket.priority in [high, urgent], ticket.tags includes vip,
// customer.custom_fields.tier is gold); event.type, changed and changed_to
// are refused, because a policy is matched against the ticket's state, not a
// command. Empty conditions match every ticket. Of the active policies whose
// conditions match, the first by (position, id) applies; see Select.
//
// # Clocks
//
// Every time below is the OccurredAt of the event that causes it.
//
//   - Start. When a policy is applied to a ticket without an SLA, each of the
//     policy's targets gets a clock started then. If the ticket is pending or
//     on hold, the new clocks start paused; if it is solved (or closed), they
//     start fulfilled. The first-response clock also starts fulfilled when
//     the ticket's latest public message is an agent's (a ticket an agent
//     opened, with no customer reply since): no customer waits for a reply.
//   - Re-application. When a ticket that has an SLA gets a policy again (a
//     new version of its policy, or another policy that now matches), each
//     target both policies have keeps its clock (start, paused time, pause
//     in progress, fulfilment) under the new target minutes, and its
//     recorded warning and breach are cleared, so they are evaluated again
//     against the new due times. A target the new policy lacks is dropped; a
//     target it adds starts as above. A removal (policy_id null: the policy
//     was deleted or no longer matches) drops the SLA entirely.
//   - Pause. A ticket moving to pending or on_hold pauses every running
//     clock (not fulfilled, not already paused). Moving to new or open
//     resumes them: the pause's length is added to the clock's paused time,
//     which moves its deadline and warning point later by as much.
//   - First response. The first public message by an agent fulfils the
//     first-response clock (ending a pause first). Internal notes and
//     customer messages do not.
//   - Solve and reopen. Solving fulfils every clock not yet fulfilled
//     (ending a pause first). Reopening (solved back to open) un-fulfils the
//     resolution clock and counts the time spent solved as paused; the first
//     response stays as it was.
//   - Close. Closing leaves the clocks as they are; nothing is due for a
//     closed ticket any more.
//
// A clock's deadline is its start plus the target's minutes plus its paused
// time; its warning point is that less warn_before_minutes. Neither is known
// while the clock is paused. Durable timers append ticket.sla_warning and
// ticket.sla_breached when these points pass (TicketSLA.Due and NextDue);
// when a deadline passed unnoticed (say, during downtime) only the breach is
// appended, never a late warning.
//
// # States
//
// The API shows each target (TicketSLA.Status) as breached when its breach
// was recorded, when it runs and its deadline has passed, or when it was
// fulfilled after its deadline; otherwise fulfilled when met, paused while
// paused, warning once its warning point has passed, and active before.
package sla
