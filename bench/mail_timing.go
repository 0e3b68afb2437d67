package main

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
)

// timedImporter counts and times the sync's imports.
type timedImporter struct {
	mailsync.Importer
	mu      sync.Mutex
	total   time.Duration
	each    []time.Duration
	results map[string]int
}

func (t *timedImporter) ImportMail(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.ImportMail) (tickets.ImportResult, error) {
	start := time.Now()
	res, err := t.Importer.ImportMail(ctx, workspaceID, md, cmd)
	d := time.Since(start)
	kind := "message"
	switch {
	case err != nil:
		kind = "error"
	case res.Duplicate:
		kind = "duplicate"
	case res.Skipped:
		kind = "skipped"
	case res.Created:
		kind = "ticket"
	}
	t.mu.Lock()
	t.total += d
	t.each = append(t.each, d)
	t.results[kind]++
	t.mu.Unlock()
	return res, err
}

// timedTokens counts and times the sync's access token lookups (one per
// Gmail request).
type timedTokens struct {
	mailsync.Tokens
	mu    sync.Mutex
	total time.Duration
	calls int
}

func (t *timedTokens) AccessToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error) {
	start := time.Now()
	s, err := t.Tokens.AccessToken(ctx, workspaceID, id)
	t.add(time.Since(start))
	return s, err
}

func (t *timedTokens) RefreshToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error) {
	start := time.Now()
	s, err := t.Tokens.RefreshToken(ctx, workspaceID, id)
	t.add(time.Since(start))
	return s, err
}

func (t *timedTokens) add(d time.Duration) {
	t.mu.Lock()
	t.total += d
	t.calls++
	t.mu.Unlock()
}

// timedMailStore counts and times the sync's own store calls.
type timedMailStore struct {
	mailsync.Store
	mu    sync.Mutex
	total time.Duration
	calls int
}

func (s *timedMailStore) add(d time.Duration) {
	s.mu.Lock()
	s.total += d
	s.calls++
	s.mu.Unlock()
}

func (s *timedMailStore) ClaimMailboxes(ctx context.Context, providers []string, now, leaseUntil time.Time, limit int) ([]helpdeskflow.Connection, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.ClaimMailboxes(ctx, providers, now, leaseUntil, limit)
}

func (s *timedMailStore) SaveSyncState(ctx context.Context, id uuid.UUID, lease time.Time, state []byte) (bool, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.SaveSyncState(ctx, id, lease, state)
}

func (s *timedMailStore) FinishMailboxSync(ctx context.Context, id uuid.UUID, lease time.Time, o helpdeskflow.SyncOutcome) (int, bool, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.FinishMailboxSync(ctx, id, lease, o)
}

func (s *timedMailStore) ImportedMail(ctx context.Context, connectionID uuid.UUID, ids []string) (map[string]bool, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.ImportedMail(ctx, connectionID, ids)
}
