// Package examples_test proves that the Go snippets of the documentation
// compile: every ```go block of README.md, docs/*.md and examples/*/README.md
// is built, all together in one `go build`, against the module as it is.
//
// A block that declares a package is compiled as a file of its own. Any
// other block is a fragment, compiled the way the HTML comment on the line
// right before its fence says (the comment is not rendered):
//
//	<!-- snippet: MODE[; Go declarations] -->
//
// MODE is one of
//
//   - decls (the default without a comment): top-level declarations (the
//     package is main when they declare func main);
//   - func: statements, compiled as the body of a function; the variables
//     they declare need not be used;
//   - fields TYPE: the fields of a composite literal of TYPE, e.g.
//     "fields policypacks.Policy".
//
// The declarations after the first ";" are Go source put at the top level
// before the fragment: the names the fragment uses but the docs do not show
// (`var prog *automation.Program; var dir string`). Imports are never
// written: a fragment's package names (stacks, optup, cli, ...) are imported
// from docImports. A body written `{ ... }` is an elided one and compiles as
// `{ panic("elided") }`.
//
// When a snippet does not compile, the test fails with the compiler's
// errors at the documentation's file and line.
package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docImports are the packages a fragment may use by name without importing
// them.
var docImports = map[string]string{
	"assert":      "github.com/stretchr/testify/assert",
	"require":     "github.com/stretchr/testify/require",
	"pulumi":      "github.com/pulumi/pulumi/sdk/v3/go/pulumi",
	"automation":  "github.com/slipwayhq/slipway/automation",
	"optdeploy":   "github.com/slipwayhq/slipway/automation/optdeploy",
	"optdestroy":  "github.com/slipwayhq/slipway/automation/optdestroy",
	"optdrift":    "github.com/slipwayhq/slipway/automation/optdrift",
	"optpreview":  "github.com/slipwayhq/slipway/automation/optpreview",
	"optrefresh":  "github.com/slipwayhq/slipway/automation/optrefresh",
	"optup":       "github.com/slipwayhq/slipway/automation/optup",
	"cli":         "github.com/slipwayhq/slipway/cmd/slipway/cli",
	"baseline":    "github.com/slipwayhq/slipway/components/baseline",
	"workload":    "github.com/slipwayhq/slipway/components/workload",
	"rollout":     "github.com/slipwayhq/slipway/automation/rollout",
	"minimal":     "github.com/slipwayhq/slipway/examples/minimal",
	"policy":      "github.com/slipwayhq/slipway/examples/policy",
	"shop":        "github.com/slipwayhq/slipway/examples/team/shop",
	"slipwaytest": "github.com/slipwayhq/slipway/integration/slipwaytest",
	"fault":       "github.com/slipwayhq/slipway/integration/slipwaytest/fault",
	"policypacks": "github.com/slipwayhq/slipway/policypacks",
	"all":         "github.com/slipwayhq/slipway/policypacks/all",
	"kubernetes":  "github.com/slipwayhq/slipway/policypacks/kubernetes",
	"stacks":      "github.com/slipwayhq/slipway/stacks",
	"context":     "context",
	"errors":      "errors",
	"fmt":         "fmt",
	"os":          "os",
	"strings":     "strings",
	"testing":     "testing",
	"time":        "time",
}

// snippet is one ```go block of a markdown file.
type snippet struct {
	doc       string // the markdown file, relative to the module root
	line      int    // the line of its first line of code
	directive string // the snippet comment's text after "snippet:", or ""
	code      string
}

var (
	fence     = regexp.MustCompile("(?m)^\\s*```\\s*[Gg]o\\s*$")
	directive = regexp.MustCompile(`^<!--\s*snippet:\s*(.*?)\s*-->$`)
	elided    = regexp.MustCompile(`\{ *\.\.\. *\}`)
)

// snippets returns the ```go blocks of the markdown file doc (relative to
// root), failing when a block is not closed or its opening fence is written
// in a way the scan would miss.
func snippets(t *testing.T, root, doc string) []snippet {
	data, err := os.ReadFile(filepath.Join(root, doc))
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	var out []snippet
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```go" {
			continue
		}
		s := snippet{doc: doc, line: i + 2}
		if i > 0 {
			if m := directive.FindStringSubmatch(lines[i-1]); m != nil {
				s.directive = m[1]
			}
		}
		end := slices.Index(lines[i+1:], "```")
		require.GreaterOrEqual(t, end, 0, "%s:%d: the ```go block is never closed", doc, i+1)
		s.code = strings.Join(lines[i+1:i+1+end], "\n") + "\n"
		out = append(out, s)
		i += end + 1
	}
	require.Len(t, out, len(fence.FindAllString(string(data), -1)),
		"%s: a ```go fence the test does not see: write it as a line of its own, \"```go\"", doc)
	return out
}

