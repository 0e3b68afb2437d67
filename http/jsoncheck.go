package http

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// jsonCheck walks a JSON document against the Go type it is to be decoded
// into, the way encoding/json would decode it, and collects every value
// that cannot decode: an unknown field, or a value of the wrong type (a
// number for a string, an object for a list, a fraction for an integer,
// "x" for a UUID). encoding/json stops at the first of these; the walk goes
// on, so a client learns all of them at once. Each is named by its path as
// validation names fields: customer.email, tags[2], custom_fields.tier.
type jsonCheck struct {
	problems []helpdeskflow.FieldProblem
}

func (c *jsonCheck) add(path, problem string) {
	c.problems = append(c.problems, helpdeskflow.FieldProblem{Field: path, Problem: problem})
}

// value checks raw, at path, against t. It returns raw without the parts
// that cannot decode, and ok false when nothing of it can (the caller then
// leaves it out).
func (c *jsonCheck) value(path string, raw json.RawMessage, t reflect.Type) (json.RawMessage, bool) {
	if string(raw) == "null" {
		return raw, true // null decodes into anything: a no-op or nil
	}
	if decodesItself(t) {
		return c.leaf(path, raw, t)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.value(path, raw, t.Elem())
	case reflect.Struct:
		return c.object(path, raw, t)
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return c.mapping(path, raw, t)
		}
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 { // []byte is a base64 string
			return c.list(path, raw, t)
		}
	}
	return c.leaf(path, raw, t)
}

// leaf checks a value by decoding it on its own.
func (c *jsonCheck) leaf(path string, raw json.RawMessage, t reflect.Type) (json.RawMessage, bool) {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return raw, true
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case t == reflect.TypeFor[uuid.UUID]():
		c.add(path, "must be a UUID")
	case t == reflect.TypeFor[time.Time]():
		c.add(path, "must be an RFC 3339 time")
	case errors.As(err, &typeErr) && typeErr.Type != nil:
		got := "got " + jsonKind(raw)
		if strings.HasPrefix(typeErr.Value, "number ") {
			got = "got " + typeErr.Value
		}
		c.add(path, "must be "+goKind(typeErr.Type)+", "+got)
	default:
		c.add(path, "has an invalid value")
	}
	return nil, false
}

// object checks a JSON object against struct t: each member must name a
// field (as encoding/json matches them: exactly, else ignoring case) and
// decode into it.
func (c *jsonCheck) object(path string, raw json.RawMessage, t reflect.Type) (json.RawMessage, bool) {
	members, ok := c.members(path, raw, "an object")
	if !ok {
		return nil, false
	}
	fields := fieldsOf(t)
	var out objectWriter
	for _, m := range members {
		f, ok := fields.lookup(m.key)
		if !ok {
			c.add(join(path, m.key), "unknown field")
			continue
		}
		if v, ok := c.value(join(path, f.name), m.value, f.typ); ok {
			out.add(m.key, v)
		}
	}
	return out.bytes(), true
}

// mapping checks a JSON object against a map with string keys.
func (c *jsonCheck) mapping(path string, raw json.RawMessage, t reflect.Type) (json.RawMessage, bool) {
	members, ok := c.members(path, raw, "an object")
	if !ok {
		return nil, false
	}
	var out objectWriter
	for _, m := range members {
		if v, ok := c.value(join(path, m.key), m.value, t.Elem()); ok {
			out.add(m.key, v)
		}
	}
	return out.bytes(), true
}

// list checks a JSON array against a slice. A list with an element that
// cannot decode is left out whole, so that what is left keeps its indexes.
func (c *jsonCheck) list(path string, raw json.RawMessage, t reflect.Type) (json.RawMessage, bool) {
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		c.add(path, "must be an array, got "+jsonKind(raw))
		return nil, false
	}
	whole := true
	var out bytes.Buffer
	out.WriteByte('[')
	for i, item := range items {
		v, ok := c.value(path+"["+strconv.Itoa(i)+"]", item, t.Elem())
		whole = whole && ok
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(v)
	}
	out.WriteByte(']')
	return out.Bytes(), whole
}

type member struct {
	key   string
	value json.RawMessage
}

// members returns the members of a JSON object in their order.
func (c *jsonCheck) members(path string, raw json.RawMessage, want string) ([]member, bool) {
	if raw[0] != '{' {
		c.add(path, "must be "+want+", got "+jsonKind(raw))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		c.add(path, "must be "+want)
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			c.add(path, "must be "+want)
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			c.add(path, "must be "+want)
			return nil, false
		}
		out = append(out, member{key, v})
	}
	return out, true
}

// objectWriter builds a JSON object from members already encoded.
type objectWriter struct{ buf bytes.Buffer }

func (w *objectWriter) add(key string, value json.RawMessage) {
	if w.buf.Len() == 0 {
		w.buf.WriteByte('{')
	} else {
		w.buf.WriteByte(',')
	}
	k, _ := json.Marshal(key) // a string always encodes
	w.buf.Write(k)
	w.buf.WriteByte(':')
	w.buf.Write(value)
}

func (w *objectWriter) bytes() json.RawMessage {
	if w.buf.Len() == 0 {
		return json.RawMessage("{}")
	}
	w.buf.WriteByte('}')
	return w.buf.Bytes()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodesItself reports whether values of t decode through their own
// UnmarshalJSON or UnmarshalText (uuid.UUID, time.Time, commands.Nullable),
// which the walk treats as one value.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[json.Unmarshaler]()) || p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// jsonKind names the kind of a JSON value, for "got …".
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// goKind names what a Go type accepts, in JSON terms.
func goKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}

// structField is a JSON member of a struct: its name and Go type.
type structField struct {
	name string
	typ  reflect.Type
}

type structFields struct {
	byName map[string]structField
	list   []structField
}

// lookup finds the field a member key decodes into: the exact name, else
// the first field whose name matches ignoring case, as encoding/json does.
func (fs structFields) lookup(key string) (structField, bool) {
	if f, ok := fs.byName[key]; ok {
		return f, true
	}
	for _, f := range fs.list {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return structField{}, false
}

var fieldCache sync.Map // reflect.Type → structFields

// fieldsOf returns the JSON fields of struct t as encoding/json sees them:
// exported fields by their json tag name or Go name, "-" skipped, the
// fields of embedded structs without a tag promoted (a shallower field
// wins over a deeper one of the same name).
func fieldsOf(t reflect.Type) structFields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(structFields)
	}
	fs := structFields{byName: map[string]structField{}}
	var walk func(t reflect.Type, depth int, depthOf map[string]int)
	walk = func(t reflect.Type, depth int, depthOf map[string]int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, depth+1, depthOf)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if d, seen := depthOf[name]; seen && d <= depth {
				continue
			}
			depthOf[name] = depth
			fs.byName[name] = structField{name: name, typ: sf.Type}
		}
	}
	walk(t, 0, map[string]int{})
	for _, f := range fs.byName {
		fs.list = append(fs.list, f)
	}
	// Case-insensitive matches take the first name in order, so the
	// choice never depends on map order.
	slices.SortFunc(fs.list, func(a, b structField) int { return strings.Compare(a.name, b.name) })
	fieldCache.Store(t, fs)
	return fs
}
