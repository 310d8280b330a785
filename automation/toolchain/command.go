package toolchain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/buildtime"
	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
)

// commandEstimate is a cold build of Slipway's own command on 2 cores, until
// one is recorded on this machine.
const commandEstimate = 10 * time.Minute

// listingNotice is how long Command lists a command's packages before it
// says so: on a fresh machine the listing downloads the module's
// dependencies first (≈ 17 s, silently: the go command's own "downloading"
// lines are not passed on), and bootstrap's compile comes before it, so
// without this line the first 20 s would pass with none. A warm listing
// takes about a second and prints nothing.
const listingNotice = 3 * time.Second

// Command builds the main package pkg (such as "./cmd/slipway") of the Go
// module in dir into the resolver's cache and returns the binary's path. It
// is what `go run` does, with the reports of a tool's build: when packages
// must be compiled it says how many and how long it should take, and a line
// every 20 seconds says how far it is (go run prints nothing while it
// compiles, for ten minutes on a fresh machine). It builds as go run does,
// with no flags of its own (go install into the cache), so the packages it
// compiles are the ones go run, go test and the tools' builds find in the Go
// build cache. With nothing to compile it links only when the binary is out
// of date.
func (r *Resolver) Command(ctx context.Context, dir, pkg string) (string, error) {
	if err := r.hostOnly("Command"); err != nil {
		return "", err
	}
	goBin, err := r.goCommand()
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(abs + "\n" + pkg))
	out := filepath.Join(r.cacheDir, "commands", hex.EncodeToString(h[:6]), path.Base(filepath.ToSlash(pkg)))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	name := "command " + path.Base(filepath.ToSlash(pkg))
	expect, basis := r.buildTimes().Expected(name, commandEstimate)
	p := buildtime.Start(name, expect, r.progressEvery, r.logf)
	defer p.Stop()
	p.SetPhase("downloading dependencies and listing packages")
	// go install into our own GOBIN: unlike go build -o, it links only when
	// the binary is out of date.
	g := gobuild.Runner{Bin: goBin, Dir: dir, Env: []string{"GOBIN=" + filepath.Dir(out)}}
	notice := time.AfterFunc(r.listingNotice, func() {
		r.logf("%s: listing the packages of %s (a first run downloads its modules first)", name, pkg)
	})
	n, deps, err := g.ToCompile(ctx, nil, []string{pkg})
	notice.Stop()
	if err != nil {
		return "", fmt.Errorf("toolchain: listing the packages of %s: %w", pkg, err)
	}
	if n > 0 {
		expect = r.buildTimes().ExpectedFor(name, commandEstimate, n, deps)
		p.SetTotal(n, expect)
		r.logf("building %s: %d of %d packages to compile (expect about %s: %s)",
			pkg, n, deps, buildtime.Format(expect), basis)
	}
	p.SetPhase("")
	if err := g.Build(ctx, p.CompiledPackage, "install", "-v", pkg); err != nil {
		return "", fmt.Errorf("toolchain: building %s: %w", pkg, err)
	}
	took := p.Stop()
	if n > 0 {
		if err := r.buildTimes().Add(ctx, name, "", took, p.Compiled()); err != nil {
			r.logf("%s: recording the build time: %v", name, err) // only the next estimate suffers
		}
		r.logf("built %s in %s", pkg, took.Round(time.Second))
	}
	return out, nil
}
