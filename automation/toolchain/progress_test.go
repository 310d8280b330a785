package toolchain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/buildtime"
)

// TestBuild_ReportsWhatHowFarAndHowLong: a build says at its start what it
// builds and how long it should take, then periodically its tool, the time
// elapsed, the packages compiled of those to compile and the time left, and
// ends with "built"; no progress line follows that.
func TestBuild_ReportsWhatHowFarAndHowLong(t *testing.T) {
	withModules(t, "hello")
	g := newGate(t, "hello")
	var log watchLog
	r := New(WithCacheDir(t.TempDir()), WithLog(&log), WithGo(g.goBin))
	r.progressEvery = 5 * time.Millisecond
	done := make(chan error, 1)
	go func() { _, err := r.ensure(testCtx(t), fakeTool("hello", 5*time.Minute)); done <- err }()

	assert.Equal(t, "hello", g.waitStarted(t))
	// Held before go build: 4 packages to compile, none compiled yet, and
	// the 5m expected for a cold build scaled down to them (all but a tenth).
	log.waitFor(t, `^slipway: hello: \d+s elapsed; compiled 0 of 4 packages \(0%\); about \d+s left$`)
	g.release(t, "hello")
	require.NoError(t, <-done)

	out := log.String()
	assert.Regexp(t, `(?m)^slipway: building hello v1 from Go modules into .* \(first run only; expect about 5m: a cold build on 2 cores\)\.\.\.$`, out)
	assert.Regexp(t, `(?m)^slipway: hello: 4 of \d+ packages to compile \(the rest are in the Go build cache\); expect about \d+s in all$`, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Regexp(t, `^slipway: built hello v1 in \d+s$`, lines[len(lines)-1], "the built line ends the build's output")
}

// TestBuild_RecordedDurationIsTheNextEstimate: a build records how long it
// took and how many packages it compiled; the next build of the tool expects
// that long, and says why.
func TestBuild_RecordedDurationIsTheNextEstimate(t *testing.T) {
	withModules(t, "hello")
	var log watchLog
	cache := t.TempDir()
	r := New(WithCacheDir(cache), WithLog(&log))
	hello := fakeTool("hello", 5*time.Minute)
	dir, err := r.ensure(testCtx(t), hello)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "expect about 5m: a cold build on 2 cores")

	b, err := os.ReadFile(filepath.Join(cache, buildtime.File))
	require.NoError(t, err)
	var recs map[string]buildtime.Record
	require.NoError(t, json.Unmarshal(b, &recs))
	rec := recs["hello"]
	assert.Equal(t, "v1", rec.Version)
	assert.Equal(t, 4, rec.Packages, "the packages go build -v reported")
	require.Greater(t, rec.Seconds, 0.0)
	took := time.Duration(rec.Seconds * float64(time.Second))

	got, basis := r.expected(hello)
	assert.Equal(t, took, got)
	require.NoError(t, os.Remove(filepath.Join(dir, "manifest.json"))) // build it again
	_, err = New(WithCacheDir(cache), WithLog(&log)).ensure(testCtx(t), hello)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "expect about "+buildtime.Format(took)+": "+basis+")")
	assert.Equal(t, "the last build on this machine took "+buildtime.Format(took), basis)

	// That build found its packages in the Go build cache: it is recorded
	// as the warm build and leaves the cold one alone.
	b, err = os.ReadFile(filepath.Join(cache, buildtime.File))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &recs))
	assert.Equal(t, rec.Seconds, recs["hello"].Seconds)
	assert.Equal(t, 4, recs["hello"].Packages)
	assert.Greater(t, recs["hello"].WarmSeconds, 0.0)
}
