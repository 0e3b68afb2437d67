// Package automation is the synchronous rule engine: given a ticket command's
// before and after state, the customer and the workspace's rules, Run decides
// which rules fire and what they change. It is pure (no I/O, no clock, no
// randomness, no map iteration that reaches the output), so the same input
// and rules always give the same Result; the command handler appends the
// Effects as ticket.updated events in the same append as the command's own
// events, with the rule id and version in their metadata, and hands the Async
// actions to the dispatcher as events.
//
// # Conditions
//
// A rule matches when every condition of Conditions.All holds and, if
// Conditions.Any is not empty, at least one of Conditions.Any holds. A rule
// without conditions matches every command. Fields:
//
//	ticket.subject, ticket.body (the text of the latest message), ticket.channel,
//	ticket.type                                 text
//	ticket.priority, ticket.status              text limited to the root package's values
//	ticket.team, ticket.assignee_id             text or null (unassigned)
//	ticket.tags, customer.tags                  list of tags
//	ticket.custom_fields.<name>                 any JSON value (missing is null)
//	customer.email, customer.email_domain (the part after the last @, lowercase),
//	customer.name                               text
//	customer.custom_fields.<name>, customer.metadata.<name>,
//	customer.linked_profiles.<provider>.data.<key>   any JSON value (missing is null)
//	event.type                                  ticket.created, ticket.updated or ticket.message_added
//
// Operators, and the field kinds they apply to:
//
//	is, is_not            text, null or any: strings compare case-insensitively, a number
//	                      equals a string that parses as the same number, null equals a
//	                      missing value
//	contains, not_contains  text or any: case-insensitive substring (a non-string never contains)
//	includes, not_includes  lists (a tag, case-insensitive), or any holding a JSON list
//	in                    the value is a non-empty list; holds when the field "is" one of them
//	greater_than, less_than any: numbers, or strings that parse as numbers; anything else is false
//	changed               ticket fields only: the field differs from Input.Before (exactly,
//	                      not case-folded), or the command is a create (Before is nil)
//	changed_to            changed, and the field now "is" the value
//
// Each negative operator is exactly the negation of its positive one, so
// is_not "x" holds for a missing field. Validate reports an unknown field or
// operator, an operator not valid for the field's kind, and a value of the
// wrong type; changed takes no value.
//
// # Actions
//
//	add_tags, remove_tags   list of tags (trimmed and lowercased like the command's tags)
//	set_priority            low, normal, high or urgent
//	set_status              new, open, pending, on_hold, solved or closed
//	assign_team             a team name, or null to unassign
//	assign_agent            an agent id, or null to unassign
//	set_custom_field        {"name": "...", "value": string, number, boolean or null (removes)}
//	notify_slack            {"channel": "#x", "message": "..."}: an AsyncAction, no ticket change
//
// One rule may not set the same field twice, nor add and remove the same tag.
//
// # Execution
//
// Only active rules run, ordered by (Position, ID), so the order never depends
// on the order of the rules slice. Rules run in passes: in each pass, every
// rule that has not fired yet in this command is evaluated against the ticket
// as it was at the start of the pass; each matching rule fires (at most once
// per command). After the pass, the actions of the firing rules are applied in
// firing order, and a new pass runs; the command ends with the first pass in
// which nothing fires. changed and changed_to always compare with
// Input.Before, so a rule's change is visible to "changed" conditions in the
// next pass (a cascade). Passes that fire rules are limited to
// Options.MaxPasses (default 10); needing more is an EAutomationConflict
// error naming the rules that would have fired in the pass beyond the limit.
// Because every rule fires at most once, Run always ends.
//
// # Conflicts
//
// The whole command is refused (EAutomationConflict, nothing to append) when,
// in one pass, firing rules set the same field (priority, status, team,
// assignee, one custom field) to different values, or one adds a tag that
// another removes; or when a set_status is not allowed from the ticket's
// status at the start of the pass by helpdeskflow.TicketTransitionAllowed
// (such as reopening a closed ticket). Every conflict of the pass is
// reported at once: the error's RuleIDs name the rules involved, and its
// Details have one FieldProblem per field they conflict over (priority,
// status, team, assignee_id, custom_fields.<name>, tags), such as
// {"priority", "set to urgent by rule <id> and to low by rule <id>"}; its
// Message names the rules and fields too. The pass cap's error names the
// rules in RuleIDs and has no Details. Rules of different passes never
// conflict: a later pass overrides an earlier one.
//
// Setting a field to the value it already has is not a change: a rule that
// changes nothing still fires (it is listed in Result.Fired and its async
// actions run) but has no Effect.
package automation
