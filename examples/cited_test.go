package examples_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	// cited is a test, benchmark or example named in inline code of the
	// docs; a trailing "*" or "_" names a family by its prefix.
	cited = regexp.MustCompile("`(?:[a-z/]+[.:])?((?:Test|Benchmark|Example)[A-Za-z0-9_]*)(\\*?)`")
	// declared is a test function's declaration.
	declared = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Example)[A-Za-z0-9_]*)\(`)
)

// The docs prove their guarantees by naming tests (docs/trust.md above
// all): every test, benchmark and example they name in inline code exists
// in the module, so a renamed or deleted test cannot leave a claim proved
// by nothing. A name ending in "_" or "*" must be the prefix of at least
// one test. Code blocks are left out (a snippet may declare its own test).
func TestDocs_EveryCitedTestExists(t *testing.T) {
	root := moduleRoot(t)
	defined := map[string]bool{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range declared.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	}))
	require.Greater(t, len(defined), 300, "the scan found too few tests under %s", root)

	n := 0
	for _, doc := range docFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, doc))
		require.NoError(t, err)
		inFence := false
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inFence = !inFence
				continue
			}
			if inFence {
				continue
			}
			for _, m := range cited.FindAllStringSubmatch(line, -1) {
				name, family := m[1], m[2] == "*" || strings.HasSuffix(m[1], "_")
				n++
				if family {
					assert.Truef(t, hasPrefix(defined, strings.TrimSuffix(name, "*")),
						"%s:%d: no test starts with %s; rename the reference or the test", doc, i+1, name)
					continue
				}
				assert.Truef(t, defined[name], "%s:%d: %s is not a test, benchmark or example of the module; rename the reference or restore the test", doc, i+1, name)
			}
		}
	}
	// docs/trust.md alone names more than fifty.
	require.Greater(t, n, 50, "the scan found too few cited tests")
}

// hasPrefix reports whether a defined name starts with prefix.
func hasPrefix(defined map[string]bool, prefix string) bool {
	for name := range defined {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
