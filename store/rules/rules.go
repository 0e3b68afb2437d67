package rules

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

const ruleColumns = `r.id, r.workspace_id, r.kind, r.version, r.definition, r.created_at, r.updated_at`

// LockRuleSet moves the workspace's rule-set version forward and returns
// the new version with every current rule record, holding the rule set's
// lock until the transaction ends, so a workspace's rule changes are
// serialized. Call it before changing rules with PutRule or DeleteRule.
func (t *Tx) LockRuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error) {
	var set helpdeskflow.RuleSet
	err := t.tx.QueryRow(ctx, `INSERT INTO rule_set_versions (workspace_id, version) VALUES ($1, 1)
		ON CONFLICT (workspace_id) DO UPDATE SET version = rule_set_versions.version + 1 RETURNING version`, workspaceID).Scan(&set.Version)
	if err != nil {
		return set, pg.Internal("lock rule set", err)
	}
	// A new statement: its snapshot includes whatever the previous lock
	// holder committed.
	rows, err := t.tx.Query(ctx, `SELECT `+ruleColumns+` FROM workspace_rules r WHERE r.workspace_id = $1 ORDER BY r.id`, workspaceID)
	if err != nil {
		return set, pg.Internal("read rules", err)
	}
	set.Rules, err = scanRules(rows)
	return set, err
}

// PutRule stores a rule record's current definition (sent with the
// transaction's next statement or its commit).
func (t *Tx) PutRule(ctx context.Context, r helpdeskflow.RuleRecord) {
	t.tx.Defer(`INSERT INTO workspace_rules (id, workspace_id, kind, version, definition, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, definition = excluded.definition, updated_at = excluded.updated_at`,
		r.ID, r.WorkspaceID, r.Kind, r.Version, string(r.Definition), r.CreatedAt, r.UpdatedAt)
}

// DeleteRule removes a rule record (sent with the transaction's next
// statement or its commit).
func (t *Tx) DeleteRule(ctx context.Context, id uuid.UUID) {
	t.tx.Defer(`DELETE FROM workspace_rules WHERE id = $1`, id)
}

// RuleSetSince returns the workspace's rule set as this transaction sees
// it, but without the rules (only the version) when the version is still
// known, so that a caller with a cached copy pays one cheap statement.
func (t *Tx) RuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64) (helpdeskflow.RuleSet, error) {
	return readRuleSet(ctx, t.tx.Reader(), workspaceID, known)
}

// RuleSet returns the workspace's rule set: its version and every rule
// record, read in one statement so they agree.
func (s *Store) RuleSet(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.RuleSet, error) {
	return readRuleSet(ctx, s.pool, workspaceID, -1)
}

// DeferRuleSetSince is RuleSetSince sent with the transaction's next
// statement (see pg.Tx.DeferRead): done gets the rule set when that round
// trip is back.
func (t *Tx) DeferRuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64, done func(helpdeskflow.RuleSet, error)) {
	t.tx.DeferRead(func(rows pgx.Rows) error {
		set, err := scanRuleSet(rows)
		done(set, err)
		return err
	}, ruleSetSQL, workspaceID, known)
}

// ruleSetSQL reads a workspace's rule set version and, unless the version
// is $2, its rules, in one statement so they agree.
const ruleSetSQL = `SELECT v.version, ` + ruleColumns + `
		FROM (SELECT coalesce((SELECT version FROM rule_set_versions WHERE workspace_id = $1), 0) AS version) v
		LEFT JOIN LATERAL (SELECT * FROM workspace_rules WHERE workspace_id = $1 AND v.version <> $2) r ON true ORDER BY r.id`

func readRuleSet(ctx context.Context, q pg.Querier, workspaceID uuid.UUID, known int64) (helpdeskflow.RuleSet, error) {
	rows, err := q.Query(ctx, ruleSetSQL, workspaceID, known)
	if err != nil {
		return helpdeskflow.RuleSet{}, pg.Internal("read rule set", err)
	}
	return scanRuleSet(rows)
}

// scanRuleSet reads the rows of ruleSetSQL and closes them.
func scanRuleSet(rows pgx.Rows) (helpdeskflow.RuleSet, error) {
	defer rows.Close()
	var set helpdeskflow.RuleSet
	for rows.Next() {
		var id, ws *uuid.UUID
		var kind *string
		var version *int64
		var created, updated *time.Time
		var r helpdeskflow.RuleRecord
		if err := rows.Scan(&set.Version, &id, &ws, &kind, &version, &r.Definition, &created, &updated); err != nil {
			return set, pg.Internal("read rule set", err)
		}
		if id == nil { // no rules, or the version is known: one row of NULLs
			continue
		}
		r.ID, r.WorkspaceID, r.Kind, r.Version = *id, *ws, *kind, *version
		r.CreatedAt, r.UpdatedAt = created.UTC(), updated.UTC()
		set.Rules = append(set.Rules, r)
	}
	if err := rows.Err(); err != nil {
		return set, pg.Internal("read rule set", err)
	}
	return set, nil
}

func scanRules(rows pgx.Rows) ([]helpdeskflow.RuleRecord, error) {
	defer rows.Close()
	var out []helpdeskflow.RuleRecord
	for rows.Next() {
		var r helpdeskflow.RuleRecord
		if err := rows.Scan(&r.ID, &r.WorkspaceID, &r.Kind, &r.Version, &r.Definition, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return nil, pg.Internal("read rules", err)
		}
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("read rules", err)
	}
	return out, nil
}
