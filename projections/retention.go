package projections

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow"
)

// Tables the retention job may drop old months of: each is partitioned by
// toYYYYMM of its time column, and none holds what a read model needs for
// current state. The ticket, customer and message tables (current state)
// and tickets_by_created (the ticket list, partitioned by creation month
// but holding every ticket's current row) are never dropped.
const (
	// TableRequestLog is the request log (api_requests).
	TableRequestLog = "api_requests"
	// TableWebhookAttempts and TableMailSyncs are the service facts.
	TableWebhookAttempts = "webhook_attempts"
	TableMailSyncs       = "mail_syncs"
	// TableAuditLog is the audit history; a rebuild from the event store
	// writes its dropped months back.
	TableAuditLog = "audit_log"
)

// RetainedTables are the tables DropMonthsBefore takes.
var RetainedTables = []string{TableRequestLog, TableWebhookAttempts, TableMailSyncs, TableAuditLog}

// partitionID is what a partition id of a retained table (toYYYYMM)
// looks like; nothing else is ever formatted into the DROP statement.
var partitionID = regexp.MustCompile(`^[0-9]{6}$`)

// DropMonthsBefore drops table's monthly partitions that lie wholly before
// before: those of months earlier than before's month in the server's time
// zone (the one toYYYYMM uses), so the month before falls in, and every
// later one, are kept. It lists the partitions from system.parts and drops
// each with ALTER TABLE … DROP PARTITION ID, which ClickHouse 18.16 and
// current versions both run as a metadata operation (no rows are
// rewritten, nothing waits for a merge). It returns the rows the dropped
// partitions held. conn must be bound to the projection database.
//
// It returns EValidation when table is not one of RetainedTables,
// EUnavailable when ClickHouse cannot be reached and EInternal when a
// query fails otherwise; partitions dropped before the failure stay
// dropped.
func DropMonthsBefore(ctx context.Context, conn driver.Conn, table string, before time.Time) (int64, error) {
	if !slices.Contains(RetainedTables, table) {
		return 0, helpdeskflow.Errorf(helpdeskflow.EValidation, "retention: %q is not a table whose months may be dropped", table)
	}
	var cutoff uint32
	// The server's time zone decides which month a row's time is in.
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toYYYYMM(toDateTime(%d))`, max(before.Unix(), 0))).Scan(&cutoff); err != nil {
		return 0, chError("compute the cutoff month of "+table, err)
	}
	rows, err := conn.Query(ctx, `SELECT partition_id, sum(rows) FROM system.parts
		WHERE database = currentDatabase() AND table = ? AND active
		GROUP BY partition_id ORDER BY partition_id`, table)
	if err != nil {
		return 0, chError("list the partitions of "+table, err)
	}
	type partition struct {
		id   string
		rows uint64
	}
	var old []partition
	for rows.Next() {
		var p partition
		if err := rows.Scan(&p.id, &p.rows); err != nil {
			rows.Close()
			return 0, chError("list the partitions of "+table, err)
		}
		if partitionID.MatchString(p.id) && p.id < fmt.Sprint(cutoff) {
			old = append(old, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, chError("list the partitions of "+table, err)
	}
	var dropped int64
	for _, p := range old {
		if err := conn.Exec(ctx, `ALTER TABLE `+table+` DROP PARTITION ID '`+p.id+`'`); err != nil {
			return dropped, chError("drop partition "+p.id+" of "+table, err)
		}
		dropped += int64(p.rows)
	}
	return dropped, nil
}
