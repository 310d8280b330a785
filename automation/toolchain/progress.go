package toolchain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/filelock"
)

// defaultProgressEvery is how often a build in progress reports how far it is.
const defaultProgressEvery = 20 * time.Second

// progress reports one build through the resolver's log: every interval, a
// line with the tool, the time elapsed, what it does or how many packages it
// has compiled of those it must, and the time left by the expected duration.
type progress struct {
	r      *Resolver
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

// startProgress starts reporting the build of t, which is expected to take
// expect. Call stop when the build ends.
func (r *Resolver) startProgress(t tool, expect time.Duration) *progress {
	p := &progress{r: r, name: t.name, start: time.Now(), expect: expect, phase: "starting", total: -1,
		quit: make(chan struct{}), done: make(chan struct{})}
	every := r.progressEvery
	if every <= 0 {
		every = defaultProgressEvery
	}
	go p.loop(every)
	return p
}

func (p *progress) loop(every time.Duration) {
	defer close(p.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
			p.r.logf("%s", p.line(time.Since(p.start)))
		}
	}
}

// stop ends the reports (no line is logged after it returns) and returns
// the build's duration, measured at the first call.
func (p *progress) stop() time.Duration {
	p.once.Do(func() {
		p.took = time.Since(p.start)
		close(p.quit)
		<-p.done
	})
	return p.took
}

// setPhase says what the build does while it does not compile ("" once it
// compiles).
func (p *progress) setPhase(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = s
}

// setTotal sets the number of packages the build must compile and the
// duration expected with that many.
func (p *progress) setTotal(n int, expect time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.expect = n, expect
}

// compiledPackage counts one package the go command compiled.
func (p *progress) compiledPackage(string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.compiled++
}

// compiledCount returns the number of packages compiled so far.
func (p *progress) compiledCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.compiled
}

// line is the report after elapsed, e.g. "kubernetes: 3m elapsed; compiled
// 812 of 2650 packages (30%); about 6m left".
func (p *progress) line(elapsed time.Duration) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s elapsed; ", p.name, fmtDuration(elapsed))
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
		fmt.Fprintf(&b, "; about %s left", fmtDuration(left))
	} else {
		fmt.Fprintf(&b, "; %s over the %s expected", fmtDuration(-left), fmtDuration(p.expect))
	}
	return b.String()
}

// fmtDuration formats d to the second: "42s", "9m", "9m05s".
func fmtDuration(d time.Duration) string {
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

// packageLine matches a line `go build -v` prints for a package it compiles:
// an import path, alone on its line. Compiler messages have spaces or colons,
// and their headers start with "#".
var packageLine = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+$`)

// build runs `go build` with args (which include -v) and calls onPackage for
// each package it compiles. The rest of its output goes into the error.
func (g goRunner) build(ctx context.Context, onPackage func(string), args ...string) error {
	cmd := g.command(ctx, args...)
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
		return goFailure(ctx, args, err, other.String())
	}
	return nil
}

// toCompile returns how many packages a go build of pkgs with flags compiles
// (those the Go build cache does not hold), and how many packages the
// targets depend on in all. It downloads the modules the build needs.
func (g goRunner) toCompile(ctx context.Context, flags, pkgs []string) (n, deps int, err error) {
	args := append([]string{"list", "-deps", "-f", "{{.Stale}}\t{{.StaleReason}}"}, flags...)
	out, err := g.run(ctx, append(args, pkgs...)...)
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

// buildTimesFile, in the cache directory, records how long the last builds
// of each tool took on this machine; the next build's estimate comes from it.
const buildTimesFile = "build-times.json"

// buildRecord is one tool's entry in buildTimesFile: the last cold build
// (Seconds, compiling Packages) and the last warm one (WarmSeconds), which
// found most packages in the Go build cache.
type buildRecord struct {
	Version     string    `json:"version"`
	Seconds     float64   `json:"seconds,omitempty"`
	Packages    int       `json:"packagesCompiled,omitempty"`
	WarmSeconds float64   `json:"warmSeconds,omitempty"`
	Built       time.Time `json:"built"`
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// buildRecords reads buildTimesFile; a missing or unreadable file is empty.
func (r *Resolver) buildRecords() map[string]buildRecord {
	recs := map[string]buildRecord{}
	if b, err := os.ReadFile(filepath.Join(r.cacheDir, buildTimesFile)); err == nil {
		if json.Unmarshal(b, &recs) != nil {
			return map[string]buildRecord{}
		}
	}
	return recs
}

// expected returns how long a cold build of t should take and what that is
// based on: the last cold build of t recorded on this machine, else t's
// static estimate.
func (r *Resolver) expected(t tool) (time.Duration, string) {
	if rec, ok := r.buildRecords()[t.name]; ok && rec.Seconds > 0 && rec.Packages > 0 {
		d := seconds(rec.Seconds)
		return d, "the last build on this machine took " + fmtDuration(d)
	}
	return t.estimate, "a cold build on 2 cores"
}

// expectedFor refines expected once a build knows it compiles n of the
// total packages its targets depend on: the time of a build that finds them
// all in the Go build cache (the last such build here, else a tenth of the
// cold time), plus the cold build's time beyond that in proportion to the
// packages to compile.
func (r *Resolver) expectedFor(t tool, n, total int) time.Duration {
	cold, pkgs := t.estimate, total
	rec, ok := r.buildRecords()[t.name]
	if ok && rec.Seconds > 0 && rec.Packages > 0 {
		cold, pkgs = seconds(rec.Seconds), rec.Packages
	}
	warm := cold / 10
	if ok && rec.WarmSeconds > 0 && seconds(rec.WarmSeconds) < cold {
		warm = seconds(rec.WarmSeconds)
	}
	if pkgs <= 0 {
		return cold
	}
	return warm + time.Duration(float64(cold-warm)*float64(n)/float64(pkgs))
}

// recordBuild records that t took took and compiled compiled packages: as
// its cold build when it compiled at least half as many packages as the
// recorded cold build, else as its warm build. Failing to record is only
// logged.
func (r *Resolver) recordBuild(ctx context.Context, t tool, took time.Duration, compiled int) {
	path := filepath.Join(r.cacheDir, buildTimesFile)
	unlock, err := filelock.Lock(ctx, path+".lock", 0o644, 50*time.Millisecond, nil)
	if err != nil {
		r.logf("%s: recording the build time: %v", t.name, err)
		return
	}
	defer unlock()
	recs := r.buildRecords()
	rec := recs[t.name]
	if compiled > 0 && compiled*2 >= rec.Packages {
		rec.Seconds, rec.Packages = took.Seconds(), compiled
	} else {
		rec.WarmSeconds = took.Seconds()
	}
	rec.Version, rec.Built = t.version, time.Now().UTC()
	recs[t.name] = rec
	b, _ := json.MarshalIndent(recs, "", "  ")
	if err := writeFileAtomic(path, b, 0o644); err != nil {
		r.logf("%s: recording the build time: %v", t.name, err)
	}
}
