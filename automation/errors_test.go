package automation

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorTypes_HaveAMatchingPredicateOrSayErrorsAs: every exported error
// type of the module (a type named *Error) has a predicate Is<Name without
// "Error"> in its package, or its doc comment says to get it with
// errors.As; and a predicate that tests for an error type is named after it
// (ChangesFoundError/IsChangesFound, never ChangesError/IsChangesFound).
func TestErrorTypes_HaveAMatchingPredicateOrSayErrorsAs(t *testing.T) {
	type errType struct {
		pkg, name string
		doc       string
	}
	var types []errType
	preds := map[string]map[string]string{} // package dir -> predicate -> source
	fset := token.NewFileSet()
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "modules" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, b, parser.ParseComments)
		if err != nil {
			return err
		}
		pkg := filepath.Dir(path)
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok || ts.Assign.IsValid() || !ts.Name.IsExported() || !strings.HasSuffix(ts.Name.Name, "Error") {
						continue
					}
					doc := ts.Doc.Text()
					if doc == "" {
						doc = decl.Doc.Text()
					}
					types = append(types, errType{pkg: pkg, name: ts.Name.Name, doc: doc})
				}
			case *ast.FuncDecl:
				if decl.Recv != nil || !strings.HasPrefix(decl.Name.Name, "Is") || decl.Body == nil {
					continue
				}
				src := string(b[fset.Position(decl.Body.Pos()).Offset:fset.Position(decl.Body.End()).Offset])
				if preds[pkg] == nil {
					preds[pkg] = map[string]string{}
				}
				preds[pkg][decl.Name.Name] = src
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(types), 20, "the walk must find the module's error types")
	seen := map[string]bool{}
	for _, ty := range types {
		base := strings.TrimSuffix(ty.name, "Error")
		want := "Is" + base
		_, hasPred := preds[ty.pkg][want]
		assert.True(t, hasPred || strings.Contains(ty.doc, "errors.As"),
			"%s.%s has neither a predicate %s nor a doc comment saying to get it with errors.As", ty.pkg, ty.name, want)
		// A predicate that tests for this type must carry its name.
		for name, src := range preds[ty.pkg] {
			if regexp.MustCompile(`\*` + ty.name + `\b`).MatchString(src) {
				assert.Equal(t, want, name, "%s tests for %s.%s; name one after the other", name, ty.pkg, ty.name)
				seen[ty.pkg+"."+ty.name] = true
			}
		}
	}
	assert.True(t, seen[filepath.Join("..", "automation", "statestore")+".StackLockedError"],
		"the scan must see that IsStackLocked tests for StackLockedError: %v", seen)
}

// TestOpError_DocNamesOnlyPredicatesThatExist: OpError's doc comment names
// the predicates that classify it; each must exist in this package.
func TestOpError_DocNamesOnlyPredicatesThatExist(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	require.NoError(t, err)
	funcs := map[string]bool{}
	var doc string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil {
						funcs[d.Name.Name] = true
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == "OpError" {
							doc = d.Doc.Text()
						}
					}
				}
			}
		}
	}
	require.NotEmpty(t, doc)
	var named []string
	for _, w := range strings.FieldsFunc(doc, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) {
		if strings.HasPrefix(w, "Is") && len(w) > 2 && w[2] >= 'A' && w[2] <= 'Z' {
			named = append(named, w)
		}
	}
	require.NotEmpty(t, named, "OpError's doc must name the predicates that classify it")
	for _, n := range named {
		assert.True(t, funcs[n], "OpError's doc names %s, which package automation does not have", n)
	}
}
