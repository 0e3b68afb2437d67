package projections

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// CustomerFilter selects and pages customers; see
// helpdeskflow.CustomerFilter.
type CustomerFilter = helpdeskflow.CustomerFilter

// CustomerPage is one page of customers; see helpdeskflow.CustomerPage.
type CustomerPage = helpdeskflow.CustomerPage

// CustomerReader answers customer list queries from the customers table
// (eventually consistent, within the projector's lag). Merged customers
// are left out. It is safe for concurrent use.
type CustomerReader struct {
	conn driver.Conn
}

// NewCustomerReader returns a CustomerReader on conn; it does not close it.
func NewCustomerReader(conn driver.Conn) *CustomerReader { return &CustomerReader{conn: conn} }

var customFieldName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ListCustomers returns a page of workspaceID's customers matching filter,
// newest first with a keyset cursor. It returns EValidation naming bad
// fields, EUnavailable when ClickHouse cannot be reached.
func (r *CustomerReader) ListCustomers(ctx context.Context, workspaceID uuid.UUID, filter CustomerFilter) (CustomerPage, error) {
	limit, problems := checkLimit(filter.Limit, nil)
	if filter.CustomField != "" && !customFieldName.MatchString(filter.CustomField) {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "custom_fields." + filter.CustomField,
			Problem: "custom field names in filters are 1 to 64 letters, digits, '_', '.' or '-'"})
	}
	after, problems := checkCursor(filter.Cursor, problems)
	if len(problems) > 0 {
		return CustomerPage{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid customer list query", Details: problems}
	}
	where := []string{"workspace_id = toUUID(?)", "merged_into = ''"}
	args := []any{workspaceID.String()}
	if filter.Tag != "" {
		where, args = append(where, "has(tags, ?)"), append(args, strings.ToLower(strings.TrimSpace(filter.Tag)))
	}
	if filter.CustomField != "" {
		// The stored custom fields are Go's compact JSON, which
		// visitParamExtractRaw reads (also on ClickHouse 18.16); the value
		// matches as a JSON string or as a bare number or boolean.
		quoted, _ := json.Marshal(filter.CustomFieldValue)
		where = append(where, "visitParamExtractRaw(custom_fields, ?) IN (?, ?)")
		args = append(args, filter.CustomField, string(quoted), filter.CustomFieldValue)
	}
	if after != nil {
		where = append(where, "(created_at_ms < ? OR (created_at_ms = ? AND customer_id < toUUID(?)))")
		args = append(args, after.createdAtMs, after.createdAtMs, after.ticketID.String())
	}
	query := "SELECT " + customerColumns + " FROM customers FINAL WHERE " + strings.Join(where, " AND ") +
		" ORDER BY created_at_ms DESC, customer_id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := r.conn.Query(ctx, query, args...)
	if err != nil {
		return CustomerPage{}, chError("list customers", err)
	}
	defer rows.Close()
	var page CustomerPage
	var last customerRow
	for rows.Next() {
		var row customerRow
		if err := rows.Scan(row.scanDest()...); err != nil {
			return CustomerPage{}, chError("list customers", err)
		}
		if len(page.Customers) == limit {
			page.NextCursor = cursor{createdAtMs: last.CreatedAtMs, ticketID: last.CustomerID}.encode()
			break
		}
		page.Customers = append(page.Customers, row.customer())
		last = row
	}
	if err := rows.Err(); err != nil {
		return CustomerPage{}, chError("list customers", err)
	}
	return page, nil
}
