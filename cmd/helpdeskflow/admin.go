package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// migrateAll applies the Postgres and the ClickHouse migrations.
func migrateAll(ctx context.Context, cfg config) error {
	pool, err := pg.Connect(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool); err != nil {
		return err
	}
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		return err
	}
	defer ch.Close()
	return projections.Migrate(ctx, ch)
}

// openStore connects the administrative commands to the Postgres rooms,
// migrating them first; call the returned function to close them.
func openStore(ctx context.Context, cfg config) (stores, func(), error) {
	pool, err := pg.Connect(ctx, cfg.PostgresURL, 4)
	if err != nil {
		return stores{}, nil, err
	}
	if err := pg.Migrate(ctx, pool); err != nil {
		pool.Close()
		return stores{}, nil, err
	}
	rooms, err := newStores(pool, nil)
	if err != nil {
		pool.Close()
		return stores{}, nil, err
	}
	return rooms, pool.Close, nil
}

// createWorkspace creates a workspace with an admin key and prints both.
func createWorkspace(ctx context.Context, cfg config, name string, stdout io.Writer) error {
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	id, key, err := access.New(postgres.Access(store.events)).CreateWorkspace(ctx, systemMetadata(), name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "workspace_id: %s\nadmin_key_id: %s\nadmin_key:    %s\n(the key is shown only now; it is stored as a hash)\n", id, key.ID, key.Secret)
	return nil
}

const keysUsage = `usage:
  helpdeskflow keys create --workspace ID --role admin|agent [--name NAME]
  helpdeskflow keys list --workspace ID
  helpdeskflow keys revoke ID`

// keysCommand runs `helpdeskflow keys create|list|revoke`. Creating and
// revoking are events on the workspace's stream with the system as actor,
// like the same calls over the API; revoke returns once every running API
// process refuses the key.
func keysCommand(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	workspace := fs.String("workspace", "", "workspace id")
	role := fs.String("role", "", "admin or agent")
	name := fs.String("name", "", "a name to tell the key apart (optional)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	service := access.New(postgres.Access(store.events))
	switch args[0] {
	case "create":
		workspaceID, err := uuid.Parse(*workspace)
		if err != nil || fs.NArg() != 0 {
			return fmt.Errorf("--workspace must be a workspace id\n%s", keysUsage)
		}
		key, err := service.CreateAPIKey(ctx, systemMetadata(), workspaceID, access.CreateAPIKey{Role: *role, Name: *name})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key_id: %s\nrole:   %s\nkey:    %s\n(the key is shown only now; it is stored as a hash)\n", key.ID, key.Role, key.Secret)
		return nil
	case "list":
		workspaceID, err := uuid.Parse(*workspace)
		if err != nil || fs.NArg() != 0 {
			return fmt.Errorf("--workspace must be a workspace id\n%s", keysUsage)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tPREFIX\tROLE\tNAME\tCREATED\tLAST USED")
		cursor := ""
		for {
			page, err := store.access.ListAPIKeys(ctx, workspaceID, cursor, 100)
			if err != nil {
				return err
			}
			for _, k := range page.Keys {
				lastUsed := "never"
				if k.LastUsedAt != nil {
					lastUsed = k.LastUsedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Role, k.Name, k.CreatedAt.UTC().Format(time.RFC3339), lastUsed)
			}
			if cursor = page.Next; cursor == "" {
				return w.Flush()
			}
		}
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New(keysUsage)
		}
		id, err := uuid.Parse(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("%q is not a key id\n%s", fs.Arg(0), keysUsage)
		}
		key, err := store.access.APIKey(ctx, id)
		if err != nil {
			return err
		}
		if _, err := service.RevokeAPIKey(ctx, systemMetadata(), key.WorkspaceID, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (%s…)\n", id, key.Prefix)
		return nil
	default:
		return fmt.Errorf("unknown keys command %q\n%s", args[0], keysUsage)
	}
}
