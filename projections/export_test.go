package projections

import (
	"context"
	"fmt"

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
