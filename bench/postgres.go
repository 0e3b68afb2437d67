package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// pgDatabase is the benchmark's own database on the HDF_POSTGRES_URL server.
type pgDatabase struct {
	name     string
	url      string // the bench database
	adminURL string // the server's maintenance database
	host     string
	port     int
	user     string
	password string
	sslmode  string

	// On the bench database, through pg.Connect's pool (this package
	// may not import pgx itself: scripts/check-deps.sh).
	exec        func(ctx context.Context, sql string) error
	queryString func(ctx context.Context, sql string, args ...any) (string, error)
	queryRows   func(ctx context.Context, sql string, args ...any) ([][]any, error)
	closePool   func()
}

func createPostgresDatabase(ctx context.Context, serverURL, name string) (*pgDatabase, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("HDF_POSTGRES_URL: %w", err)
	}
	admin := *u
	admin.Path = "/postgres"
	bench := *u
	bench.Path = "/" + name
	db := &pgDatabase{name: name, url: bench.String(), adminURL: admin.String(), host: u.Hostname(),
		user: u.User.Username(), sslmode: u.Query().Get("sslmode")}
	db.password, _ = u.User.Password()
	db.port = 5432
	if p := u.Port(); p != "" {
		if db.port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("HDF_POSTGRES_URL port: %w", err)
		}
	}

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pg.Connect(cctx, db.adminURL, 1)
	if err != nil {
		return nil, fmt.Errorf("connect to the Postgres server (is it running? bash scripts/services.sh status test): %w", err)
	}
	defer pool.Close()
	if _, err := pool.Pool().Exec(cctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	benchPool, err := pg.Connect(cctx, db.url, 4)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("connect to %s: %w", name, err), db.drop())
	}
	db.exec = func(ctx context.Context, sql string) error {
		_, err := benchPool.Pool().Exec(ctx, sql)
		return err
	}
	db.queryString = func(ctx context.Context, sql string, args ...any) (string, error) {
		var v string
		err := benchPool.Pool().QueryRow(ctx, sql, args...).Scan(&v)
		return v, err
	}
	db.queryRows = func(ctx context.Context, sql string, args ...any) ([][]any, error) {
		rows, err := benchPool.Pool().Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
	db.closePool = benchPool.Close
	return db, nil
}

func (db *pgDatabase) close() {
	if db.closePool != nil {
		db.closePool()
		db.closePool = nil
	}
}

// drop removes the database, disconnecting whoever is still on it.
func (db *pgDatabase) drop() error {
	db.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pg.Connect(ctx, db.adminURL, 1)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", db.name, err)
	}
	defer pool.Close()
	if _, err := pool.Pool().Exec(ctx, "DROP DATABASE IF EXISTS "+db.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", db.name, err)
	}
	logf("dropped Postgres database %s", db.name)
	return nil
}

// describe returns the server settings that decide what a commit costs.
func (db *pgDatabase) describe(ctx context.Context) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
		"shared_buffers", "max_connections", "commit_delay"} {
		if v, err := db.queryString(ctx, "SELECT current_setting($1)", name); err == nil {
			out[name] = v
		}
	}
	return out
}
