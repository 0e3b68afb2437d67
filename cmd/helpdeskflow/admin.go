package main

import (
	"context"
	"fmt"
	"io"

	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// migrateAll applies the Postgres and the ClickHouse migrations.
func migrateAll(ctx context.Context, cfg config) error {
	pool, err := eventstore.Connect(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := eventstore.Migrate(ctx, pool); err != nil {
		return err
	}
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		return err
	}
	defer ch.Close()
	return projections.Migrate(ctx, ch)
}

// createWorkspace creates a workspace with an admin key and prints both.
func createWorkspace(ctx context.Context, cfg config, name string, stdout io.Writer) error {
	pool, err := eventstore.Connect(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := eventstore.Migrate(ctx, pool); err != nil {
		return err
	}
	store, err := eventstore.New(pool, nil)
	if err != nil {
		return err
	}
	id, key, err := commands.New(commands.AdaptStore(store)).CreateWorkspace(ctx, systemMetadata(), name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "workspace_id: %s\nadmin_key_id: %s\nadmin_key:    %s\n(the key is shown only now; it is stored as a hash)\n", id, key.ID, key.Secret)
	return nil
}
