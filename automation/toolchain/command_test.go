package toolchain

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommand_BuildsWithProgressThenOnlyWhenTheSourcesChange builds a tiny
// module's command as cmd/bootstrap builds slipway's: the first build says
// what it compiles and reports its progress, the binary runs with its
// arguments, a second call compiles and relinks nothing, and a change to the
// sources builds again.
func TestCommand_BuildsWithProgressThenOnlyWhenTheSourcesChange(t *testing.T) {
	ctx := context.Background()
	mod := t.TempDir()
	write := func(greeting string) {
		require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/hello\n\ngo 1.24\n"), 0o644))
		require.NoError(t, os.MkdirAll(filepath.Join(mod, "cmd", "hello"), 0o755))
		src := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Println(\"" + greeting + "\", os.Args[1:]); os.Exit(3) }\n"
		require.NoError(t, os.WriteFile(filepath.Join(mod, "cmd", "hello", "main.go"), []byte(src), 0o644))
	}
	write("hello")
	var log bytes.Buffer
	r := New(WithCacheDir(t.TempDir()), WithLog(&log))
	r.progressEvery = time.Millisecond
	r.listingNotice = time.Nanosecond // the listing (a go list process) takes longer

	bin, err := r.Command(ctx, mod, "./cmd/hello")
	require.NoError(t, err)
	assert.Contains(t, log.String(), "slipway: command hello: listing the packages of ./cmd/hello", "the listing is announced")
	assert.Equal(t, "hello", filepath.Base(bin))
	assert.True(t, strings.HasPrefix(bin, r.CacheDir()), "the binary is kept in the cache: %s", bin)
	assert.Contains(t, log.String(), "building ./cmd/hello: ")
	assert.Regexp(t, `slipway: command hello: \S+ elapsed; `, log.String(), "a progress line")
	assert.Contains(t, log.String(), "built ./cmd/hello in ")
	run := func() string {
		out, err := exec.Command(bin, "demo", "--x").Output()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 3, exit.ExitCode(), "the command's exit code")
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "hello [demo --x]", run())
	before, err := os.Stat(bin)
	require.NoError(t, err)

	log.Reset()
	again, err := r.Command(ctx, mod, "./cmd/hello")
	require.NoError(t, err)
	assert.Equal(t, bin, again)
	assert.NotContains(t, log.String(), "building ", "nothing to compile the second time")
	after, err := os.Stat(bin)
	require.NoError(t, err)
	// The go command touches an up-to-date binary; a link writes a new file.
	assert.True(t, os.SameFile(before, after), "an up-to-date binary is not linked again")

	write("bonjour")
	log.Reset()
	_, err = r.Command(ctx, mod, "./cmd/hello")
	require.NoError(t, err)
	assert.Contains(t, log.String(), "building ./cmd/hello: 1 of ")
	assert.Equal(t, "bonjour [demo --x]", run())
}
