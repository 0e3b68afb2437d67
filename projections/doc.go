// Package projections builds and reads the ClickHouse read model of
// HelpDeskFlow.
//
// The Projector consumes the helpdeskflow.events topic in its own consumer
// group and writes four tables (see migrations/): tickets, customers and
// ticket_messages hold the latest state of each entity, audit_log one row per
// event of every stream. Every table is a ReplacingMergeTree keyed by the
// entity (or by stream and version for audit_log) with the event version as
// its version column, so a redelivered or replayed event collapses onto the
// row it already wrote; queries read them with FINAL. It writes the
// analytics model too (history.go, docs/analytics.md): ticket_history, one
// row per ticket event holding the ticket as the event left it, from which
// materialized views keep ticket_service (the service facts per ticket,
// an AggregatingMergeTree) and automation_firings.
//
// The RequestLogProjector consumes helpdeskflow.api-requests in its own
// group and appends each API request to api_requests (a ReplacingMergeTree
// keyed by workspace, key, time and request id, so a redelivered record
// collapses); RequestLogReader answers "what did this key do".
//
// The FactsProjector consumes helpdeskflow.service-facts in its own group and
// appends each webhook delivery attempt to webhook_attempts and each mailbox
// sync run to mail_syncs (docs/analytics.md). DropMonthsBefore drops the old
// monthly partitions of those tables, api_requests and audit_log for the
// retention job.
//
// TicketReader serves GET /v1/tickets from the tickets table. OpenClickHouse,
// Migrate and Truncate set up, migrate and empty the database.
//
// All three projectors are batches (kafka.Batch) plugged into kafka.Consumer, the
// one consume loop, which polls, commits after their flush and handles
// rebalances. The package wraps clickhouse-go; callers see only
// *helpdeskflow.Error values with EValidation, EUnavailable or EInternal
// codes, the cause kept in Err.
package projections
