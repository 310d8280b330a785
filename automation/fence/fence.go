// Package fence is Slipway's self-fencing of backend writes: a holder of
// a stack (a fleet runner holding a Run's Lease) keeps a fence file whose
// deadline it moves forward after each successful renewal, and every
// writer of the stack's backend it starts — the engine Slipway builds
// (see the toolchain's fence patches) and Slipway's own record store —
// checks the file before each write, delete or copy and refuses once the
// deadline has passed. A missing or malformed file refuses too (fail
// closed).
//
// The file has two lines: the deadline in Unix nanoseconds and the
// fencing token ("namespace/run#attempt"), which the engine also records
// in the stack's lock.
package fence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Env is the environment variable that names the fence file of an engine
// (the toolchain's patched diy backend reads the same name).
const Env = "SLIPWAY_FENCE_FILE"

// ErrFenced says a write was refused: the fence's deadline passed, or the
// fence file could not be read.
var ErrFenced = errors.New("fence: write refused")

// Write replaces the fence file at path atomically (a temporary file
// renamed over it) with deadline and token.
func Write(path string, deadline time.Time, token string) error {
	if strings.ContainsAny(token, "\n\r") {
		return fmt.Errorf("fence: the token %q has a line break", token)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fence-*")
	if err != nil {
		return fmt.Errorf("fence: writing %s: %w", path, err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n%s\n", deadline.UnixNano(), token)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("fence: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("fence: writing %s: %w", path, err)
	}
	return nil
}

// Read returns the deadline and token of the fence file at path.
func Read(path string) (time.Time, string, error) {
	if path == "" {
		return time.Time{}, "", fmt.Errorf("fence: %s is set but empty", Env)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("fence: reading the fence file (%s): %w", Env, err)
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	ns, err := strconv.ParseInt(strings.TrimSpace(lines[0]), 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("fence: %s has no deadline in Unix nanoseconds on its first line: %w", path, err)
	}
	var token string
	if len(lines) == 2 {
		token = strings.TrimSpace(lines[1])
	}
	return time.Unix(0, ns), token, nil
}

// Check refuses (an error wrapping ErrFenced that names op and key) when
// the fence at path has passed its deadline or cannot be read; otherwise
// it returns ctx bounded by the deadline, so that a request still in
// flight then is cancelled. Call cancel in every case.
func Check(ctx context.Context, path, op, key string) (context.Context, context.CancelFunc, error) {
	deadline, token, err := Read(path)
	if err != nil {
		return ctx, func() {}, fmt.Errorf("%w: %s %s: %v", ErrFenced, op, key, err)
	}
	if now := time.Now(); !now.Before(deadline) {
		return ctx, func() {}, fmt.Errorf("%w: %s %s: the lease of %s was not renewed in time (deadline %s, now %s); another runner may hold the stack now",
			ErrFenced, op, key, token, deadline.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	return ctx, cancel, nil
}
