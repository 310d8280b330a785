package statestore

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProbe answers liveness questions from fixed values.
type fakeProbe struct {
	host    string
	sig     error
	statB   []byte
	statErr error
	boot    time.Time
	bootErr error
}

func (p fakeProbe) hostname() (string, error)    { return p.host, nil }
func (p fakeProbe) signal0(int) error            { return p.sig }
func (p fakeProbe) stat(int) ([]byte, error)     { return p.statB, p.statErr }
func (p fakeProbe) bootTime() (time.Time, error) { return p.boot, p.bootErr }

// statLine is a /proc/<pid>/stat line with a command name holding spaces
// and parentheses, the given state, and a start time in clock ticks.
func statLine(state byte, startTicks uint64) []byte {
	return fmt.Appendf(nil, "4242 (pulumi (x) y) %c 1 4242 4242 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 12 0 %d 1000 200 18446744073709551615", state, startTicks)
}

func TestLockLiveness_ProvesDeathOnlyWhenItCan(t *testing.T) {
	boot := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	taken := boot.Add(time.Hour) // the lock was written an hour after boot
	startedBefore := uint64((59 * time.Minute).Seconds() * clockTicks)
	startedAfter := uint64((61 * time.Minute).Seconds() * clockTicks)
	withinSkew := uint64((time.Hour + time.Second).Seconds() * clockTicks)
	lock := Lock{PID: 4242, Hostname: "runner-1", Username: "ci", Timestamp: taken}
	for _, tc := range []struct {
		name   string
		lock   Lock
		probe  fakeProbe
		want   Liveness
		reason string
	}{
		{"running since before the lock", lock, fakeProbe{host: "runner-1", statB: statLine('S', startedBefore), boot: boot}, Alive, "runs on this host"},
		{"running, owned by another user", lock, fakeProbe{host: "runner-1", sig: errPermission, statB: statLine('R', startedBefore), boot: boot}, Alive, "runs on this host"},
		{"started within the clock skew", lock, fakeProbe{host: "runner-1", statB: statLine('S', withinSkew), boot: boot}, Alive, "runs on this host"},
		{"no such process", lock, fakeProbe{host: "runner-1", sig: errNoProcess}, Dead, "process 4242 does not exist"},
		{"zombie", lock, fakeProbe{host: "runner-1", statB: statLine('Z', startedBefore), boot: boot}, Dead, "zombie"},
		{"dead (X)", lock, fakeProbe{host: "runner-1", statB: statLine('X', startedBefore), boot: boot}, Dead, "zombie"},
		{"pid reused by a later process", lock, fakeProbe{host: "runner-1", statB: statLine('S', startedAfter), boot: boot}, Dead, "pid 4242 was reused"},
		{"another host", lock, fakeProbe{host: "runner-2", sig: errNoProcess}, Unknown, `held by host "runner-1"`},
		{"/proc hidden (hidepid)", lock, fakeProbe{host: "runner-1", statErr: os.ErrNotExist}, Unknown, "exists but /proc/4242/stat is not readable"},
		{"/proc unreadable", lock, fakeProbe{host: "runner-1", statErr: os.ErrPermission}, Unknown, "cannot read /proc/4242/stat"},
		{"signals unsupported", lock, fakeProbe{host: "runner-1", sig: errors.ErrUnsupported}, Unknown, "cannot signal process 4242"},
		{"garbled stat", lock, fakeProbe{host: "runner-1", statB: []byte("4242 (x) S 1")}, Unknown, "fields after the command name"},
		{"boot time unknown", lock, fakeProbe{host: "runner-1", statB: statLine('S', startedAfter), bootErr: os.ErrPermission}, Unknown, "boot time unknown"},
		{"no pid", Lock{Hostname: "runner-1"}, fakeProbe{host: "runner-1", sig: errNoProcess}, Unknown, "names no process"},
		{"unreadable lock file", Lock{Err: errors.New("truncated")}, fakeProbe{host: "runner-1", sig: errNoProcess}, Unknown, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := tc.lock.liveness(tc.probe)
			assert.Equal(t, tc.want, got, why)
			assert.Contains(t, why, tc.reason)
		})
	}
}

func TestParseBootTime(t *testing.T) {
	got, err := parseBootTime([]byte("cpu  1 2 3\nbtime 1764115200\nprocesses 9\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(1764115200), got.Unix())
	_, err = parseBootTime([]byte("cpu 1\n"))
	assert.ErrorContains(t, err, "no btime")
}
