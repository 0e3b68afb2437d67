package pg_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// connect opens a connection to the test Postgres, with RegisterUUID when
// binary is set, in the given mode, closed when tb ends.
func connect(tb testing.TB, binary bool, mode pgx.QueryExecMode) *pgx.Conn {
	tb.Helper()
	cfg, err := pgx.ParseConfig(testenv.PostgresURL())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	if binary {
		pg.RegisterUUID(conn.TypeMap())
	}
	return conn
}

// TestRegisterUUID_RoundTrip sends and receives uuids every way the rooms
// do, in the binary (prepared statements) and the text (simple protocol)
// format: uuid.UUID and *uuid.UUID arguments, nil as NULL, scans into
// uuid.UUID and *uuid.UUID, NULL into both, and uuid[] as []uuid.UUID.
func TestRegisterUUID_RoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, mode := range map[string]pgx.QueryExecMode{"binary": pgx.QueryExecModeCacheStatement, "text": pgx.QueryExecModeSimpleProtocol} {
		t.Run(name, func(t *testing.T) {
			conn := connect(t, true, mode)
			a, b := uuid.New(), uuid.New()
			var gotA, gotNull uuid.UUID
			var gotB, gotNilPtr *uuid.UUID
			gotNull = uuid.New() // NULL must overwrite what a reused variable held
			var nilArg *uuid.UUID
			if err := conn.QueryRow(ctx, "SELECT $1::uuid, $2::uuid, $3::uuid, NULL::uuid", a, &b, nilArg).Scan(&gotA, &gotB, &gotNilPtr, &gotNull); err != nil {
				t.Fatal(err)
			}
			if gotA != a || gotB == nil || *gotB != b || gotNilPtr != nil || gotNull != uuid.Nil {
				t.Errorf("scanned %s, %v, %v, %s; want %s, &%s, nil, the nil uuid", gotA, gotB, gotNilPtr, gotNull, a, b)
			}
			var text string
			if err := conn.QueryRow(ctx, "SELECT $1::uuid::text", a).Scan(&text); err != nil || text != a.String() {
				t.Errorf("Postgres got %q (%v), want %s", text, err, a)
			}

			ids := []uuid.UUID{a, b, uuid.New()}
			var got, empty, null []uuid.UUID
			if err := conn.QueryRow(ctx, "SELECT $1::uuid[], $2::uuid[], NULL::uuid[]", ids, []uuid.UUID{}).Scan(&got, &empty, &null); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, ids) || empty == nil || len(empty) != 0 || null != nil {
				t.Errorf("arrays: %v, %#v, %#v; want %v, empty, nil", got, empty, null, ids)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM unnest($1::uuid[]) AS id WHERE id = ANY($2)", ids, ids[1:]).Scan(&n); err != nil || n != 2 {
				t.Errorf("= ANY($2) over uuid[]: %d matches (%v), want 2", n, err)
			}
		})
	}
}

// TestRegisterUUID_NoAllocations: with RegisterUUID, encoding a uuid.UUID
// for Postgres and scanning one back copies 16 bytes; pgx on its own goes
// through driver.Valuer and sql.Scanner, formatting and parsing 36
// characters of text.
func TestRegisterUUID_NoAllocations(t *testing.T) {
	m := pgtype.NewMap()
	pg.RegisterUUID(m)
	u := uuid.New()
	var arg any = u
	buf := make([]byte, 0, 64)
	var out uuid.UUID
	encoded, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, arg, buf)
	if err != nil || string(encoded) != string(u[:]) {
		t.Fatalf("encoded %x (%v), want the 16 bytes %x", encoded, err, u[:])
	}
	if err := m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, u[:], &out); err != nil || out != u {
		t.Fatalf("scanned %s (%v), want %s", out, err, u)
	}
	enc := testing.AllocsPerRun(100, func() { _, _ = m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, arg, buf) })
	scan := testing.AllocsPerRun(100, func() { _ = m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, u[:], &out) })
	if enc != 0 || scan != 0 {
		t.Errorf("encoding a uuid allocates %v times, scanning %v times; want 0", enc, scan)
	}
}

// BenchmarkUUIDs runs statements with uuid arguments and results on the
// test Postgres, with pgx's default handling and with RegisterUUID: four
// uuid arguments scanned back, and 100 uuids as uuid[] unnested into rows.
func BenchmarkUUIDs(b *testing.B) {
	ctx := context.Background()
	ids := make([]uuid.UUID, 100)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, binary := range []bool{false, true} {
		name := "default"
		if binary {
			name = "binary"
		}
		conn := connect(b, binary, pgx.QueryExecModeCacheStatement)
		b.Run(name+"/four", func(b *testing.B) {
			b.ReportAllocs()
			var w, x, y, z uuid.UUID
			for b.Loop() {
				if err := conn.QueryRow(ctx, "SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid", ids[0], ids[1], ids[2], ids[3]).Scan(&w, &x, &y, &z); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/unnest100", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, _ := conn.Query(ctx, "SELECT id FROM unnest($1::uuid[]) AS id", ids)
				got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
				if err != nil || len(got) != len(ids) {
					b.Fatal(err, len(got))
				}
			}
		})
	}
}
