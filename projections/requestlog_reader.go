package projections

import (
	"context"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// DefaultKeyActivityLimit is the number of requests KeyActivity returns when
// its limit is 0, and MaxKeyActivityLimit the largest limit it accepts.
const (
	DefaultKeyActivityLimit = 100
	MaxKeyActivityLimit     = 1000
)

// RequestLogReader answers request log queries from the api_requests table.
// The table trails the API by the request log's buffering and the
// RequestLogProjector's flush interval (about a second when all is well). It
// is safe for concurrent use.
type RequestLogReader struct {
	conn driver.Conn
}

// NewRequestLogReader returns a RequestLogReader that queries conn, a
// connection bound to the projection database. The reader does not close
// conn.
func NewRequestLogReader(conn driver.Conn) *RequestLogReader {
	return &RequestLogReader{conn: conn}
}

// KeyActivity returns the requests made with the API key keyID of
// workspaceID that arrived in [since, until), oldest first (by time, then
// request id), at most limit of them: 0 means DefaultKeyActivityLimit. Times
// have millisecond precision, latencies microsecond precision. Requests made
// without a valid key have workspaceID and keyID uuid.Nil.
//
// It returns an EValidation error listing every bad argument ("limit": out
// of range; "until": not after since), an EUnavailable error when ClickHouse
// cannot be reached, and EInternal when the query fails otherwise.
func (r *RequestLogReader) KeyActivity(ctx context.Context, workspaceID, keyID uuid.UUID, since, until time.Time, limit int) ([]helpdeskflow.APIRequest, error) {
	var problems []helpdeskflow.FieldProblem
	if limit == 0 {
		limit = DefaultKeyActivityLimit
	}
	if limit < 1 || limit > MaxKeyActivityLimit {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "limit", Problem: "must be between 1 and 1000"})
	}
	if !until.After(since) {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "until", Problem: "must be after since"})
	}
	if len(problems) > 0 {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid key activity query", Details: problems}
	}

	// The whole-second bounds on time let ClickHouse skip partitions and
	// granules; the millisecond comparison then makes them exact.
	sinceMs, untilMs := clampUnixMilli(since), clampUnixMilli(until)
	query := "SELECT " + apiRequestColumns + " FROM api_requests FINAL" +
		" WHERE workspace_id = toUUID(?) AND key_id = toUUID(?)" +
		" AND time >= toDateTime(?) AND time <= toDateTime(?)" +
		" AND toUInt64(time) * 1000 + time_ms >= ? AND toUInt64(time) * 1000 + time_ms < ?" +
		" ORDER BY time, time_ms, request_id LIMIT ?"
	rows, err := r.conn.Query(ctx, query, workspaceID.String(), keyID.String(),
		uint32(sinceMs/1000), uint32(untilMs/1000), uint64(sinceMs), uint64(untilMs), limit)
	if err != nil {
		return nil, chError("read key activity", err)
	}
	defer rows.Close()
	found := []helpdeskflow.APIRequest{}
	for rows.Next() {
		var row apiRequestRow
		if err := rows.Scan(row.scanDest()...); err != nil {
			return nil, chError("read key activity", err)
		}
		found = append(found, row.apiRequest())
	}
	if err := rows.Err(); err != nil {
		return nil, chError("read key activity", err)
	}
	return found, nil
}

// clampUnixMilli returns t in Unix milliseconds within the range of a
// DateTime column (1970 to 2106).
func clampUnixMilli(t time.Time) int64 {
	return min(max(t.UnixMilli(), 0), math.MaxUint32*1000+999)
}
