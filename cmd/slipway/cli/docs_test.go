package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/stacks/web"
)

// regenerate is the command that rewrites docs/cli.
const regenerate = "go generate ./cmd/slipway"

// TestDocs_CLIReferenceIsCurrent: docs/cli holds exactly the pages the
// default slipway binary's command tree generates, byte for byte.
func TestDocs_CLIReferenceIsCurrent(t *testing.T) {
	want := t.TempDir()
	require.NoError(t, Docs(want, Definitions(web.Definition)))
	got := filepath.Join("..", "..", "..", "docs", "cli")
	pages := func(dir string) map[string]string {
		files, err := filepath.Glob(filepath.Join(dir, "*.md"))
		require.NoError(t, err)
		out := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			out[filepath.Base(f)] = string(b)
		}
		return out
	}
	w, g := pages(want), pages(got)
	require.Greater(t, len(w), 20, "the command tree has every verb")
	for name, page := range w {
		assert.Equal(t, page, g[name], "docs/cli/%s is not what the command tree generates; regenerate the reference with: %s", name, regenerate)
	}
	for name := range g {
		_, ok := w[name]
		assert.True(t, ok, "docs/cli/%s is the page of a command that is gone; regenerate the reference with: %s", name, regenerate)
	}
}

// TestDocs_SameTreeSameBytes: two generations agree (no dates, no
// machine-dependent defaults).
func TestDocs_SameTreeSameBytes(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	require.NoError(t, Docs(a, Definitions(web.Definition)))
	require.NoError(t, Docs(b, Definitions(web.Definition), Name("slipway")))
	files, err := filepath.Glob(filepath.Join(a, "*.md"))
	require.NoError(t, err)
	for _, f := range files {
		x, _ := os.ReadFile(f)
		y, err := os.ReadFile(filepath.Join(b, filepath.Base(f)))
		require.NoError(t, err)
		assert.Equal(t, string(x), string(y), filepath.Base(f))
	}
}
