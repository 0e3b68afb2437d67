package projections

// tableDefinition is the current definition in code of one table built
// from the events, which a rebuild creates its new table from.
type tableDefinition struct {
	// name is the live table's name.
	name string
	// group is the --tables name that rebuilds it: the list tables are
	// rebuilt with tickets.
	group string
	// version numbers the definition: bump it with every change of ddl (or
	// of what the rows hold), and a rebuild records it in
	// projection_versions when it swaps the table in.
	version int
	// ddl creates the table; %s stands for its name.
	ddl string
}

// definitions are the tables a rebuild builds, in the order it creates
// and swaps them. They are what migrations 0001–0008 and 0010 left (version 1); a
// schema change edits a definition here, bumps its version and ships with
// a rebuild (projections/README.md, "Rebuild").
var definitions = []tableDefinition{
	{name: "tickets", group: "tickets", version: 1, ddl: `CREATE TABLE %s (
` + ticketColumnDefs + `) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, ticket_id)`},
	{name: "tickets_by_created", group: "tickets", version: 1, ddl: `CREATE TABLE %s (
` + ticketColumnDefs + `) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(created_at_ms, 1000)))
ORDER BY (workspace_id, created_at_ms, ticket_id)
SETTINGS index_granularity = 1024`},
	{name: "tickets_by_customer", group: "tickets", version: 1, ddl: `CREATE TABLE %s (
` + ticketColumnDefs + `) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, customer_id, created_at_ms, ticket_id)
SETTINGS index_granularity = 256`},
	{name: "customers", group: "customers", version: 1, ddl: `CREATE TABLE %s (
    workspace_id  UUID,
    customer_id   UUID,
    version       UInt64,
    email         String,
    name          String,
    tags          Array(String),
    custom_fields String,
    created_at_ms Int64,
    updated_at_ms Int64,
    merged_into   String DEFAULT ''
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, customer_id)`},
	{name: "ticket_messages", group: "ticket_messages", version: 1, ddl: `CREATE TABLE %s (
    workspace_id  UUID,
    ticket_id     UUID,
    message_id    UUID,
    version       UInt64,
    author_type   String,
    body          String,
    body_text     String,
    internal      UInt8,
    created_at_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, ticket_id, message_id)`},
	{name: "audit_log", group: "audit_log", version: 1, ddl: `CREATE TABLE %s (
    workspace_id   UUID,
    stream_id      UUID,
    stream_type    String,
    version        UInt64,
    event_id       UUID,
    event_type     String,
    schema_version UInt16,
    actor_type     String,
    actor_id       String,
    channel        String,
    request_id     String,
    rule_id        String,
    causation_id   String,
    correlation_id String,
    changed_fields Array(String),
    old_values     Array(String),
    new_values     Array(String),
    data           String,
    occurred_at    DateTime,
    occurred_at_ms Int64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, stream_id, version)`},
	{name: "ticket_history", group: "ticket_history", version: 1, ddl: `CREATE TABLE %s (
` + historyColumnDefs + `) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, ticket_id, version)`},
	{name: "ticket_service", group: "ticket_history", version: 1, ddl: `CREATE TABLE %s (
` + serviceColumnDefs() + `) ENGINE = AggregatingMergeTree()
ORDER BY (workspace_id, ticket_id)`},
	{name: "automation_firings", group: "ticket_history", version: 1, ddl: `CREATE TABLE %s (
    workspace_id   UUID,
    rule_id        String,
    ticket_id      UUID,
    version        UInt64,
    event_type     String,
    occurred_at    DateTime,
    occurred_at_ms Int64,
    request_id     String,
    causation_id   String
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, rule_id, ticket_id, version)`},
}

// ticketColumnDefs are the columns of tickets and of the list tables.
const ticketColumnDefs = `    workspace_id  UUID,
    ticket_id     UUID,
    version       UInt64,
    subject       String,
    status        String,
    priority      String,
    type          String,
    channel       String,
    tags          Array(String),
    customer_id   UUID,
    assignee_id   String,
    team          String,
    external_id   String,
    custom_fields String,
    message_count UInt32,
    created_at_ms Int64,
    updated_at_ms Int64
`

// listViews are the materialized views of migration 0007 that copy every
// insert into tickets into the list tables, by view name and target.
var listViews = []struct{ name, target string }{
	{"tickets_by_created_mv", "tickets_by_created"},
	{"tickets_by_customer_mv", "tickets_by_customer"},
}

// listViewDDL creates view, copying every insert into tickets into target.
func listViewDDL(view, target string) string {
	return "CREATE MATERIALIZED VIEW " + view + " TO " + target + " AS SELECT " + ticketColumns + " FROM tickets"
}
