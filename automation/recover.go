package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
)

// Recovery reports what Recover repaired.
type Recovery struct {
	// StaleLocks are lock files of dead processes that were removed.
	StaleLocks []string `json:"staleLocks,omitempty"`
	// PendingOperations are the interrupted operations found in the state.
	PendingOperations []string `json:"pendingOperations,omitempty"`
	// Refreshed is set when a refresh reconciled them.
	Refreshed bool `json:"refreshed"`
	// RestoredCheckpoint is where a truncated checkpoint was moved after the
	// backend's previous checkpoint replaced it.
	RestoredCheckpoint string `json:"restoredCheckpoint,omitempty"`
}

// Repaired reports whether anything needed repair.
func (r *Recovery) Repaired() bool {
	return len(r.StaleLocks) > 0 || len(r.PendingOperations) > 0 || r.RestoredCheckpoint != ""
}

// lockContent is the DIY backend's lock file (pkg/backend/diy/lock.go).
type lockContent struct {
	Pid       int       `json:"pid"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
}

// Recover repairs what an interrupted update (a killed process) leaves
// behind, so the next operation can proceed: for file backends, lock files
// of processes on this host that no longer run are removed (a live process's
// lock is never touched); pending operations in the state are reconciled by
// a refresh that clears pending creates (Kubernetes objects created by the
// killed update are adopted again by the next up through server-side apply).
func (s *Stack) Recover(ctx context.Context) (*Recovery, error) {
	backend := s.backend
	rec := &Recovery{}
	if dir, ok := strings.CutPrefix(backend, "file://"); ok {
		locks, err := staleLocks(filepath.Join(dir, ".pulumi", "locks"), s.project, s.name)
		if err != nil {
			return rec, err
		}
		for _, l := range locks {
			if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				return rec, fmt.Errorf("automation: removing stale lock %s: %w", l, err)
			}
			rec.StaleLocks = append(rec.StaleLocks, l)
		}
	}
	dep, err := s.stack.Export(ctx)
	if err != nil && strings.Contains(err.Error(), "failed to load checkpoint") {
		// Killed while writing the checkpoint: bring back the previous one.
		restored, rerr := restoreCheckpoint(backend, s.project, s.name)
		if rerr != nil {
			return rec, errors.Join(err, rerr)
		}
		if restored != "" {
			rec.RestoredCheckpoint = restored
			dep, err = s.stack.Export(ctx)
		}
	}
	if IsConcurrentUpdate(err) {
		return rec, nil // a live update holds the stack: nothing to recover
	}
	if err != nil {
		return rec, fmt.Errorf("automation: reading state of %s: %w", s.name, err)
	}
	var state struct {
		PendingOperations []struct {
			Type     string `json:"type"`
			Resource struct {
				URN string `json:"urn"`
			} `json:"resource"`
		} `json:"pending_operations"`
	}
	if len(dep.Deployment) > 0 {
		if err := json.Unmarshal(dep.Deployment, &state); err != nil {
			return rec, fmt.Errorf("automation: state of %s is not valid: %w", s.name, err)
		}
	}
	for _, op := range state.PendingOperations {
		rec.PendingOperations = append(rec.PendingOperations, op.Type+" "+op.Resource.URN)
	}
	if len(rec.PendingOperations) > 0 {
		_, err := s.stack.Refresh(ctx, optrefresh.ClearPendingCreates())
		if IsConcurrentUpdate(err) {
			// The operations belong to an update that is still running.
			rec.PendingOperations = nil
			return rec, nil
		}
		if err != nil {
			return rec, fmt.Errorf("automation: reconciling %d pending operation(s) of %s: %w", len(rec.PendingOperations), s.name, err)
		}
		rec.Refreshed = true
	}
	if rec.Repaired() {
		s.log.Warn("recovered an interrupted update", "staleLocks", len(rec.StaleLocks), "pending", rec.PendingOperations)
	}
	return rec, nil
}

// staleLocks lists lock files of the stack held by processes of this host
// that have exited.
func staleLocks(root, project, stack string) ([]string, error) {
	host, _ := os.Hostname()
	var out []string
	dirs := []string{filepath.Join(root, "organization", project, stack), filepath.Join(root, stack)}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			var l lockContent
			if json.Unmarshal(b, &l) != nil || l.Hostname != host || l.Pid <= 0 {
				continue // another host's lock, or unreadable: leave it
			}
			if !running(l.Pid) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// running reports whether pid is a live process (a zombie is not: it has
// exited and waits only to be reaped).
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// restoreCheckpoint replaces a truncated or unreadable checkpoint of a file
// backend with its backup (<stack>.json.bak, the previous checkpoint) and
// keeps the broken one beside it. It returns the path the broken checkpoint
// was moved to, or "" when there was nothing to repair.
func restoreCheckpoint(backend, project, stack string) (string, error) {
	dir, ok := strings.CutPrefix(backend, "file://")
	if !ok {
		return "", nil
	}
	if i := strings.IndexByte(dir, '?'); i >= 0 {
		dir = dir[:i]
	}
	cp := filepath.Join(dir, ".pulumi", "stacks", project, stack+".json")
	b, err := os.ReadFile(cp)
	if err != nil {
		return "", err
	}
	if json.Valid(b) && len(b) > 0 {
		return "", nil // not broken
	}
	bak, err := os.ReadFile(cp + ".bak")
	if err != nil || !json.Valid(bak) {
		return "", fmt.Errorf("automation: checkpoint %s is broken and has no usable backup", cp)
	}
	// Keep the broken checkpoint for inspection, outside the backend's stack files.
	keep := filepath.Join(dir, ".pulumi", "slipway-broken")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		return "", err
	}
	broken := filepath.Join(keep, fmt.Sprintf("%s-%s.%d.json", project, stack, time.Now().UnixNano()))
	if err := os.Rename(cp, broken); err != nil {
		return "", err
	}
	if err := writeAtomic(cp, bak); err != nil {
		return "", err
	}
	// The file blob store keeps metadata (content type, MD5) in a sidecar
	// that must describe the restored content, so take the backup's.
	if attrs, err := os.ReadFile(cp + ".bak.attrs"); err == nil {
		if err := writeAtomic(cp+".attrs", attrs); err != nil {
			return "", err
		}
	} else {
		_ = os.Remove(cp + ".attrs")
	}
	return broken, nil
}
