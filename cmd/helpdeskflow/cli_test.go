package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
)

func TestRun_WorkspaceCreate(t *testing.T) {
	cfg := testConfig(t)
	t.Setenv("HDF_POSTGRES_URL", cfg.PostgresURL)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"workspace", "create", "Acme Support"}, &out, &out); err != nil {
		t.Fatalf("workspace create: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^workspace_id: (\S+)\nadmin_key_id: \S+\nadmin_key:\s+(hdf_\w+)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output does not show the workspace id and key:\n%s", out.String())
	}
	pool, err := eventstore.Connect(context.Background(), cfg.PostgresURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := eventstore.New(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	principal, err := store.Authenticate(context.Background(), m[2])
	if err != nil {
		t.Fatalf("the printed key does not authenticate: %v", err)
	}
	if principal.WorkspaceID.String() != m[1] || principal.Role != helpdeskflow.RoleAdmin {
		t.Errorf("key belongs to %s as %s, want %s as admin", principal.WorkspaceID, principal.Role, m[1])
	}
	var hashed int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE position($1::bytea in hash) > 0`, []byte(m[2])).Scan(&hashed); err != nil {
		t.Fatal(err)
	}
	if hashed != 0 {
		t.Error("the key is stored in clear")
	}
	events, err := store.Load(context.Background(), principal.WorkspaceID, principal.WorkspaceID)
	if err != nil || len(events) != 2 || events[0].Type != helpdeskflow.EventWorkspaceCreated || events[1].Type != helpdeskflow.EventAPIKeyCreated {
		t.Errorf("workspace stream = %d events (%v), want workspace.created and api_key.created", len(events), err)
	}

	if err := run(context.Background(), []string{"workspace", "create", "   "}, &out, &out); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Errorf("blank name: %v, want validation_failed", err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, &out, &out); err == nil {
		t.Error("unknown command accepted")
	}
}
