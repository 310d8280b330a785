package fault

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/integration/slipwaytest/internal/child"
)

// ChildEnv names the child a process started by StartChild runs;
// slipwaytest.Main runs that child instead of the tests.
const ChildEnv = child.Env

// signalPrefix marks a Signal line on a child's standard output.
const signalPrefix = "slipwaytest-signal: "

// Child registers fn as the child process name, for drills that kill a
// process (KillAt): StartChild runs the test binary again, and
// slipwaytest.Main, seeing ChildEnv, runs fn instead of the tests and
// exits (1 when fn fails). Register children in TestMain, before Main:
//
//	func TestMain(m *testing.M) {
//		fault.Child("rollout", rolloutChild)
//		slipwaytest.Main(m)
//	}
func Child(name string, fn func(ctx context.Context) error) { child.Register(name, fn) }

// Signal tells the test that started this child (see Process.WaitSignal)
// that it reached point s, e.g. "step 1". It writes one line to standard
// output.
func Signal(s string) { fmt.Fprintln(os.Stdout, signalPrefix+s) }

// Process is a child process of the test, running a function registered
// with Child: the engine a drill kills mid-step.
type Process struct {
	cmd     *exec.Cmd
	signals chan string
	exited  chan struct{}
	err     error // cmd.Wait's, once exited is closed
	stderr  tailBuffer
}

// StartChild runs the test binary again as child name (registered with
// Child) with env ("KEY=VALUE") added to the test's environment, in a
// process group of its own. The child is killed (with every process it
// started) when the test ends, if it still runs.
func StartChild(t testing.TB, name string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), ChildEnv+"="+name), env...)
	setGroup(cmd)
	p := &Process{cmd: cmd, signals: make(chan string, 64), exited: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("fault: child %s: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("fault: starting child %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), signalPrefix); ok {
				select {
				case p.signals <- s:
				default: // nobody waits for that many
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			if _, err := p.KillNine(time.Minute); err != nil {
				t.Errorf("fault: killing child %s at the end of the test: %v", name, err)
			}
		}
	})
	return p
}

// Pid returns the child's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitSignal waits until the child signals s (Signal), skipping its other
// signals. It fails when the child exits first (with the end of its
// standard error) or when ctx ends.
func (p *Process) WaitSignal(ctx context.Context, s string) error {
	for {
		select {
		case got := <-p.signals:
			if got == s {
				return nil
			}
		case <-p.exited:
			return fmt.Errorf("the child exited (%v) before it signalled %q; its standard error ends:\n%s", p.err, s, p.stderr.String())
		case <-ctx.Done():
			return fmt.Errorf("the child did not signal %q: %w", s, ctx.Err())
		}
	}
}

// KillNine kills the child and every process below it at once with
// SIGKILL, the way a crash does, waits until each has ended and the child
// is reaped, and returns their PIDs, the child first.
func (p *Process) KillNine(timeout time.Duration) ([]int, error) {
	procs, err := killTree(p.Pid(), timeout)
	if err != nil {
		return procs, err
	}
	select {
	case <-p.exited:
		return procs, nil
	case <-time.After(timeout):
		return procs, fmt.Errorf("child %d was killed but not reaped within %s", p.Pid(), timeout)
	}
}

// KillAt returns an injector that waits until p signals s and then kills
// it -9 with its whole process tree (Process.KillNine): the engine killed
// mid-step. It fails when the child ends before the signal.
func KillAt(p *Process, s string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := p.WaitSignal(ctx, s); err != nil {
			return err
		}
		_, err := p.KillNine(time.Minute)
		return err
	}
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if len(b.b) > 4096 {
		b.b = b.b[len(b.b)-4096:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
