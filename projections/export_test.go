package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrateUpTo applies the migrations numbered up to last, as Migrate does,
// for tests that need a database as an older release left it.
func MigrateUpTo(ctx context.Context, conn driver.Conn, last int) error {
	return migrateUpTo(ctx, conn, last)
}

// RerunMigration runs the statements of migration version again, whether
// or not schema_migrations records it, for tests of idempotency.
func RerunMigration(ctx context.Context, conn driver.Conn, version int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.version == version {
			return m.apply(ctx, conn)
		}
	}
	return fmt.Errorf("no migration %d", version)
}

// BeforeSwap makes a rebuild call f once it has caught up, right before
// the swap.
func BeforeSwap(cfg *RebuildConfig, f func()) { cfg.beforeSwap = f }

// ChangeDefinition makes a rebuild build table with the definition change
// makes of the one in code, at version.
func ChangeDefinition(cfg *RebuildConfig, table string, version int, change func(ddl string) string) {
	if cfg.definitions == nil {
		cfg.definitions = append([]tableDefinition(nil), definitions...)
	}
	for i, d := range cfg.definitions {
		if d.name == table {
			cfg.definitions[i].ddl = change(d.ddl)
			cfg.definitions[i].version = version
		}
	}
}

// ServiceFactsQuery reads ticket_service with every fact merged, one row
// per ticket, the facts in their table order.
func ServiceFactsQuery() string {
	exprs := []string{"workspace_id", "ticket_id"}
	for _, f := range serviceFacts {
		fn := strings.TrimSpace(strings.Split(strings.TrimPrefix(f.typ, "AggregateFunction("), ",")[0])
		exprs = append(exprs, fn+"Merge("+f.name+") AS "+f.name)
	}
	return "SELECT " + strings.Join(exprs, ", ") + " FROM ticket_service GROUP BY workspace_id, ticket_id"
}
