// Package chaos is the chaos suite behind `make chaos` (and its short run
// in `make test`): it runs HelpDeskFlow in its production shape as separate
// OS processes of the built binary (two `serve --roles api`, `relay`,
// `projector`, `dispatcher` and a `broker` with a data directory) on
// Postgres and ClickHouse servers of its own (scripts/services.sh's chaos
// profiles), puts a steady load of creates, updates and messages on both
// API processes with a webhook subscribed to a local receiver that fails
// 30% of requests and hangs on 5%, and injects faults: kill -9 of a random
// role, the broker and ClickHouse stopped for a while, Postgres restarted,
// and a base backup with WAL archiving restored into a new cluster.
//
// When the system has caught up it checks, per fault, that every
// acknowledged write is in the event store exactly once, every event is in
// ClickHouse exactly once, every subscribed event reached the receiver or
// is recorded as permanently failed, that the API answered except while a
// killed process was down, and that the per-ticket history of concurrent
// PATCHes and composite reads through both API processes is linearizable
// (github.com/anishathalye/porcupine) against the model in model.go.
//
// Everything listens on 127.0.0.1. The harness talks to the system from
// outside only: HTTP, SQL on Postgres and ClickHouse, and signals; it
// imports no other room of the project. Only cmd/chaos reads flags.
package chaos
