package pg

import (
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// RegisterUUID makes the connection whose type map is m send and receive
// github.com/google/uuid values as Postgres's binary uuid (16 bytes)
// instead of through driver.Valuer and sql.Scanner as text (36 characters,
// formatted and parsed each time): uuid.UUID and *uuid.UUID as arguments,
// *uuid.UUID and **uuid.UUID as scan targets, and []uuid.UUID both ways as
// uuid[]. Scanning NULL into a *uuid.UUID gives uuid.Nil, into a
// **uuid.UUID nil. Call it from pgxpool.Config.AfterConnect (or on a
// pgx.Conn's TypeMap) before the connection runs a statement; it is not
// safe to call while m is in use.
func RegisterUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
	m.RegisterDefaultPgType(uuid.UUID{}, "uuid")
	m.RegisterDefaultPgType([]uuid.UUID(nil), "_uuid")
}

// uuidCodec is pgx's uuid codec that also encodes uuid.UUID and scans into
// *uuid.UUID, in both formats.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok {
		switch format {
		case pgtype.BinaryFormatCode:
			return encodeUUIDBinary{}
		case pgtype.TextFormatCode:
			return encodeUUIDText{}
		}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok {
		switch format {
		case pgtype.BinaryFormatCode:
			return scanUUIDBinary{}
		case pgtype.TextFormatCode:
			return scanUUIDText{}
		}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	return append(buf, u[:]...), nil
}

type encodeUUIDText struct{}

func (encodeUUIDText) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	var text [36]byte
	hex.Encode(text[0:8], u[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], u[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], u[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], u[8:10])
	text[23] = '-'
	hex.Encode(text[24:], u[10:])
	return append(buf, text[:]...), nil
}

type scanUUIDBinary struct{}

func (scanUUIDBinary) Scan(src []byte, dst any) error {
	u := dst.(*uuid.UUID)
	switch len(src) {
	case 0:
		if src == nil {
			*u = uuid.Nil
			return nil
		}
	case 16:
		*u = uuid.UUID(src)
		return nil
	}
	return fmt.Errorf("invalid length for uuid: %d", len(src))
}

type scanUUIDText struct{}

func (scanUUIDText) Scan(src []byte, dst any) error {
	u := dst.(*uuid.UUID)
	if src == nil {
		*u = uuid.Nil
		return nil
	}
	parsed, err := uuid.ParseBytes(src)
	if err != nil {
		return err
	}
	*u = parsed
	return nil
}
