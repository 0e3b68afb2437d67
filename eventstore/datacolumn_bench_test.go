package eventstore_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// BenchmarkDataColumn compares json and jsonb for events.data on the
// append path (Append's statement: two events, ticket.created and
// customer.created, from text parameters, then COMMIT) and the load path
// (a stream's events; the relay's batch of 1,000 in commit order), on two
// tables shaped like events. Point HDF_BENCH_POSTGRES_URL at a Postgres
// with production durability (fsync, synchronous_commit and
// full_page_writes on); without it the test server is used.
func BenchmarkDataColumn(b *testing.B) {
	url := os.Getenv("HDF_BENCH_POSTGRES_URL")
	if url == "" {
		url = testenv.PostgresURL()
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	ticket, err := helpdeskflow.MarshalJSON(helpdeskflow.TicketCreated{Subject: "Order 4711 arrived damaged", Status: "open", Priority: "normal",
		Channel: "api", Tags: []string{"shipping", "damaged"}, CustomerID: uuid.New(), CustomFields: map[string]any{"order": "4711", "amount": 12.5},
		Message: helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: "customer",
			Body: "<p>" + strings.Repeat("The parcel was crushed on arrival. ", 12) + "</p>", BodyText: strings.Repeat("The parcel was crushed on arrival. ", 12)}})
	if err != nil {
		b.Fatal(err)
	}
	customer := `{"email":"ada@example.com","name":"Ada Lovelace","tags":[],"custom_fields":{}}`
	md := `{"actor":{"type":"api_key","id":"` + uuid.NewString() + `"},"channel":"api","request_id":"req_0123456789abcdef"}`
	for _, typ := range []string{"jsonb", "json"} {
		table := "bench_events_" + typ + "_" + suffix
		if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (
			seq bigserial NOT NULL, tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(), id uuid NOT NULL UNIQUE,
			stream_id uuid NOT NULL, stream_type text NOT NULL, version bigint NOT NULL, workspace_id uuid NOT NULL,
			type text NOT NULL, schema_version int NOT NULL, data `+typ+` NOT NULL, metadata jsonb NOT NULL,
			occurred_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tx_id, seq), UNIQUE (stream_id, version))`); err != nil {
			b.Fatal(err)
		}
		defer pool.Exec(ctx, "DROP TABLE "+table)
		workspace := uuid.New()
		var streams []uuid.UUID
		var mu sync.Mutex
		appendOne := func() error {
			stream := uuid.New()
			_, err := pool.Exec(ctx, `INSERT INTO `+table+` (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata, occurred_at)
				SELECT e.id, $1, 'ticket', e.version, $2, e.type, 1, e.data::`+typ+`, $3, e.occurred_at
				FROM unnest($4::uuid[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[]) AS e(id, version, type, data, occurred_at)`,
				stream, workspace, md, []uuid.UUID{uuid.New(), uuid.New()}, []int64{1, 2},
				[]string{helpdeskflow.EventTicketCreated, helpdeskflow.EventCustomerCreated}, []string{string(ticket), customer},
				[]time.Time{time.Now(), time.Now()})
			if err == nil {
				mu.Lock()
				if len(streams) < 1000 {
					streams = append(streams, stream)
				}
				mu.Unlock()
			}
			return err
		}
		b.Run(typ+"/append", func(b *testing.B) {
			for b.Loop() {
				if err := appendOne(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ+"/append-c16", func(b *testing.B) {
			b.SetParallelism(8) // 2 cores: 16 clients
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := appendOne(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(typ+"/load-stream", func(b *testing.B) {
			i := 0
			for b.Loop() {
				rows, err := pool.Query(ctx, `SELECT id, type, data, metadata FROM `+table+` WHERE stream_id = $1 ORDER BY version`, streams[i%len(streams)])
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					var id uuid.UUID
					var t string
					var data, meta []byte
					if err := rows.Scan(&id, &t, &data, &meta); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if rows.Err() != nil || n != 2 {
					b.Fatal(rows.Err(), n)
				}
				i++
			}
		})
		b.Run(typ+"/read-batch-1000", func(b *testing.B) {
			b.SetBytes(int64(1000 * (len(ticket) + len(customer)) / 2))
			for b.Loop() {
				rows, err := pool.Query(ctx, `SELECT id, data, metadata FROM `+table+` ORDER BY tx_id, seq LIMIT 1000`)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					var id uuid.UUID
					var data, meta []byte
					if err := rows.Scan(&id, &data, &meta); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if rows.Err() != nil || n != 1000 {
					b.Fatal(rows.Err(), n)
				}
			}
		})
		var size int64
		if err := pool.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass) / greatest(count(*), 1) FROM `+table, table).Scan(&size); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "%s: %d bytes per event on disk\n", typ, size)
	}
}
