package toolchain

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

	b, err := os.ReadFile(filepath.Join(cache, buildTimesFile))
	require.NoError(t, err)
	var recs map[string]buildRecord
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
	assert.Contains(t, log.String(), "expect about "+fmtDuration(took)+": "+basis+")")
	assert.Equal(t, "the last build on this machine took "+fmtDuration(took), basis)

	// That build found its packages in the Go build cache: it is recorded
	// as the warm build and leaves the cold one alone.
	b, err = os.ReadFile(filepath.Join(cache, buildTimesFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &recs))
	assert.Equal(t, rec.Seconds, recs["hello"].Seconds)
	assert.Equal(t, 4, recs["hello"].Packages)
	assert.Greater(t, recs["hello"].WarmSeconds, 0.0)
}

// TestRecordBuild_ColdAndWarmBuildsMakeTheEstimate: a build that compiled
// at least half as many packages as the recorded cold build replaces it; one
// that found most in the Go build cache is recorded as the warm build. The
// estimate of a build that must compile n packages lies between the two.
func TestRecordBuild_ColdAndWarmBuildsMakeTheEstimate(t *testing.T) {
	r := New(WithCacheDir(t.TempDir()), WithLog(&watchLog{}))
	k := fakeTool("k", time.Minute)
	ctx := context.Background()
	d, basis := r.expected(k)
	assert.Equal(t, time.Minute, d, "no record: the static estimate")
	assert.Equal(t, "a cold build on 2 cores", basis)
	assert.Equal(t, 6*time.Second, r.expectedFor(k, 0, 100), "no record: a tenth of the estimate to relink")
	assert.Equal(t, 33*time.Second, r.expectedFor(k, 50, 100))

	r.recordBuild(ctx, k, 9*time.Minute, 2600)
	d, basis = r.expected(k)
	assert.Equal(t, 9*time.Minute, d)
	assert.Equal(t, "the last build on this machine took 9m", basis)
	assert.Equal(t, 9*time.Minute, r.expectedFor(k, 2600, 2700))

	r.recordBuild(ctx, k, 20*time.Second, 4) // a relink from a warm cache
	d, _ = r.expected(k)
	assert.Equal(t, 9*time.Minute, d, "the warm build does not replace the cold one")
	assert.Equal(t, 20*time.Second, r.expectedFor(k, 0, 2700))
	assert.Equal(t, 4*time.Minute+40*time.Second, r.expectedFor(k, 1300, 2700))

	r.recordBuild(ctx, k, 8*time.Minute, 2000)
	d, _ = r.expected(k)
	assert.Equal(t, 8*time.Minute, d)
	assert.Equal(t, 20*time.Second, r.expectedFor(k, 0, 2700), "the warm record stays")
	d, _ = r.expected(fakeTool("other", 2*time.Minute))
	assert.Equal(t, 2*time.Minute, d, "records are per tool")
}

func TestProgressLine_PhasesAndEstimates(t *testing.T) {
	p := &progress{name: "kubernetes", expect: 9 * time.Minute, total: -1, phase: "downloading dependencies and listing packages"}
	assert.Equal(t, "kubernetes: 40s elapsed; downloading dependencies and listing packages; about 8m20s left", p.line(40*time.Second))
	p.phase, p.total, p.compiled = "", 2650, 812
	assert.Equal(t, "kubernetes: 3m elapsed; compiled 812 of 2650 packages (30%); about 6m left", p.line(3*time.Minute))
	p.compiled = 2650
	assert.Equal(t, "kubernetes: 9m30s elapsed; linking (compiled 2650 of 2650 packages); 30s over the 9m expected", p.line(570*time.Second))
	p.total, p.compiled = -1, 7
	assert.Equal(t, "kubernetes: 1s elapsed; compiled 7 packages; about 8m59s left", p.line(time.Second))
	p.total, p.compiled = 0, 0
	assert.Equal(t, "kubernetes: 1s elapsed; linking (every package was in the Go build cache); about 8m59s left", p.line(time.Second))
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 1400 * time.Millisecond: "1s", 59 * time.Second: "59s",
		time.Minute: "1m", 545 * time.Second: "9m05s", 61 * time.Minute: "61m"} {
		assert.Equal(t, want, fmtDuration(d), d.String())
	}
}

func TestLineWriter_SplitsWritesIntoLines(t *testing.T) {
	var got []string
	w := &lineWriter{line: func(l string) { got = append(got, l) }}
	for _, s := range []string{"exam", "ple.com/a\nexample.com/b\n# example.com/c\n./c.go:1:2: undefined", ": x\r\ntail"} {
		_, err := w.Write([]byte(s))
		require.NoError(t, err)
	}
	w.flush()
	assert.Equal(t, []string{"example.com/a", "example.com/b", "# example.com/c", "./c.go:1:2: undefined: x", "tail"}, got)
	var pkgs []string
	for _, l := range got {
		if packageLine.MatchString(l) {
			pkgs = append(pkgs, l)
		}
	}
	assert.Equal(t, []string{"example.com/a", "example.com/b", "tail"}, pkgs)
}
