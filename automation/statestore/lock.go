package statestore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Lock is one lock file of a stack, in Pulumi's DIY format.
type Lock struct {
	// Key is where the lock file is stored.
	Key       string    `json:"-"`
	PID       int       `json:"pid"`
	Username  string    `json:"username"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
	// Err is set when the lock file could not be read or parsed.
	Err error `json:"-"`
}

// Owner describes who holds the lock, for messages.
func (l Lock) Owner() string {
	if l.Err != nil {
		return fmt.Sprintf("an unreadable lock file %s", l.Key)
	}
	return fmt.Sprintf("%s@%s (pid %d) since %s", l.Username, l.Hostname, l.PID, l.Timestamp.UTC().Format(time.RFC3339))
}

// Liveness is what can be proven about a lock owner.
type Liveness int

const (
	// Unknown: neither life nor death can be proven (another host, /proc
	// unreadable, an unreadable lock file, a platform without /proc). Such a
	// lock is never removed without an explicit force-unlock.
	Unknown Liveness = iota
	// Alive: the owner runs on this host.
	Alive
	// Dead: the owner is proven gone (no such process, a zombie, or the PID
	// now belongs to a process that started after the lock was taken).
	Dead
)

// String returns "alive", "dead" or "unknown".
func (l Liveness) String() string {
	switch l {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	}
	return "unknown"
}

// clockSkew absorbs the rounding between a process's start time (boot time
// in whole seconds plus clock ticks) and the lock's timestamp: a PID counts
// as reused only when its process started this long after the lock.
const clockSkew = 2 * time.Second

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's start time; Linux
// fixes it at 100 for user space on every architecture.
const clockTicks = 100

// probe is what liveness needs from the operating system.
type probe interface {
	hostname() (string, error)
	// signal0 sends signal 0: nil or EPERM means the PID exists, ESRCH that it does not.
	signal0(pid int) error
	// stat returns /proc/<pid>/stat.
	stat(pid int) ([]byte, error)
	// bootTime returns the boot time (/proc/stat btime).
	bootTime() (time.Time, error)
}

// Liveness reports whether the lock's owner is alive, proven dead, or
// unknown, and why. Death is proven only on the owner's own host (same
// hostname): the PID does not exist, or is a zombie, or belongs to a
// process that started after the lock's timestamp (a reused PID).
func (l Lock) Liveness() (Liveness, string) { return l.liveness(sys) }

func (l Lock) liveness(p probe) (Liveness, string) {
	if l.Err != nil {
		return Unknown, l.Err.Error()
	}
	host, err := p.hostname()
	if err != nil {
		return Unknown, fmt.Sprintf("this host's name is unknown: %v", err)
	}
	if l.Hostname != host {
		return Unknown, fmt.Sprintf("held by host %q; this is %q, which cannot see its processes", l.Hostname, host)
	}
	if l.PID <= 0 {
		return Unknown, fmt.Sprintf("the lock names no process (pid %d)", l.PID)
	}
	switch err := p.signal0(l.PID); {
	case errors.Is(err, errNoProcess):
		return Dead, fmt.Sprintf("process %d does not exist", l.PID)
	case err != nil && !errors.Is(err, errPermission):
		return Unknown, fmt.Sprintf("cannot signal process %d: %v", l.PID, err)
	}
	b, err := p.stat(l.PID)
	if errors.Is(err, os.ErrNotExist) {
		// The PID answers signals but /proc does not show it (hidepid, or
		// it exited in between): nothing is proven.
		return Unknown, fmt.Sprintf("process %d exists but /proc/%d/stat is not readable", l.PID, l.PID)
	}
	if err != nil {
		return Unknown, fmt.Sprintf("cannot read /proc/%d/stat: %v", l.PID, err)
	}
	state, ticks, err := parseStat(b)
	if err != nil {
		return Unknown, fmt.Sprintf("/proc/%d/stat: %v", l.PID, err)
	}
	if state == 'Z' || state == 'X' {
		return Dead, fmt.Sprintf("process %d has exited (zombie)", l.PID)
	}
	boot, err := p.bootTime()
	if err != nil {
		return Unknown, fmt.Sprintf("boot time unknown, so the start of process %d is too: %v", l.PID, err)
	}
	started := boot.Add(time.Duration(ticks) * time.Second / clockTicks)
	if started.After(l.Timestamp.Add(clockSkew)) {
		return Dead, fmt.Sprintf("pid %d was reused: its process started at %s, after the lock was taken at %s",
			l.PID, started.UTC().Format(time.RFC3339), l.Timestamp.UTC().Format(time.RFC3339))
	}
	return Alive, fmt.Sprintf("process %d runs on this host (started %s)", l.PID, started.UTC().Format(time.RFC3339))
}

// parseStat reads the state (field 3) and start time in clock ticks since
// boot (field 22) of a /proc/<pid>/stat line. The command name (field 2)
// may hold spaces and parentheses, so fields are counted from its last ')'.
func parseStat(b []byte) (state byte, start uint64, err error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("start time %q: %w", f[19], err)
	}
	return f[0][0], start, nil
}

// parseBootTime reads btime (seconds since the epoch) from /proc/stat.
func parseBootTime(b []byte) (time.Time, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("btime %q: %w", v, err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat has no btime line")
}
