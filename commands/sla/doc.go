// Package sla decides which SLA policy applies to a ticket and which SLA
// events are due. It is pure (no I/O, no clock, no randomness): the caller
// passes the workspace's policies, the ticket, its customer and the time,
// and appends the ticket.sla_policy_applied event that Choose returns (built
// with Select, NeedsApply and Applied) and the warnings and breaches that
// Due returns, with Metadata. The ticket commands (commands/tickets) do so
// on every change and in CheckSLA, the SLA timer worker's command; the
// policies are stored by commands/rules.
// The clocks themselves, and the rules by which they run, fold with the
// ticket in the root package: see helpdeskflow.TicketSLA (sla.go there),
// kept by helpdeskflow.ApplyTicket from the ticket's events.
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
package sla
