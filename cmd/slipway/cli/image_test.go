package cli

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/stacks/web"
)

func TestImageBuild_BadInputNamesTheFlagBeforeAnythingIsBuilt(t *testing.T) {
	t.Parallel()
	opts := []Option{Definitions(web.Definition)}
	dir := t.TempDir()
	layout := []string{"--oci-layout", filepath.Join(dir, "layout")}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no output", []string{"image", "build", "--main", "./cmd/x"}, "--oci-layout DIR, --tarball FILE or --push"},
		{"unknown platform", append([]string{"image", "build", "--main", "./cmd/x", "--platform", "windows/amd64"}, layout...), "--platform"},
		{"binary not PLATFORM=PATH", append([]string{"image", "build", "--binary", "./bin/x"}, layout...), `--binary "./bin/x" is not PLATFORM=PATH`},
		{"binary missing", append([]string{"image", "build", "--binary", "linux/amd64=" + filepath.Join(dir, "nope")}, layout...), "--binary linux/amd64="},
		{"tarball of an index", []string{"image", "build", "--main", "./cmd/x", "--platform", "linux/amd64,linux/arm64", "--tarball", filepath.Join(dir, "i.tar")}, "--tarball holds one platform"},
		{"created not a time", append([]string{"image", "build", "--main", "./cmd/x", "--created", "yesterday"}, layout...), "--created"},
		{"no binary", append([]string{"image", "build"}, layout...), "no binary for linux/amd64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, opts, append(c.args, "--json", "--cache-dir", filepath.Join(dir, "cache"))...)
			assert.Equal(t, 1, r.code, r.stderr)
			env := validEnvelope(t, r)
			e, ok := env["error"].(map[string]any)
			require.True(t, ok, "an error: %s", r.stdout)
			assert.Equal(t, "invalid_input", e["code"])
			assert.Contains(t, e["message"], c.want)
			assert.NoDirExists(t, filepath.Join(dir, "layout"), "nothing was written")
			assert.NoDirExists(t, filepath.Join(dir, "cache"), "nothing was built")
		})
	}
}
