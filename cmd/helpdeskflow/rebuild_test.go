package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun_ProjectionsRebuild drives `projections rebuild` as an operator
// would: a dry run, a rebuild that keeps the old tables, then drop-old.
func TestRun_ProjectionsRebuild(t *testing.T) {
	cfg := testConfig(t)
	t.Setenv("HDF_POSTGRES_URL", cfg.PostgresURL)
	t.Setenv("HDF_CLICKHOUSE_ADDR", cfg.ClickHouseAddr)
	t.Setenv("HDF_CLICKHOUSE_DATABASE", cfg.ClickHouseDatabase)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate"}, &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if err := run(ctx, []string{"workspace", "create", "Acme"}, &out, &out); err != nil {
		t.Fatalf("workspace create: %v\n%s", err, out.String())
	}

	out.Reset()
	if err := run(ctx, []string{"projections", "rebuild", "--dry-run"}, &out, &out); err != nil {
		t.Fatalf("rebuild --dry-run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"audit_log            version in code 1, in ClickHouse 1, about 2 rows", "dry run: 2 events to fold", "nothing written"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := run(ctx, []string{"projections", "rebuild", "--tables", "audit_log"}, &out, &out); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	for _, want := range []string{"audit_log            version in code 1, in ClickHouse 1, 2 rows inserted", "old tables kept: audit_log__old"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rebuild output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := run(ctx, []string{"projections", "drop-old"}, &out, &out); err != nil || !strings.Contains(out.String(), "dropped: audit_log__old") {
		t.Errorf("drop-old: %v\n%s", err, out.String())
	}
	if err := run(ctx, []string{"projections", "rebuild", "--tables", "api_requests"}, &out, &out); err == nil {
		t.Error("a rebuild of api_requests was accepted")
	}
}
