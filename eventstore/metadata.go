package eventstore

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/helpdeskflow/helpdeskflow"
)

// decodeMetadata decodes a stored event's metadata into md. It reads the
// common shape itself, an object whose members are the known string
// fields and an actor object of strings, as Postgres prints jsonb, which
// takes several times less CPU than encoding/json; anything else (an
// escape, a byte beyond ASCII, a number, null, an unknown or differently
// cased key) goes to json.Unmarshal, so the result is always what
// json.Unmarshal would give.
func decodeMetadata(data []byte, md *helpdeskflow.Metadata) error {
	var fast helpdeskflow.Metadata
	if plainASCII(data) && decodeMetadataFast(data, &fast) {
		*md = fast
		return nil
	}
	return json.Unmarshal(data, md)
}

// plainASCII reports whether data holds only printable ASCII and no
// backslash (so no string in it has an escape or a control character).
func plainASCII(data []byte) bool {
	return !bytes.ContainsFunc(data, func(r rune) bool { return r == '\\' || r >= utf8.RuneSelf || r < ' ' })
}

// decodeMetadataFast decodes data of the common shape; false when data is
// of any other.
func decodeMetadataFast(data []byte, md *helpdeskflow.Metadata) bool {
	d := metadataDecoder{data: data}
	ok := d.object(func(key string) bool {
		if key == "actor" {
			return d.object(func(key string) bool {
				switch key {
				case "type":
					return d.str(&md.Actor.Type)
				case "id":
					return d.str(&md.Actor.ID)
				}
				return false
			})
		}
		if f := metadataString(md, key); f != nil {
			return d.str(f)
		}
		return false
	})
	d.space()
	return ok && d.i == len(d.data)
}

// metadataString is the string field of md that key names exactly; nil for
// any other key.
func metadataString(md *helpdeskflow.Metadata, key string) *string {
	switch key {
	case "channel":
		return &md.Channel
	case "api_key_id":
		return &md.APIKeyID
	case "request_id":
		return &md.RequestID
	case "rule_id":
		return &md.RuleID
	case "causation_id":
		return &md.CausationID
	case "correlation_id":
		return &md.CorrelationID
	}
	return nil
}

// metadataDecoder reads JSON that is plainASCII: white space is blanks.
type metadataDecoder struct {
	data []byte
	i    int
}

func (d *metadataDecoder) space() {
	for d.i < len(d.data) && d.data[d.i] == ' ' {
		d.i++
	}
}

// next skips white space and consumes c; false when c does not follow.
func (d *metadataDecoder) next(c byte) bool {
	d.space()
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string into s.
func (d *metadataDecoder) str(s *string) bool {
	if !d.next('"') {
		return false
	}
	end := bytes.IndexByte(d.data[d.i:], '"')
	if end < 0 {
		return false
	}
	*s = string(d.data[d.i : d.i+end])
	d.i += end + 1
	return true
}

// object reads an object, calling member for each key with the decoder
// before the member's value.
func (d *metadataDecoder) object(member func(key string) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		var key string
		if !d.str(&key) || !d.next(':') || !member(key) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}
