package buildtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecords_ColdAndWarmBuildsMakeTheEstimate: a build that compiled
// at least half as many packages as the recorded cold build replaces it; one
// that found most in the Go build cache is recorded as the warm build. The
// estimate of a build that must compile n packages lies between the two.
func TestRecords_ColdAndWarmBuildsMakeTheEstimate(t *testing.T) {
	rs := Records{Dir: t.TempDir()}
	ctx := context.Background()
	d, basis := rs.Expected("k", time.Minute)
	assert.Equal(t, time.Minute, d, "no record: the static estimate")
	assert.Equal(t, "a cold build on 2 cores", basis)
	assert.Equal(t, 6*time.Second, rs.ExpectedFor("k", time.Minute, 0, 100), "no record: a tenth of the estimate to relink")
	assert.Equal(t, 33*time.Second, rs.ExpectedFor("k", time.Minute, 50, 100))

	require.NoError(t, rs.Add(ctx, "k", "v1", 9*time.Minute, 2600))
	d, basis = rs.Expected("k", time.Minute)
	assert.Equal(t, 9*time.Minute, d)
	assert.Equal(t, "the last build on this machine took 9m", basis)
	assert.Equal(t, 9*time.Minute, rs.ExpectedFor("k", time.Minute, 2600, 2700))

	require.NoError(t, rs.Add(ctx, "k", "v1", 20*time.Second, 4)) // a relink from a warm cache
	d, _ = rs.Expected("k", time.Minute)
	assert.Equal(t, 9*time.Minute, d, "the warm build does not replace the cold one")
	assert.Equal(t, 20*time.Second, rs.ExpectedFor("k", time.Minute, 0, 2700))
	assert.Equal(t, 4*time.Minute+40*time.Second, rs.ExpectedFor("k", time.Minute, 1300, 2700))

	require.NoError(t, rs.Add(ctx, "k", "v2", 8*time.Minute, 2000))
	d, _ = rs.Expected("k", time.Minute)
	assert.Equal(t, 8*time.Minute, d)
	assert.Equal(t, 20*time.Second, rs.ExpectedFor("k", time.Minute, 0, 2700), "the warm record stays")
	d, _ = rs.Expected("other", 2*time.Minute)
	assert.Equal(t, 2*time.Minute, d, "records are per tool")
}

// TestRecords_UnreadableFileIsEmpty: a corrupt build-times.json gives the
// static estimate, and the next build replaces it.
func TestRecords_UnreadableFileIsEmpty(t *testing.T) {
	rs := Records{Dir: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(rs.Dir, File), []byte("{not json"), 0o644))
	d, basis := rs.Expected("k", time.Minute)
	assert.Equal(t, time.Minute, d)
	assert.Equal(t, "a cold build on 2 cores", basis)
	require.NoError(t, rs.Add(context.Background(), "k", "v1", 3*time.Minute, 10))
	d, _ = rs.Expected("k", time.Minute)
	assert.Equal(t, 3*time.Minute, d)
}

// TestProgress_StopEndsTheReports: a started Progress logs its line every
// interval until Stop, which returns once the reports have ended.
func TestProgress_StopEndsTheReports(t *testing.T) {
	lines := make(chan string, 100)
	var stopped atomic.Bool
	p := Start("hello", time.Minute, time.Millisecond, func(format string, args ...any) {
		if stopped.Load() {
			t.Errorf("a line after Stop: "+format, args...)
		}
		select {
		case lines <- fmt.Sprintf(format, args...):
		default:
		}
	})
	p.SetPhase("")
	p.SetTotal(4, time.Minute)
	p.CompiledPackage("example.com/a")
	select {
	case l := <-lines:
		assert.Regexp(t, `^hello: \d+s elapsed; compiled \d of 4 packages`, l)
	case <-time.After(time.Minute):
		t.Fatal("no progress line")
	}
	took := p.Stop()
	stopped.Store(true) // Stop waited for the reporting goroutine to end
	assert.Equal(t, took, p.Stop(), "the duration is measured once")
	assert.Equal(t, 1, p.Compiled())
}

func TestProgressLine_PhasesAndEstimates(t *testing.T) {
	p := &Progress{name: "kubernetes", expect: 9 * time.Minute, total: -1, phase: "downloading dependencies and listing packages"}
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

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 1400 * time.Millisecond: "1s", 59 * time.Second: "59s",
		time.Minute: "1m", 545 * time.Second: "9m05s", 61 * time.Minute: "61m"} {
		assert.Equal(t, want, Format(d), d.String())
	}
}
