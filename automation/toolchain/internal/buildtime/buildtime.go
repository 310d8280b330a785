// Package buildtime tells how long a tool's build takes: a Progress reports
// a running build every interval (packages compiled of those to compile,
// time elapsed and left), and Records keeps, in build-times.json, how long
// the last builds of each tool took on this machine, from which the next
// build's estimate comes.
//
// It is a leaf below package toolchain, which starts a Progress for each
// build and records its duration when it ends.
package buildtime

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultEvery is how often a build in progress reports how far it is.
const DefaultEvery = 20 * time.Second

// Progress reports one build through a log function: every interval, a
// line with the tool, the time elapsed, what it does or how many packages it
// has compiled of those it must, and the time left by the expected duration.
type Progress struct {
	name   string
	start  time.Time
	expect time.Duration

	mu       sync.Mutex
	phase    string // what the build does before or after compiling; "" while compiling
	compiled int    // packages compiled so far
	total    int    // packages to compile; -1 while unknown

	once sync.Once
	quit chan struct{}
	done chan struct{}
	took time.Duration
}

// Start starts reporting the build of the tool name, which is expected to
// take expect, to logf every every (DefaultEvery when not positive). Call
// Stop when the build ends.
func Start(name string, expect, every time.Duration, logf func(format string, args ...any)) *Progress {
	p := &Progress{name: name, start: time.Now(), expect: expect, phase: "starting", total: -1,
		quit: make(chan struct{}), done: make(chan struct{})}
	if every <= 0 {
		every = DefaultEvery
	}
	go p.loop(every, logf)
	return p
}

func (p *Progress) loop(every time.Duration, logf func(format string, args ...any)) {
	defer close(p.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
			logf("%s", p.line(time.Since(p.start)))
		}
	}
}

// Stop ends the reports (no line is logged after it returns) and returns
// the build's duration, measured at the first call.
func (p *Progress) Stop() time.Duration {
	p.once.Do(func() {
		p.took = time.Since(p.start)
		close(p.quit)
		<-p.done
	})
	return p.took
}

// SetPhase says what the build does while it does not compile ("" once it
// compiles).
func (p *Progress) SetPhase(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = s
}

// SetTotal sets the number of packages the build must compile and the
// duration expected with that many.
func (p *Progress) SetTotal(n int, expect time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.expect = n, expect
}

// CompiledPackage counts one package the go command compiled (its import
// path is not used).
func (p *Progress) CompiledPackage(string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.compiled++
}

// Compiled returns the number of packages compiled so far.
func (p *Progress) Compiled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.compiled
}

// line is the report after elapsed, e.g. "kubernetes: 3m elapsed; compiled
// 812 of 2650 packages (30%); about 6m left".
func (p *Progress) line(elapsed time.Duration) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s elapsed; ", p.name, Format(elapsed))
	switch {
	case p.phase != "":
		b.WriteString(p.phase)
	case p.total == 0:
		b.WriteString("linking (every package was in the Go build cache)")
	case p.total > 0 && p.compiled >= p.total:
		fmt.Fprintf(&b, "linking (compiled %d of %d packages)", p.compiled, p.total)
	case p.total > 0:
		fmt.Fprintf(&b, "compiled %d of %d packages (%d%%)", p.compiled, p.total, 100*p.compiled/p.total)
	default:
		fmt.Fprintf(&b, "compiled %d packages", p.compiled)
	}
	if left := p.expect - elapsed; left > 0 {
		fmt.Fprintf(&b, "; about %s left", Format(left))
	} else {
		fmt.Fprintf(&b, "; %s over the %s expected", Format(-left), Format(p.expect))
	}
	return b.String()
}

// Format formats d to the second: "42s", "9m", "9m05s".
func Format(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return d.String()
	}
	m, s := d/time.Minute, (d%time.Minute)/time.Second
	if s == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}
