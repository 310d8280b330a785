// Package gobuild runs the go command for the toolchain's builds: in a module
// directory, with the environment of the platform built for. A build reports
// each package it compiles (Runner.Build), a dry run counts the packages a
// build must compile (Runner.ToCompile), and patches rewrite a dependency's
// source in a copy the build is pointed at (ApplyPatches). It also holds the
// two file helpers the builds share, CopyFile and WriteFileAtomic.
//
// It is a leaf: package toolchain decides what to build and calls down into
// it; nothing here knows about tools, caches or progress reports.
package gobuild

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Runner runs the go command in a module directory.
type Runner struct {
	// Bin is the go command.
	Bin string
	// Dir is the module directory the command runs in.
	Dir string
	// Env is extra environment (a cross-compilation's GOOS and GOARCH).
	Env []string
}

// Run runs the go command with args and returns its combined output. On
// failure the error holds the tail of that output.
func (g Runner) Run(ctx context.Context, args ...string) (string, error) {
	cmd := g.Command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), failure(ctx, args, err, out.String())
	}
	return out.String(), nil
}

// Command is the go command with args, run in g.Dir, with a writable module
// cache, no workspace and g.Env.
func (g Runner) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, g.Bin, args...)
	cmd.Dir = g.Dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -modcacherw"), "GOWORK=off"), g.Env...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// failure describes a failed go command with the tail of its output, and
// the context's error when it was cancelled.
func failure(ctx context.Context, args []string, err error, out string) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return fmt.Errorf("go %s: %w\n%s", args[0], err, Tail(out, 40))
}

// ModuleDir returns the module cache directory of a dependency, downloading
// it when needed.
func (g Runner) ModuleDir(ctx context.Context, module string) (string, error) {
	if _, err := g.Run(ctx, "mod", "download", module); err != nil {
		return "", err
	}
	out, err := g.Run(ctx, "list", "-m", "-f", "{{.Dir}}", module)
	if err != nil {
		return "", err
	}
	d := strings.TrimSpace(out)
	if d == "" {
		return "", fmt.Errorf("module %s has no directory in the module cache", module)
	}
	return d, nil
}

// packageLine matches a line `go build -v` prints for a package it compiles:
// an import path, alone on its line. Compiler messages have spaces or colons,
// and their headers start with "#".
var packageLine = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+$`)

// Build runs `go build` with args (which include -v) and calls onPackage for
// each package it compiles. The rest of its output goes into the error.
func (g Runner) Build(ctx context.Context, onPackage func(string), args ...string) error {
	cmd := g.Command(ctx, args...)
	var other bytes.Buffer
	w := &lineWriter{line: func(l string) {
		if packageLine.MatchString(l) {
			onPackage(l)
			return
		}
		other.WriteString(l)
		other.WriteByte('\n')
	}}
	// One writer for both streams: the exec package copies them in a single
	// goroutine, so w needs no lock.
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	w.flush()
	if err != nil {
		return failure(ctx, args, err, other.String())
	}
	return nil
}

// ToCompile returns how many packages a go build of pkgs with flags compiles
// (those the Go build cache does not hold), and how many packages the
// targets depend on in all. It downloads the modules the build needs.
func (g Runner) ToCompile(ctx context.Context, flags, pkgs []string) (n, deps int, err error) {
	args := append([]string{"list", "-deps", "-f", "{{.Stale}}\t{{.StaleReason}}"}, flags...)
	out, err := g.Run(ctx, append(args, pkgs...)...)
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(out, "\n") {
		stale, reason, ok := strings.Cut(l, "\t")
		if !ok || (stale != "true" && stale != "false") {
			continue // e.g. "go: downloading ..."
		}
		deps++
		if stale == "true" && !strings.Contains(reason, "available in build cache") {
			n++
		}
	}
	return n, deps, nil
}

// lineWriter calls line for each line written to it.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// flush passes on a last line that has no newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CopyFile copies src to dst, created or truncated with mode.
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// WriteFileAtomic writes b to path through a temporary file renamed into
// place, so a reader sees the old contents or the new, never part of them.
func WriteFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
