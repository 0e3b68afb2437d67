package helpdeskflow_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

// TestStreamTypes_Complete reads the root package's source: every constant
// named Stream… is in StreamTypes, so a new stream type cannot slip past
// the tests generated from the list (such as the change feed's role test).
func TestStreamTypes_Complete(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range pkgs["helpdeskflow"].Files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Stream") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						continue
					}
					value, _ := strconv.Unquote(lit.Value)
					found++
					if !slices.Contains(helpdeskflow.StreamTypes, value) {
						t.Errorf("stream type %s (%q) is not in helpdeskflow.StreamTypes", name.Name, value)
					}
				}
			}
		}
	}
	if found != len(helpdeskflow.StreamTypes) {
		t.Errorf("found %d Stream… constants, StreamTypes has %d", found, len(helpdeskflow.StreamTypes))
	}
}
