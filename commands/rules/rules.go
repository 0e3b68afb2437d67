package rules

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// ruleKind describes one kind of workspace rule (automation rules, SLA
// policies): where its records and events go, and how many a workspace may
// have.
type ruleKind struct {
	kind, stream              string
	created, updated, deleted string
	max                       int
	noun                      string
	// changed, when set, runs in the transaction that changed or deleted
	// rule id.
	changed func(ctx context.Context, tx Tx, workspaceID, id uuid.UUID)
}

// ruleDefinition is what every kind's stored definition has in common:
// ordering.
type ruleDefinition struct {
	Position int `json:"position"`
}

// saveRule creates rule id (uuid.Nil: a new one) of kind k, or replaces it,
// under the workspace's rule-set lock. define gets the record being
// replaced (nil on create) and the kind's current records, and returns the
// new definition (event data and stored definition at once). ifMatch
// works as for tickets. It returns the stored record.
func (s *Service) saveRule(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, k ruleKind, id uuid.UUID, ifMatch *int64,
	define func(current *helpdeskflow.RuleRecord, all []helpdeskflow.RuleRecord) (any, error)) (helpdeskflow.RuleRecord, error) {
	var saved helpdeskflow.RuleRecord
	err := s.store.Transact(ctx, func(tx Tx) error {
		set, err := tx.LockRuleSet(ctx, workspaceID)
		if err != nil {
			return err
		}
		all := RecordsOf(set, k.kind)
		var current *helpdeskflow.RuleRecord
		if id != uuid.Nil {
			i := slices.IndexFunc(all, func(r helpdeskflow.RuleRecord) bool { return r.ID == id })
			if i < 0 {
				return helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %s not found", k.noun, id)
			}
			current = &all[i]
			if ifMatch != nil && *ifMatch != current.Version {
				return helpdeskflow.Errorf(helpdeskflow.EPreconditionFailed,
					"If-Match is version %d but the %s is at version %d; reload it and retry", *ifMatch, k.noun, current.Version)
			}
		} else if len(all) >= k.max {
			return helpdeskflow.Errorf(helpdeskflow.EConflict, "the workspace already has %d of %d allowed %ss; delete one first", len(all), k.max, k.noun)
		}
		definition, err := define(current, all)
		if err != nil {
			return err
		}
		eventType := k.created
		saved = helpdeskflow.RuleRecord{ID: uuid.New(), WorkspaceID: workspaceID, Kind: k.kind, Version: 1}
		if current != nil {
			eventType = k.updated
			saved = *current
			saved.Version++
		}
		e, err := helpdeskflow.NewEventOf(eventType, definition)
		if err != nil {
			return err
		}
		e.OccurredAt = s.now()
		saved.Definition = e.Data
		saved.UpdatedAt = e.OccurredAt
		if current == nil {
			saved.CreatedAt = e.OccurredAt
		}
		ref := helpdeskflow.StreamRef{ID: saved.ID, WorkspaceID: workspaceID, Type: k.stream}
		if _, err := tx.Append(ctx, ref, saved.Version-1, md, []helpdeskflow.NewEvent{e}); err != nil {
			return err
		}
		tx.PutRule(ctx, saved)
		if current != nil && k.changed != nil {
			k.changed(ctx, tx, workspaceID, saved.ID)
		}
		return nil
	})
	return saved, err
}

// deleteRule deletes rule id of kind k and records the kind's deleted event
// on its stream, which stays readable in the change feed.
func (s *Service) deleteRule(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, k ruleKind, id uuid.UUID) error {
	return s.store.Transact(ctx, func(tx Tx) error {
		set, err := tx.LockRuleSet(ctx, workspaceID)
		if err != nil {
			return err
		}
		all := RecordsOf(set, k.kind)
		i := slices.IndexFunc(all, func(r helpdeskflow.RuleRecord) bool { return r.ID == id })
		if i < 0 {
			return helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %s not found", k.noun, id)
		}
		e, err := helpdeskflow.NewEventOf(k.deleted, struct{}{})
		if err != nil {
			return err
		}
		e.OccurredAt = s.now()
		ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: k.stream}
		if _, err := tx.Append(ctx, ref, all[i].Version, md, []helpdeskflow.NewEvent{e}); err != nil {
			return err
		}
		tx.DeleteRule(ctx, id)
		if k.changed != nil {
			k.changed(ctx, tx, workspaceID, id)
		}
		return nil
	})
}

