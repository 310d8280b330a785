package automation_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// layers are the engine's packages, each with the layers it may import
// (see the package documentation): a call only walks down.
var layers = map[string][]string{
	"internal/engine":    nil,
	"internal/stack":     {"internal/engine"},
	"internal/release":   {"internal/engine", "internal/stack"},
	"internal/ephemeral": {"internal/engine", "internal/stack"},
	"internal/drift":     {"internal/engine", "internal/stack"},
	"internal/promote":   {"internal/engine", "internal/stack", "internal/release"},
	"internal/canary":    {"internal/engine", "internal/stack", "internal/release"},
	".": {"internal/engine", "internal/stack", "internal/release", "internal/ephemeral", "internal/drift",
		"internal/promote", "internal/canary"},
}

// TestLayers_ImportOnlyDownward: no layer imports one above it or beside
// it (a lifecycle feature never reaches into another's package, except
// promote, which is built on release), and none imports the front.
func TestLayers_ImportOnlyDownward(t *testing.T) {
	const module = "github.com/slipwayhq/slipway/automation"
	for dir, allowed := range layers {
		imports := map[string]bool{}
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			require.NoError(t, err)
			for _, im := range pf.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				imports[p] = true
			}
		}
		for other := range layers {
			path := module
			if other != "." {
				path += "/" + other
			}
			if other == dir || !imports[path] {
				continue
			}
			assert.True(t, slices.Contains(allowed, other), "%s imports %s, which is not below it", dir, other)
		}
	}
}

// TestLayers_StayUnderTheSizeLimit: no package of the engine grows past
// ~1,500 lines of non-test code.
func TestLayers_StayUnderTheSizeLimit(t *testing.T) {
	for dir := range layers {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		n := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			n += strings.Count(string(b), "\n")
		}
		assert.Greater(t, n, 0, dir)
		assert.LessOrEqual(t, n, 1500, "%s has %d lines of non-test code; split it by layer", dir, n)
	}
}
