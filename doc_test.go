package lock_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// documented are the packages users read: every exported identifier in
// them (types, functions, methods of exported types, struct fields,
// interface methods, constants and variables) has a doc comment, which go
// doc and pkg.go.dev show.
var documented = []string{".", "config", "lockerr", "observe", "memlock", "redlock", "prom"}

func TestExportedIdentifiersHaveDocs(t *testing.T) {
	for _, dir := range documented {
		pkg, err := build.ImportDir(dir, 0) // the files of a normal build
		if err != nil {
			t.Fatalf("reading %s: %v", dir, err)
		}
		fset := token.NewFileSet()
		for _, name := range pkg.GoFiles {
			path := filepath.Join(dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
			if err != nil {
				t.Fatalf("parsing %s: %v", path, err)
			}
			for _, missing := range undocumented(f) {
				t.Errorf("%s: %s has no doc comment", path, missing)
			}
		}
	}
}

// undocumented lists the exported identifiers of f that have no doc
// comment (a comment on the line of a field, method or value counts).
func undocumented(f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() && d.Doc == nil && exportedRecv(d) {
				out = append(out, "func "+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					if d.Doc == nil && s.Doc == nil && s.Comment == nil {
						out = append(out, "type "+s.Name.Name)
					}
					var list *ast.FieldList
					switch t := s.Type.(type) {
					case *ast.StructType:
						list = t.Fields
					case *ast.InterfaceType:
						list = t.Methods
					}
					if list == nil {
						continue
					}
					for _, fl := range list.List {
						for _, n := range fl.Names {
							if n.IsExported() && fl.Doc == nil && fl.Comment == nil {
								out = append(out, s.Name.Name+"."+n.Name)
							}
						}
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
							out = append(out, n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// exportedRecv reports whether d is a function or a method of an
// exported type (methods of unexported types are not shown).
func exportedRecv(d *ast.FuncDecl) bool {
	if d.Recv == nil {
		return true
	}
	t := d.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return true
		}
	}
}
