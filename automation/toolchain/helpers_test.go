package toolchain

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

// failsafe bounds every wait of these tests, so a broken build or a missing
// event fails the test instead of hanging it. Nothing waits for it to pass.
const failsafe = 2 * time.Minute

// fakeTool is a tool built from a module of withModules.
func fakeTool(name string, estimate time.Duration) tool {
	return tool{name: name, version: "v1", module: name, packages: []string{"."}, outputs: []string{name},
		ldflags: "-s -w -X main.greeting=hi", estimate: estimate}
}

// withModules makes modules hold one tiny main module per name (its binary
// is called name), importing three local packages whose source is unique to
// this test run: every build compiles exactly 4 packages. The module of the
// name "broken" does not compile.
func withModules(t *testing.T, names ...string) {
	t.Helper()
	salt := fmt.Sprintf("%s %d", t.Name(), time.Now().UnixNano())
	m := fstest.MapFS{}
	for _, n := range names {
		dir := "modules/" + n + "/"
		m[dir+"go.mod.txt"] = &fstest.MapFile{Data: []byte("module example.com/" + n + "\n\ngo 1.26.0\n")}
		main := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/" + n + "/a\"\n\t\"example.com/" + n + "/b\"\n\t\"example.com/" + n + "/c\"\n)\n\n" +
			"var greeting = \"unset\"\n\nvar _ = a.S + b.S + c.S\n\nfunc main() { fmt.Println(greeting) }\n"
		if n == "broken" {
			main = "package main\n\nfunc main() { undefinedThing() }\n"
		}
		m[dir+"main.go.txt"] = &fstest.MapFile{Data: []byte(main)}
		for _, p := range []string{"a", "b", "c"} {
			m[dir+p+"/p.go.txt"] = &fstest.MapFile{Data: []byte(fmt.Sprintf("package %s\n\nconst S = %q\n", p, salt))}
		}
	}
	old := modules
	modules = m
	t.Cleanup(func() { modules = old })
}

// swapTool replaces a package-level tool for the test.
func swapTool(t *testing.T, v *tool, with tool) {
	old := *v
	*v = with
	t.Cleanup(func() { *v = old })
}

// gate holds the `go build` of chosen tools until the test releases them,
// and tells the test when each has started: a go command wrapper that
// reports on a FIFO and reads another FIFO per tool before running go.
type gate struct {
	dir     string
	goBin   string // the wrapper, for WithGo
	started chan string
}

func newGate(t *testing.T, tools ...string) *gate {
	t.Helper()
	realGo, err := New().goCommand()
	require.NoError(t, err)
	g := &gate{dir: t.TempDir(), started: make(chan string, 16)}
	require.NoError(t, syscall.Mkfifo(filepath.Join(g.dir, "started"), 0o600))
	for _, name := range tools {
		require.NoError(t, syscall.Mkfifo(filepath.Join(g.dir, "release-"+name), 0o600))
	}
	// Read-write, so that the FIFO neither blocks writers nor ends between them.
	f, err := os.OpenFile(filepath.Join(g.dir, "started"), os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	go func() {
		s := bufio.NewScanner(f)
		for s.Scan() {
			g.started <- s.Text()
		}
	}()
	// The tool's name is that of its cache directory: <cache>/<tool>/<version>/src.
	script := fmt.Sprintf(`#!/bin/sh
tool=$(basename "$(dirname "$(dirname "$(pwd)")")")
if [ "$1" = build ] && [ -p '%[1]s/release-'"$tool" ]; then
	echo "$tool" > '%[1]s/started'
	read _ < '%[1]s/release-'"$tool"
fi
exec '%[2]s' "$@"
`, g.dir, realGo)
	g.goBin = filepath.Join(g.dir, "go")
	require.NoError(t, os.WriteFile(g.goBin, []byte(script), 0o755))
	return g
}

// waitStarted returns the name of the next tool whose go build started.
func (g *gate) waitStarted(t *testing.T) string {
	t.Helper()
	select {
	case name := <-g.started:
		return name
	case <-time.After(failsafe):
		t.Fatal("no gated build started")
		return ""
	}
}

// release lets the gated go build of tool run.
func (g *gate) release(t *testing.T, tool string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(g.dir, "release-"+tool), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteString("go\n")
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() }) // open until the wrapper has read it
}

// watchLog is a log writer, safe for concurrent use, that tells the test when
// a line matching a pattern has been written.
type watchLog struct {
	mu      sync.Mutex
	text    strings.Builder
	waiters []logWaiter
}

type logWaiter struct {
	re *regexp.Regexp
	ch chan struct{}
}

func (w *watchLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text.Write(p)
	w.notify()
	return len(p), nil
}

func (w *watchLog) notify() {
	kept := w.waiters[:0]
	for _, x := range w.waiters {
		if x.re.MatchString(w.text.String()) {
			close(x.ch)
		} else {
			kept = append(kept, x)
		}
	}
	w.waiters = kept
}

func (w *watchLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.text.String()
}

// waitFor waits until the log has a match of the (multi-line) pattern.
func (w *watchLog) waitFor(t *testing.T, pattern string) {
	t.Helper()
	ch := make(chan struct{})
	w.mu.Lock()
	w.waiters = append(w.waiters, logWaiter{re: regexp.MustCompile("(?m)" + pattern), ch: ch})
	w.notify()
	w.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(failsafe):
		t.Fatalf("the log never matched %q:\n%s", pattern, w.String())
	}
}

// lines returns the log lines that contain s.
func (w *watchLog) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(w.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// testCtx is a context the failsafe ends.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	t.Cleanup(cancel)
	return ctx
}