// recordsOf returns the set's records of one kind ordered by (position, id),
// the order rules run and lists show them in.
func RecordsOf(set helpdeskflow.RuleSet, kind string) []helpdeskflow.RuleRecord {
	var out []helpdeskflow.RuleRecord
	position := map[uuid.UUID]int{} // each definition decoded once, not per comparison
	for _, r := range set.Rules {
		if r.Kind == kind {
			out = append(out, r)
			position[r.ID] = positionOf(r)
		}
	}
	slices.SortFunc(out, func(a, b helpdeskflow.RuleRecord) int {
		if pa, pb := position[a.ID], position[b.ID]; pa != pb {
			return pa - pb
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return out
}

func positionOf(r helpdeskflow.RuleRecord) int {
	var d ruleDefinition
	_ = json.Unmarshal(r.Definition, &d) // a stored definition always decodes; 0 otherwise
	return d.Position
}

// nextPosition is the position after the last of records.
func nextPosition(records []helpdeskflow.RuleRecord) int {
	if len(records) == 0 {
		return 0
	}
	return positionOf(records[len(records)-1]) + 1
}

// rulePage returns one page of the workspace's records of kind k in
// (position, id) order, after cursor ("" for the first page), and the
// cursor of the next page ("" when this is the last).
func (s *Service) rulePage(ctx context.Context, workspaceID uuid.UUID, k ruleKind, cursor string, limit int) ([]helpdeskflow.RuleRecord, string, error) {
	start := 0
	var after struct {
		position int
		id       string
	}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		pos, id, ok := strings.Cut(string(raw), "/")
		n, perr := strconv.Atoi(pos)
		if err != nil || !ok || perr != nil {
			return nil, "", &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid cursor",
				Details: []helpdeskflow.FieldProblem{{Field: "cursor", Problem: "is not a cursor this endpoint returned"}}}
		}
		after.position, after.id = n, id
	}
	set, err := s.store.RuleSet(ctx, workspaceID)
	if err != nil {
		return nil, "", err
	}
	all := RecordsOf(set, k.kind)
	if cursor != "" {
		start = len(all)
		for i, r := range all {
			if p := positionOf(r); p > after.position || (p == after.position && r.ID.String() > after.id) {
				start = i
				break
			}
		}
	}
	end := min(start+limit, len(all))
	page := all[start:end]
	next := ""
	if end < len(all) {
		last := page[len(page)-1]
		next = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d/%s", positionOf(last), last.ID))
	}
	return page, next, nil
}

// decodedPage is rulePage with each record decoded by decode; a record
// that does not decode fails the page.
func decodedPage[R any](ctx context.Context, s *Service, workspaceID uuid.UUID, k ruleKind, cursor string, limit int,
	decode func(helpdeskflow.RuleRecord) (R, error)) ([]R, string, error) {
	recs, next, err := s.rulePage(ctx, workspaceID, k, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]R, len(recs))
	for i, rec := range recs {
		if out[i], err = decode(rec); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// ruleRecord returns rule id of kind k; ENotFound when the workspace has
// no such rule.
func (s *Service) ruleRecord(ctx context.Context, workspaceID uuid.UUID, k ruleKind, id uuid.UUID) (helpdeskflow.RuleRecord, error) {
	set, err := s.store.RuleSet(ctx, workspaceID)
	if err != nil {
		return helpdeskflow.RuleRecord{}, err
	}
	for _, r := range set.Rules {
		if r.ID == id && r.Kind == k.kind {
			return r, nil
		}
	}
	return helpdeskflow.RuleRecord{}, helpdeskflow.Errorf(helpdeskflow.ENotFound, "%s %s not found", k.noun, id)
}
