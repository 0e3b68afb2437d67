package projections

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// partitionID is what a partition id of api_requests (toYYYYMM) looks like;
// nothing else is ever formatted into the DROP statement.
var partitionID = regexp.MustCompile(`^[0-9]{6}$`)

// DropRequestLogBefore drops the request log's (api_requests) monthly
// partitions that lie wholly before before: those of months earlier than
// before's month in the server's time zone (the one toYYYYMM(time) uses),
// so the month before falls in, and every later one, are kept. It lists
// the partitions from system.parts and drops each with ALTER TABLE … DROP
// PARTITION ID, which ClickHouse 18.16 and current versions both run as a
// metadata operation (no rows are rewritten, nothing waits for a merge).
// It returns the rows the dropped partitions held. conn must be bound to
// the projection database. It returns EUnavailable when ClickHouse cannot
// be reached and EInternal when a query fails otherwise; partitions
// dropped before the failure stay dropped.
func DropRequestLogBefore(ctx context.Context, conn driver.Conn, before time.Time) (int64, error) {
	var cutoff uint32
	// The server's time zone decides which month a row's time is in.
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toYYYYMM(toDateTime(%d))`, max(before.Unix(), 0))).Scan(&cutoff); err != nil {
		return 0, chError("compute the request log's cutoff month", err)
	}
	rows, err := conn.Query(ctx, `SELECT partition_id, sum(rows) FROM system.parts
		WHERE database = currentDatabase() AND table = 'api_requests' AND active
		GROUP BY partition_id ORDER BY partition_id`)
	if err != nil {
		return 0, chError("list the request log's partitions", err)
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
			return 0, chError("list the request log's partitions", err)
		}
		if partitionID.MatchString(p.id) && p.id < fmt.Sprint(cutoff) {
			old = append(old, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, chError("list the request log's partitions", err)
	}
	var dropped int64
	for _, p := range old {
		if err := conn.Exec(ctx, `ALTER TABLE api_requests DROP PARTITION ID '`+p.id+`'`); err != nil {
			return dropped, chError("drop request log partition "+p.id, err)
		}
		dropped += int64(p.rows)
	}
	return dropped, nil
}
