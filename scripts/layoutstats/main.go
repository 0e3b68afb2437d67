// Command layoutstats prints the measures of the code's layout that issue 14
// set targets for: top-level folders of Go code, the types exporting the
// most methods, the interfaces listing the most, the longest files, and
// which packages import the libraries that one room each should own.
// Tests, the *test fake packages and scripts/ are left out.
//
//	go run ./scripts/layoutstats [-top N]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type count struct {
	name string
	n    int
}

func main() {
	top := flag.Int("top", 5, "how many of each to list")
	flag.Parse()
	module := "github.com/helpdeskflow/helpdeskflow"

	folders := map[string]bool{}
	methods := map[string]int{}
	ifaces := map[string]int{}
	var lines []count
	importers := map[string]map[string]bool{}
	libs := map[string]string{
		"franz-go":      "github.com/twmb/franz-go",
		"pgx":           "github.com/jackc/pgx",
		"clickhouse-go": "github.com/ClickHouse/clickhouse-go",
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || path == "scripts" || path == "deploy" || path == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		if strings.HasSuffix(filepath.Base(dir), "test") {
			return nil // fakes for tests (gmailtest, testenv, ...)
		}
		if dir != "." {
			folders[strings.Split(dir, string(filepath.Separator))[0]] = true
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines = append(lines, count{path, strings.Count(string(src), "\n")})
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := module
		if dir != "." {
			pkg += "/" + filepath.ToSlash(dir)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			for lib, prefix := range libs {
				if strings.HasPrefix(p, prefix) {
					if importers[lib] == nil {
						importers[lib] = map[string]bool{}
					}
					importers[lib][strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")] = true
				}
			}
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil || !d.Name.IsExported() {
					continue
				}
				t := d.Recv.List[0].Type
				if s, ok := t.(*ast.StarExpr); ok {
					t = s.X
				}
				if g, ok := t.(*ast.IndexExpr); ok {
					t = g.X
				}
				if id, ok := t.(*ast.Ident); ok {
					methods[dir+"."+id.Name]++
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok {
						continue
					}
					if it, ok := ts.Type.(*ast.InterfaceType); ok {
						n := 0
						for _, m := range it.Methods.List {
							if _, ok := m.Type.(*ast.FuncType); ok {
								n += len(m.Names)
							}
						}
						ifaces[dir+"."+ts.Name.Name] = n
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "layoutstats:", err)
		os.Exit(1)
	}
	var names []string
	for f := range folders {
		names = append(names, f)
	}
	sort.Strings(names)
	fmt.Printf("top-level folders of Go code: %d (%s)\n", len(names), strings.Join(names, " "))
	printTop("types by exported methods", sorted(methods), *top)
	printTop("interfaces by methods listed", sorted(ifaces), *top)
	sort.Slice(lines, func(i, j int) bool { return lines[i].n > lines[j].n })
	printTop("files by lines", lines, *top)
	for _, lib := range []string{"franz-go", "pgx", "clickhouse-go"} {
		var pkgs []string
		for p := range importers[lib] {
			if p == "" {
				p = "(root)"
			}
			pkgs = append(pkgs, p)
		}
		sort.Strings(pkgs)
		fmt.Printf("%s importers: %d (%s)\n", lib, len(pkgs), strings.Join(pkgs, " "))
	}
}

func sorted(m map[string]int) []count {
	var out []count
	for k, v := range m {
		out = append(out, count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].name < out[j].name
	})
	return out
}

func printTop(title string, cs []count, n int) {
	fmt.Printf("%s:", title)
	for i, c := range cs {
		if i == n {
			break
		}
		fmt.Printf(" %s %d;", c.name, c.n)
	}
	fmt.Println()
}
