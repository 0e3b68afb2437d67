package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
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
	pool, err := pg.Connect(context.Background(), cfg.PostgresURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := eventstore.New(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	principal, err := access.New(pool).Authenticate(context.Background(), m[2])
	if err != nil {
		t.Fatalf("the printed key does not authenticate: %v", err)
	}
	if principal.WorkspaceID.String() != m[1] || principal.Role != helpdeskflow.RoleAdmin {
		t.Errorf("key belongs to %s as %s, want %s as admin", principal.WorkspaceID, principal.Role, m[1])
	}
	var hashed int
	if err := pool.Pool().QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE position($1::bytea in hash) > 0`, []byte(m[2])).Scan(&hashed); err != nil {
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

func TestRun_Keys(t *testing.T) {
	cfg := testConfig(t)
	t.Setenv("HDF_POSTGRES_URL", cfg.PostgresURL)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"workspace", "create", "Acme"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	workspace := regexp.MustCompile(`workspace_id: (\S+)`).FindStringSubmatch(out.String())[1]

	out.Reset()
	if err := run(ctx, []string{"keys", "create", "--workspace", workspace, "--role", "agent", "--name", "zapier"}, &out, &out); err != nil {
		t.Fatalf("keys create: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^key_id: (\S+)\nrole:\s+agent\nkey:\s+(hdf_\w+)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("keys create output:\n%s", out.String())
	}
	keyID, secret := m[1], m[2]

	out.Reset()
	if err := run(ctx, []string{"keys", "list", "--workspace", workspace}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(keyID+`\s+`+regexp.QuoteMeta(helpdeskflow.APIKeyDisplayPrefix(secret))+`…\s+agent\s+zapier\s+\S+\s+never`).MatchString(out.String()) ||
		bytes.Contains(out.Bytes(), []byte(secret)) {
		t.Fatalf("keys list does not show the key by prefix only:\n%s", out.String())
	}

	out.Reset()
	if err := run(ctx, []string{"keys", "revoke", keyID}, &out, &out); err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, out.String())
	}
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	if _, err := store.access.Authenticate(ctx, secret); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if err := run(ctx, []string{"keys", "revoke", keyID}, &out, &out); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("second revoke: %v, want not_found", err)
	}
	for _, args := range [][]string{
		{"keys", "create", "--workspace", "nope", "--role", "agent"},
		{"keys", "create", "--workspace", workspace, "--role", "owner"},
		{"keys", "revoke"},
		{"keys", "rotate"},
	} {
		if err := run(ctx, args, &out, &out); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// parseServeConfig parses serve's flags args (with the environment the test
// set). With wantErrMsg it requires an error containing it and reports
// false; otherwise it requires none and returns the configuration.
func parseServeConfig(t *testing.T, args []string, wantErrMsg string) (config, bool) {
	t.Helper()
	cfg, _, err := parseConfig("serve", args)
	if wantErrMsg != "" {
		if err == nil || !strings.Contains(err.Error(), wantErrMsg) {
			t.Fatalf("parseConfig = %v, want an error saying %q", err, wantErrMsg)
		}
		return config{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg, true
}
