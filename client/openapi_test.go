package client_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
)

// spec is the served OpenAPI document, as JSON.
type spec map[string]any

func loadSpec(t *testing.T) spec {
	t.Helper()
	raw, err := os.ReadFile("../http/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// resolve follows a local $ref.
func (s spec) resolve(node map[string]any) map[string]any {
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		var cur any = map[string]any(s)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		node = cur.(map[string]any)
	}
}

// types is a schema's type or types.
func types(schema map[string]any) []string {
	switch t := schema["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

var (
	rawMessage = reflect.TypeFor[json.RawMessage]()
	timeType   = reflect.TypeFor[time.Time]()
)

// match checks that Go type typ decodes from and encodes to schema: every
// JSON field of a struct is a property of the schema, with a matching
// type; it returns the mismatches, named by where they are.
func (s spec) match(schema map[string]any, typ reflect.Type, where string) []string {
	schema = s.resolve(schema)
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := schema[key].([]any); ok {
			var last []string
			for _, alt := range alts {
				alt := s.resolve(alt.(map[string]any))
				if slices.Equal(types(alt), []string{"null"}) {
					continue
				}
				if last = s.match(alt, typ, where); len(last) == 0 {
					return nil
				}
			}
			return append(last, fmt.Sprintf("%s: %s matches none of %s", where, typ, key))
		}
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == rawMessage || typ.Kind() == reflect.Interface {
		return nil
	}
	want := map[reflect.Kind]string{reflect.String: "string", reflect.Bool: "boolean", reflect.Int: "integer", reflect.Int64: "integer",
		reflect.Float64: "number", reflect.Slice: "array", reflect.Map: "object", reflect.Struct: "object"}[typ.Kind()]
	if typ == timeType {
		want = "string"
	}
	have := types(schema)
	if len(have) > 0 && !slices.Contains(have, want) && !(want == "integer" && slices.Contains(have, "number")) {
		return []string{fmt.Sprintf("%s: Go %s is %s, the document says %v", where, typ, want, have)}
	}
	switch {
	case typ == timeType:
		return nil
	case typ.Kind() == reflect.Slice:
		items, ok := schema["items"].(map[string]any)
		if !ok {
			return []string{where + ": an array without items"}
		}
		return s.match(items, typ.Elem(), where+"[]")
	case typ.Kind() == reflect.Struct:
		props, _ := schema["properties"].(map[string]any)
		var out []string
		for _, f := range jsonFields(typ) {
			prop, ok := props[f.name].(map[string]any)
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: not in the document", where, f.name))
				continue
			}
			out = append(out, s.match(prop, f.typ, where+"."+f.name)...)
		}
		return out
	}
	return nil
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the JSON fields of a struct, embedded structs' fields
// promoted as encoding/json promotes them.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name, f.Type})
	}
	return out
}

// TestRoutesMatchTheOpenAPIDocument: every route the client calls is in the
// document, with every query parameter it sends, and the Go types of its
// bodies and answers have only fields the document names, of the same
// types.
func TestRoutesMatchTheOpenAPIDocument(t *testing.T) {
	s := loadSpec(t)
	paths := s["paths"].(map[string]any)
	for _, r := range client.Routes() {
		name := r.Method + " " + r.Path
		item, ok := paths[r.Path].(map[string]any)
		if !ok {
			t.Errorf("%s: path not in the document", name)
			continue
		}
		op, ok := item[strings.ToLower(r.Method)].(map[string]any)
		if !ok {
			t.Errorf("%s: method not in the document", name)
			continue
		}
		params := map[string]bool{}
		for _, p := range op["parameters"].([]any) {
			p := s.resolve(p.(map[string]any))
			if p["in"] == "query" {
				params[p["name"].(string)] = true
			}
		}
		for _, q := range r.Query {
			if !params[q] {
				t.Errorf("%s: query parameter %q not in the document", name, q)
			}
		}
		if r.Body != nil {
			body, ok := op["requestBody"].(map[string]any)
			if !ok {
				t.Errorf("%s: the client sends a body the document does not take", name)
			} else {
				schema := body["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
				for _, p := range s.match(schema, reflect.TypeOf(r.Body), name+" body") {
					t.Error(p)
				}
			}
		}
		if r.Answer == nil {
			continue
		}
		matched := false
		for code, resp := range op["responses"].(map[string]any) {
			if !strings.HasPrefix(code, "2") {
				continue
			}
			content, _ := s.resolve(resp.(map[string]any))["content"].(map[string]any)
			media, ok := content["application/json"].(map[string]any)
			if !ok {
				continue
			}
			matched = true
			for _, p := range s.match(media["schema"].(map[string]any), reflect.TypeOf(r.Answer), name+" "+code) {
				t.Error(p)
			}
		}
		if !matched {
			t.Errorf("%s: no JSON success answer in the document", name)
		}
	}
}

// The check itself finds a field the document does not have, and a type
// that differs.
func TestRoutesMatch_FindsMismatches(t *testing.T) {
	s := loadSpec(t)
	schema := map[string]any{"$ref": "#/components/schemas/Message"}
	type wrongName struct {
		Bodyy string `json:"bodyy"`
	}
	type wrongType struct {
		Internal string `json:"internal"`
	}
	if len(s.match(schema, reflect.TypeFor[wrongName](), "x")) == 0 || len(s.match(schema, reflect.TypeFor[wrongType](), "x")) == 0 {
		t.Error("mismatches not found")
	}
	if p := s.match(schema, reflect.TypeFor[client.Message](), "x"); len(p) != 0 {
		t.Error(p)
	}
}
