package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// clickHouseOptions reads HDF_CLICKHOUSE_ADDR as the projections package
// does: host:port (user default, no password) or a native-protocol DSN.
func clickHouseOptions(addr string) (*clickhouse.Options, error) {
	opts := &clickhouse.Options{Addr: []string{addr}}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = clickhouse.ParseDSN(addr); err != nil {
			return nil, fmt.Errorf("HDF_CLICKHOUSE_ADDR: %w", err)
		}
	}
	opts.Auth.Database = "default"
	opts.DialTimeout = 5 * time.Second
	opts.MaxOpenConns = 4
	return opts, nil
}

func openClickHouse(ctx context.Context, opts *clickhouse.Options) (driver.Conn, error) {
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("reach ClickHouse at %v: %w", opts.Addr, err)
	}
	return conn, nil
}

func dropClickHouseDatabase(opts *clickhouse.Options, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := openClickHouse(ctx, opts)
	if err != nil {
		return fmt.Errorf("drop ClickHouse database %s: %w", name, err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("drop ClickHouse database %s: %w", name, err)
	}
	logf("dropped ClickHouse database %s", name)
	return nil
}

func clickHouseVersion(ctx context.Context, ch driver.Conn) string {
	var v string
	if err := ch.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "unknown: " + err.Error()
	}
	return v
}
