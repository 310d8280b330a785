package statestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// LockInfo is one lock on a stack and what is known about its owner.
type LockInfo struct {
	// Location is the lock file (a path, or an s3:// URL).
	Location string `json:"location"`
	PID      int    `json:"pid"`
	Username string `json:"username,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Acquired is when the lock was taken; Age is how long ago (JSON:
	// ageSeconds).
	Acquired time.Time     `json:"acquired"`
	Age      time.Duration `json:"-"`
	// Liveness of the owner: "alive", "dead" or "unknown".
	Liveness string `json:"liveness"`
	// Reason says how the liveness was established.
	Reason string `json:"reason"`
	// Forced is set when recovery removed the lock because it was told to
	// (a force-unlock), not because its owner was proven dead.
	Forced bool `json:"forced,omitempty"`
}

// Info describes a lock of this store: where it is, its owner and the
// owner's liveness as this host can judge it.
func (s *Store) Info(l Lock) LockInfo {
	live, why := l.Liveness()
	info := LockInfo{Location: s.Location(l.Key), PID: l.PID, Username: l.Username, Hostname: l.Hostname,
		Acquired: l.Timestamp, Liveness: live.String(), Reason: why}
	if !l.Timestamp.IsZero() {
		info.Age = time.Since(l.Timestamp)
	}
	return info
}

// MarshalJSON encodes the lock with its age in seconds.
func (l LockInfo) MarshalJSON() ([]byte, error) {
	type plain LockInfo
	return json.Marshal(struct {
		plain
		Age float64 `json:"ageSeconds"`
	}{plain(l), l.Age.Seconds()})
}

// String describes the lock and its owner for messages.
func (l LockInfo) String() string {
	return fmt.Sprintf("%s@%s (pid %d) since %s, %s ago [%s: %s]", l.Username, l.Hostname, l.PID,
		l.Acquired.UTC().Format(time.RFC3339), l.Age.Round(time.Second), l.Liveness, l.Reason)
}

// StackLockedError says another owner holds a stack's lock, so the
// operation did not run. It is Slipway's one representation of a locked
// stack, whoever found the lock: the Store taking the lock (Lock), recovery
// keeping a lock whose owner's liveness it cannot prove, or the engine
// refusing an update because another one runs (then Err is the engine's
// error and Locks may be empty). Test for it with IsStackLocked; the CLI
// exits 4 on it, however deeply it is wrapped.
type StackLockedError struct {
	Project, Stack string
	// Locks are the locks found, with their owners.
	Locks []LockInfo
	// Err is the engine's own error when the engine reported the lock.
	Err error
}

// Error names the locks, their owners and the way out.
func (e *StackLockedError) Error() string {
	held := make([]string, len(e.Locks))
	unknown := false
	for i, l := range e.Locks {
		held[i] = l.String()
		unknown = unknown || l.Liveness == Unknown.String()
	}
	by := "another update"
	if len(held) > 0 {
		by = strings.Join(held, "; ")
	}
	msg := fmt.Sprintf("automation: stack %s/%s is locked by %s", e.Project, e.Stack, by)
	if unknown {
		msg += "; Slipway cannot prove that the owner stopped, so it keeps the lock"
	}
	msg += ". Wait for that update to finish; if you know no update of the stack runs, rerun with --force-unlock (library: automation.WithForceUnlock())"
	if e.Err != nil {
		msg += fmt.Sprintf(" (the engine said: %v)", e.Err)
	}
	return msg
}

// Unwrap returns the engine's error, if any.
func (e *StackLockedError) Unwrap() error { return e.Err }

// IsStackLocked reports whether err is (or wraps) a *StackLockedError.
func IsStackLocked(err error) bool {
	var l *StackLockedError
	return errors.As(err, &l)
}