// render returns the Go file that compiles s, with //line directives that
// put its errors at the documentation's lines.
func render(s snippet, abs string) (string, error) {
	code := elided.ReplaceAllString(s.code, `{ panic("elided") }`)
	at := func(line int) string { return fmt.Sprintf("//line %s:%d\n", abs, line) }
	mode, decls, _ := strings.Cut(s.directive, ";")
	mode = strings.TrimSpace(mode)
	if mode == "" && regexp.MustCompile(`(?m)^package \w+$`).MatchString(code) {
		mode = "file"
	}
	var src string
	switch kind, typ, _ := strings.Cut(mode, " "); kind {
	case "file":
		return at(s.line) + code, nil
	case "", "decls":
		src = at(s.line) + code
	case "func":
		src = "func _() {\n" + at(s.line) + code + "\t_ = 0 // uses\n}\n"
	case "fields":
		if typ == "" {
			return "", fmt.Errorf("%s:%d: \"fields\" needs a type: <!-- snippet: fields policypacks.Policy -->", s.doc, s.line-2)
		}
		src = "var _ = " + typ + "{\n" + at(s.line) + code + "}\n"
	default:
		return "", fmt.Errorf("%s:%d: unknown snippet mode %q (decls, func or fields TYPE)", s.doc, s.line-2, mode)
	}
	if strings.TrimSpace(decls) != "" {
		src = at(s.line-2) + decls + "\n" + src
	}
	src = "package snippet\n\n" + src
	f, err := parser.ParseFile(token.NewFileSet(), abs, src, 0)
	if err != nil {
		return "", err
	}
	// Import the package names the file uses but does not declare.
	var imports []string
	for _, id := range f.Unresolved {
		if path, ok := docImports[id.Name]; ok && !slices.Contains(imports, path) {
			imports = append(imports, path)
		}
	}
	slices.Sort(imports)
	var block strings.Builder
	for _, path := range imports {
		fmt.Fprintf(&block, "import %q\n", path)
	}
	// A function's variables count as used; func main makes a command.
	var uses strings.Builder
	pkg := "snippet"
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil {
			continue
		}
		if fn.Name.Name == "main" {
			pkg = "main"
		}
		if fn.Name.Name != "_" || mode != "func" {
			continue
		}
		for _, st := range fn.Body.List {
			switch st := st.(type) {
			case *ast.AssignStmt:
				if st.Tok == token.DEFINE {
					for _, e := range st.Lhs {
						if id, ok := e.(*ast.Ident); ok && id.Name != "_" {
							fmt.Fprintf(&uses, "\t_ = %s\n", id.Name)
						}
					}
				}
			case *ast.DeclStmt:
				if g, ok := st.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
					for _, spec := range g.Specs {
						for _, id := range spec.(*ast.ValueSpec).Names {
							if id.Name != "_" {
								fmt.Fprintf(&uses, "\t_ = %s\n", id.Name)
							}
						}
					}
				}
			}
		}
	}
	src = strings.Replace(src, "\t_ = 0 // uses\n", uses.String(), 1)
	return strings.Replace(src, "package snippet\n\n", "package "+pkg+"\n\n"+block.String(), 1), nil
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test's directory")
		dir = parent
	}
}

// docFiles returns README.md, docs/*.md and examples/*/README.md, relative
// to root.
func docFiles(t *testing.T, root string) []string {
	docs := []string{"README.md"}
	for _, pattern := range []string{"docs/*.md", "examples/*/README.md"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		require.NoError(t, err)
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			require.NoError(t, err)
			docs = append(docs, rel)
		}
	}
	return docs
}

// Every ```go block of README.md, docs/*.md and examples/*/README.md
// compiles against the module as it is: one `go build` of them all, each a
// package of its own that exists only in a build overlay (nothing is
// written into the module). A block that does not compile fails the test
// with the compiler's errors at the markdown file and line.
func TestDocs_EverySnippetCompiles(t *testing.T) {
	root := moduleRoot(t)
	docs := docFiles(t, root)
	var all []snippet
	for _, doc := range docs {
		all = append(all, snippets(t, root, doc)...)
	}
	// README.md, docs/library.md and docs/policy-packs.md alone have ten.
	require.GreaterOrEqual(t, len(all), 10, "the scan found too few ```go blocks in %v", docs)

	tmp := t.TempDir()
	overlay := map[string]map[string]string{"Replace": {}}
	var pkgs []string
	for i, s := range all {
		src, err := render(s, filepath.Join(root, s.doc))
		require.NoError(t, err)
		name := fmt.Sprintf("%s_%d", regexp.MustCompile(`\W`).ReplaceAllString(s.doc, "_"), s.line)
		content := filepath.Join(tmp, fmt.Sprintf("%d.go", i))
		require.NoError(t, os.WriteFile(content, []byte(src), 0o600))
		overlay["Replace"][filepath.Join(root, ".snippets", name, "snippet.go")] = content
		pkgs = append(pkgs, "./.snippets/"+name)
	}
	data, err := json.Marshal(overlay)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "overlay.json"), data, 0o600))

	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the test builds the snippets with the go command")
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel func()
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-10*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, goTool, append([]string{"build", "-overlay", filepath.Join(tmp, "overlay.json")}, pkgs...)...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	assert.NoError(t, err, "%d doc snippets do not all compile (errors at the markdown's lines; fragments: see examples/snippets_test.go):\n%s",
		len(all), strings.ReplaceAll(out.String(), root+string(filepath.Separator), ""))
}
