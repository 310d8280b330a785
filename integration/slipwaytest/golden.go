package slipwaytest

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/automation/outcome"
)

// UpdateEnv is the environment variable that makes AssertGolden rewrite the
// golden files instead of comparing with them:
// `SLIPWAYTEST_UPDATE=1 go test ./pkg -run TestX`. The package registers no
// flag of its own; a test package that defines a boolean -update flag may
// use it instead (`go test ./pkg -run TestX -update`): AssertGolden looks it
// up when it runs.
const UpdateEnv = "SLIPWAYTEST_UPDATE"

// updating reports whether AssertGolden rewrites golden files: UpdateEnv
// holds a true value (1, t, true...), or the test binary has a boolean
// -update flag that is set.
func updating() bool {
	if v, err := strconv.ParseBool(os.Getenv(UpdateEnv)); err == nil && v {
		return true
	}
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	if g, ok := f.Value.(flag.Getter); ok {
		b, ok := g.Get().(bool)
		return ok && b
	}
	return false
}

// StackPlaceholder replaces the unique stack name in golden renderings.
const StackPlaceholder = "<stack>"

// AssertGolden compares a stable rendering of the operation's changes
// (RenderChanges) with the file at path, and fails the test showing the
// lines that differ. Run the tests with SLIPWAYTEST_UPDATE=1 (UpdateEnv) or
// the test package's own -update flag to write the file instead.
func AssertGolden(t testing.TB, res *outcome.Result, path string) {
	t.Helper()
	if res == nil {
		t.Fatalf("slipwaytest: AssertGolden(%s): the result is nil", path)
		return
	}
	got := RenderChanges(res)
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("slipwaytest: %v", err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("slipwaytest: %v", err)
		}
		t.Logf("slipwaytest: wrote golden file %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("slipwaytest: golden file %s does not exist; run the test with %s=1 (or the package's -update flag) to write it:\n%s", path, UpdateEnv, got)
		return
	}
	if err != nil {
		t.Fatalf("slipwaytest: %v", err)
	}
	if string(want) != got {
		t.Errorf("slipwaytest: the changes differ from golden file %s (run with %s=1 or the package's -update flag to accept them):\n%s",
			path, UpdateEnv, lineDiff(string(want), got))
	}
}

// RenderChanges renders an operation's changes one per line, sorted:
// "op type name", then " diffs=a,b" (top-level properties) and
// " detailed=path:kind,..." when the engine reported them. The name is the
// last part of the URN, with the unique stack name replaced by
// StackPlaceholder. Unchanged resources are left out; a result without
// changes renders as "(no changes)".
func RenderChanges(res *outcome.Result) string {
	var lines []string
	for _, c := range res.Changed() {
		name := c.URN
		if i := strings.LastIndex(name, "::"); i >= 0 {
			name = name[i+2:]
		}
		line := c.Op + " " + c.Type + " " + name
		if len(c.Diffs) > 0 {
			line += " diffs=" + strings.Join(slices.Sorted(slices.Values(c.Diffs)), ",")
		}
		if len(c.DetailedDiff) > 0 {
			var d []string
			for _, k := range slices.Sorted(maps.Keys(c.DetailedDiff)) {
				d = append(d, k+":"+c.DetailedDiff[k])
			}
			line += " detailed=" + strings.Join(d, ",")
		}
		if res.Stack != "" {
			line = strings.ReplaceAll(line, res.Stack, StackPlaceholder)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return "(no changes)\n"
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// lineDiff lists the lines only in want ("- ") and only in got ("+ ").
func lineDiff(want, got string) string {
	w := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	g := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	count := map[string]int{}
	for _, l := range g {
		count[l]++
	}
	var b strings.Builder
	for _, l := range w {
		if count[l] > 0 {
			count[l]--
			continue
		}
		fmt.Fprintf(&b, "- %s\n", l)
	}
	count = map[string]int{}
	for _, l := range w {
		count[l]++
	}
	for _, l := range g {
		if count[l] > 0 {
			count[l]--
			continue
		}
		fmt.Fprintf(&b, "+ %s\n", l)
	}
	if b.Len() == 0 {
		return "(the same lines in another order or with other line endings)\n"
	}
	return b.String()
}
