// Package toolchain finds or builds the binaries Slipway drives: the pulumi
// CLI, the Kubernetes resource provider plugin and the local Kubernetes control
// plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok), and kubectl for the benchmarks.
//
// Nothing is downloaded from a website. Each tool is built with the local Go
// toolchain from a small Go module embedded in this package (so the library's
// own go.mod stays lean) into a per-user cache directory. A build runs under a
// file lock, so two processes resolving at once build once; a manifest of
// sizes, modification times and SHA-256 sums detects truncated or partial
// binaries, which are rebuilt. A warm resolution only stats files.
//
// A cold build says what it builds and how long it should take (the last
// build of the tool on this machine, else a static estimate), then every 20
// seconds how far it is: packages compiled of those it must compile, time
// elapsed and left. Callers that need several tools (All, ControlPlane) build
// them concurrently, two at a time. Each tool is built only when a caller
// asks for it: kubectl, for instance, only by Kubectl.
package toolchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/buildtime"
)

// Versions of the tools Slipway builds. They match the SDK versions pinned in
// Slipway's go.mod (a test checks this).
const (
	// PulumiVersion is the pulumi CLI version, equal to the Pulumi Go SDK version.
	PulumiVersion = "3.274.1"
	// PatchedPulumiVersion is the version Slipway's own build of the pulumi
	// CLI prints: PulumiVersion with the group-commit patch (see
	// groupCommit) and the fence patches (see fencePatches), marked as
	// semver build metadata.
	PatchedPulumiVersion = PulumiVersion + "+slipway.gc.fence"
	// MinPulumiVersion is the oldest pulumi CLI Slipway accepts from PATH or
	// WithPulumi (any 3.x from it on). It is the newest of the versions the
	// Automation API (of PulumiVersion) requires for what Slipway calls: the
	// API's own floor is 3.2.0-alpha, but Stack.PreviewRefresh (drift
	// checks, refresh with ExpectNoChanges) refuses a CLI older than
	// 3.105.0; refresh --clear-pending-creates (recovery) came in 3.39, and
	// the project-scoped layout of the file and S3 backends that Slipway's
	// state store reads in 3.61. Such a CLI lacks the group-commit patch:
	// updates write the checkpoint once per step, as upstream does.
	MinPulumiVersion = "3.105.0"
	// KubernetesProviderVersion is the version the Kubernetes provider plugin is
	// installed as: the pulumi-kubernetes Go SDK version in go.mod, so the
	// engine finds it and never tries to download one.
	KubernetesProviderVersion = "4.32.0"
	// KubernetesVersion is the version of the local control plane binaries.
	KubernetesVersion = "1.37.2"
	// AWSProviderVersion is the version of the AWS provider plugin that the
	// pulumi-aws SDK in go.mod asks for. Slipway does not build it (its
	// source is not served here); it must be installed or given by path.
	AWSProviderVersion = "6.83.4"
	// KwokVersion is the version of kwok, which runs fake nodes.
	KwokVersion = "0.8.0"
)

// DefaultBuildTimeout bounds one cold build of one tool.
const DefaultBuildTimeout = 45 * time.Minute

// ErrNoGo is returned (wrapped) when a tool must be built and no Go toolchain
// can be found.
var ErrNoGo = errors.New("toolchain: no Go toolchain found")

// Resolver finds or builds tools. Its zero value is not usable; call New.
type Resolver struct {
	cacheDir     string
	log          io.Writer
	logMu        sync.Mutex // one line at a time from concurrent builds
	goBin        string
	pulumiBin    string
	skipPath     bool
	buildTimeout time.Duration
	maxBuilds    int
	slots        chan struct{} // build slots; see acquireSlot
	// progressEvery is how often a build reports its progress (tests
	// shorten it; default buildtime.DefaultEvery).
	progressEvery time.Duration
	// listingNotice is how long Command lists its packages before it says
	// so (a first run downloads the modules then, silently; tests shorten
	// it; default listingNotice).
	listingNotice time.Duration
	// goos and goarch are the platform built for (WithPlatform; empty:
	// the host's).
	goos, goarch string
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithCacheDir sets the directory binaries are built into. The default is
// $SLIPWAY_CACHE_DIR, else $XDG_CACHE_HOME/slipway (~/.cache/slipway).
func WithCacheDir(dir string) Option { return func(r *Resolver) { r.cacheDir = dir } }

// WithLog sets where build progress is printed (default os.Stderr), one
// line per write, each prefixed "slipway: " and, for progress, the tool's
// name. Use io.Discard for silence. The Resolver writes one line at a time;
// a w shared by several Resolvers must be safe for concurrent use.
func WithLog(w io.Writer) Option { return func(r *Resolver) { r.log = w } }

// WithGo sets the go command used for builds (default $SLIPWAY_GO, else "go"
// from PATH, else /usr/local/go/bin/go).
func WithGo(path string) Option { return func(r *Resolver) { r.goBin = path } }

// WithPulumi sets an explicit pulumi binary. It is version-checked and used
// instead of searching PATH and the cache.
func WithPulumi(path string) Option { return func(r *Resolver) { r.pulumiBin = path } }

// WithoutPATH stops the resolver from using a pulumi CLI found on PATH.
func WithoutPATH() Option { return func(r *Resolver) { r.skipPath = true } }

// WithBuildTimeout bounds each cold build (default DefaultBuildTimeout).
func WithBuildTimeout(d time.Duration) Option { return func(r *Resolver) { r.buildTimeout = d } }

// New returns a Resolver configured by opts.
func New(opts ...Option) *Resolver {
	r := &Resolver{log: os.Stderr, buildTimeout: DefaultBuildTimeout, maxBuilds: DefaultMaxBuilds,
		progressEvery: buildtime.DefaultEvery, listingNotice: listingNotice}
	for _, o := range opts {
		o(r)
	}
	r.slots = make(chan struct{}, max(r.maxBuilds, 1))
	if r.cacheDir == "" {
		r.cacheDir = DefaultCacheDir()
	}
	return r
}

// CacheDir returns the directory the resolver builds into.
func (r *Resolver) CacheDir() string { return r.cacheDir }

// DefaultCacheDir returns $SLIPWAY_CACHE_DIR, else the user cache directory
// joined with "slipway".
func DefaultCacheDir() string {
	if d := os.Getenv("SLIPWAY_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "slipway")
	}
	return filepath.Join(os.TempDir(), "slipway-cache")
}

func (r *Resolver) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, "slipway: "+format+"\n", args...)
}

// goCommand finds the go command used for builds.
func (r *Resolver) goCommand() (string, error) {
	candidates := []string{r.goBin, os.Getenv("SLIPWAY_GO")}
	if p, err := exec.LookPath("go"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/local/go/bin/go")
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
		if r.goBin != "" && c == r.goBin {
			return "", fmt.Errorf("%w: WithGo(%q) is not an executable file; pass the path of a Go 1.26+ go command", ErrNoGo, c)
		}
	}
	return "", fmt.Errorf("%w: building the Slipway toolchain needs Go 1.26 or newer; install it "+
		"(https://go.dev/doc/install) and put `go` on PATH, or set SLIPWAY_GO to its path", ErrNoGo)
}

// Pulumi is the pulumi CLI a Resolver resolved.
type Pulumi struct {
	// Root is the directory such that Root/bin/pulumi is the CLI (the
	// layout auto.PulumiCommandOptions.Root expects).
	Root string
	// Version is the version the CLI prints, without the leading "v"
	// (PatchedPulumiVersion for Slipway's own build).
	Version string
	// Patched is set for Slipway's build, with the group-commit and fence
	// patches.
	Patched bool
	// Source says where it came from: "WithPulumi", "PATH" or "cache".
	Source string
}

// Bin returns the path of the CLI binary.
func (p Pulumi) Bin() string { return filepath.Join(p.Root, "bin", "pulumi") }

// PulumiCLI returns the directory Root such that Root/bin/pulumi is the
// pulumi CLI to use (see Pulumi).
func (r *Resolver) PulumiCLI(ctx context.Context) (string, error) {
	p, err := r.Pulumi(ctx)
	return p.Root, err
}

// Pulumi resolves the pulumi CLI: the one given by WithPulumi, else one on
// PATH (unless WithoutPATH) of MinPulumiVersion or newer, else Slipway's
// patched build in the cache, building it there when missing. A CLI from
// outside the cache is version-checked; one that is not Slipway's build
// is used with a notice (on the log) that it lacks the group-commit patch.
func (r *Resolver) Pulumi(ctx context.Context) (Pulumi, error) {
	if err := r.hostOnly("Pulumi"); err != nil {
		return Pulumi{}, err
	}
	if p, ok, err := r.pulumiOutsideCache(ctx); ok || err != nil {
		return p, err
	}
	dir, err := r.ensure(ctx, pulumiTool)
	if err != nil {
		return Pulumi{}, err
	}
	return Pulumi{Root: dir, Version: PatchedPulumiVersion, Patched: true, Source: "cache"}, nil
}

// FindPulumi is Pulumi without building: the pulumi CLI Pulumi would
// return, or an error saying why there is none yet (the patched build is
// not in the cache) and how to get it. It never starts a build.
func (r *Resolver) FindPulumi(ctx context.Context) (Pulumi, error) {
	if err := r.hostOnly("FindPulumi"); err != nil {
		return Pulumi{}, err
	}
	if p, ok, err := r.pulumiOutsideCache(ctx); ok || err != nil {
		return p, err
	}
	dir, err := r.toolDir(pulumiTool)
	if err != nil {
		return Pulumi{}, err
	}
	if ok, reason := verify(dir, pulumiTool); !ok {
		if reason == "" {
			reason = "not built"
		}
		return Pulumi{}, fmt.Errorf("toolchain: Slipway's pulumi build %s is not in the cache %s (%s), and no pulumi %s or newer is on PATH; "+
			"run `slipway toolchain build` (about %s on 2 cores), or install pulumi %s or newer on PATH", PatchedPulumiVersion, r.cacheDir, reason,
			MinPulumiVersion, buildtime.Format(pulumiTool.estimate), MinPulumiVersion)
	}
	return Pulumi{Root: dir, Version: PatchedPulumiVersion, Patched: true, Source: "cache"}, nil
}

// pulumiOutsideCache returns the pulumi CLI given by WithPulumi or found on
// PATH, with ok false when there is none to use. A CLI on PATH older than
// MinPulumiVersion is passed over with a notice, as if absent.
func (r *Resolver) pulumiOutsideCache(ctx context.Context) (p Pulumi, ok bool, err error) {
	if r.pulumiBin != "" {
		p, err := r.checkPulumi(ctx, r.pulumiBin, "WithPulumi")
		if err != nil {
			return Pulumi{}, false, fmt.Errorf("toolchain: WithPulumi(%q): %w", r.pulumiBin, err)
		}
		return p, true, nil
	}
	if r.skipPath {
		return Pulumi{}, false, nil
	}
	bin, err := exec.LookPath("pulumi")
	if err != nil {
		return Pulumi{}, false, nil
	}
	p, err = r.checkPulumi(ctx, bin, "PATH")
	if err != nil {
		r.logf("not using the pulumi CLI on PATH: %v", err)
		return Pulumi{}, false, nil
	}
	return p, true, nil
}

// checkPulumi checks the version of the pulumi CLI bin (from source) and
// its layout, and returns it.
func (r *Resolver) checkPulumi(ctx context.Context, bin, source string) (Pulumi, error) {
	v, patched, err := checkPulumiVersion(ctx, bin)
	if err != nil {
		return Pulumi{}, err
	}
	root, err := pulumiRoot(bin)
	if err != nil {
		return Pulumi{}, err
	}
	if !patched {
		r.logf("notice: using pulumi v%s from %s (%s): it lacks Slipway's group-commit patch, so updates write the checkpoint "+
			"once per step as upstream does (slower); for the patched build, remove it from PATH (library: toolchain.WithoutPATH())", v, source, bin)
	}
	return Pulumi{Root: root, Version: v, Patched: patched, Source: source}, nil
}

// UpstreamPulumiCLI returns, like PulumiCLI, the Root of a pulumi CLI of
// PulumiVersion built without Slipway's patches (see groupCommit): the engine
// a user of the bare Automation API runs. Benchmarks compare against it; it
// is built into the cache on first use and never taken from PATH.
func (r *Resolver) UpstreamPulumiCLI(ctx context.Context) (string, error) {
	if err := r.hostOnly("UpstreamPulumiCLI"); err != nil {
		return "", err
	}
	return r.ensure(ctx, pulumiUpstreamTool)
}

// pulumiRoot returns Root for a binary at Root/bin/pulumi, or an error when the
// binary is not laid out that way.
func pulumiRoot(bin string) (string, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	dir := filepath.Dir(abs)
	if filepath.Base(dir) != "bin" || filepath.Base(abs) != "pulumi" {
		return "", fmt.Errorf("toolchain: pulumi binary %s must live at <root>/bin/pulumi", abs)
	}
	return filepath.Dir(dir), nil
}

// checkPulumiVersion runs `bin version` and returns the version (without
// "v") and whether it is Slipway's patched build; a version that does not
// parse, of another major, or older than MinPulumiVersion is an error.
func checkPulumiVersion(ctx context.Context, bin string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = append(os.Environ(), "PULUMI_SKIP_UPDATE_CHECK=true")
	out, err := cmd.Output()
	if err != nil {
		return "", false, fmt.Errorf("running `%s version`: %w", bin, err)
	}
	got := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if got == PatchedPulumiVersion {
		return got, true, nil
	}
	v, err := semver.ParseTolerant(got)
	if err != nil {
		return "", false, fmt.Errorf("pulumi CLI %s prints version %q, which is not a version; Slipway needs %s or newer (3.x)", bin, got, MinPulumiVersion)
	}
	if min := semver.MustParse(MinPulumiVersion); v.Major != min.Major || v.LT(min) {
		return "", false, fmt.Errorf("pulumi CLI %s is version %s, Slipway needs %s or newer (3.x); install a newer one, "+
			"or let Slipway build its own (remove it from PATH, or pass toolchain.WithoutPATH())", bin, got, MinPulumiVersion)
	}
	return got, false, nil
}

// KubernetesProvider makes sure the Kubernetes provider plugin of
// KubernetesProviderVersion is installed in pulumiHome's plugin cache (the
// engine's PULUMI_HOME; empty means $PULUMI_HOME or ~/.pulumi) and returns the
// path of the installed plugin binary.
func (r *Resolver) KubernetesProvider(ctx context.Context, pulumiHome string) (string, error) {
	if err := r.hostOnly("KubernetesProvider"); err != nil {
		return "", err
	}
	dir, err := r.ensure(ctx, kubernetesProviderTool)
	if err != nil {
		return "", err
	}
	return installProvider(dir, pulumiHome)
}

// DefaultPulumiHome returns $PULUMI_HOME or ~/.pulumi.
func DefaultPulumiHome() (string, error) {
	if h := os.Getenv("PULUMI_HOME"); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("toolchain: no home directory for the Pulumi plugin cache; set PULUMI_HOME: %w", err)
	}
	return filepath.Join(home, ".pulumi"), nil
}

// ControlPlane holds the paths of the local Kubernetes control plane binaries.
// kubectl is not part of it: Resolver.Kubectl builds it when asked.
type ControlPlane struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kwok string
	// KwokStages is a kwok configuration file with the Stage objects that make
	// fake nodes Ready and move pods through their lifecycle.
	KwokStages string
}

// ControlPlane returns the control plane binaries, building the missing ones
// (Kubernetes and kwok, concurrently).
func (r *Resolver) ControlPlane(ctx context.Context) (*ControlPlane, error) {
	if err := r.hostOnly("ControlPlane"); err != nil {
		return nil, err
	}
	dirs, err := r.ensureAll(ctx, kubernetesTool, kwokTool)
	if err != nil {
		return nil, err
	}
	return controlPlaneIn(dirs[0], dirs[1]), nil
}

func controlPlaneIn(k8s, kwok string) *ControlPlane {
	b := filepath.Join(k8s, "bin")
	return &ControlPlane{
		Etcd:              filepath.Join(b, "etcd"),
		APIServer:         filepath.Join(b, "kube-apiserver"),
		ControllerManager: filepath.Join(b, "kube-controller-manager"),
		Scheduler:         filepath.Join(b, "kube-scheduler"),
		Kwok:              filepath.Join(kwok, "bin", "kwok"),
		KwokStages:        filepath.Join(kwok, "bin", "kwok-stages.yaml"),
	}
}

// Kubectl returns the path of a kubectl binary of KubernetesVersion, building
// it on first use. Slipway itself never runs kubectl; the benchmarks do. A
// control plane built when it still included kubectl provides it unbuilt.
func (r *Resolver) Kubectl(ctx context.Context) (string, error) {
	if err := r.hostOnly("Kubectl"); err != nil {
		return "", err
	}
	if bin, ok := r.kubectlInControlPlane(); ok {
		return bin, nil
	}
	dir, err := r.ensure(ctx, kubectlTool)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "bin", "kubectl"), nil
}

// All resolves every tool Slipway's commands use: the pulumi CLI, the
// Kubernetes provider (installed into pulumiHome) and the control plane. The
// missing ones are built concurrently (see WithMaxBuilds); the first failure
// stops the others and is returned with the tool's name. kubectl is not
// among them (see Kubectl).
func (r *Resolver) All(ctx context.Context, pulumiHome string) error {
	if err := r.hostOnly("All"); err != nil {
		return err
	}
	tools := []tool{kubernetesProviderTool, kubernetesTool, kwokTool}
	_, outside, err := r.pulumiOutsideCache(ctx)
	if err != nil {
		return err
	}
	if !outside {
		tools = append(tools, pulumiTool)
	}
	dirs, err := r.ensureAll(ctx, tools...)
	if err != nil {
		return err
	}
	_, err = installProvider(dirs[0], pulumiHome)
	return err
}

// kubectlInControlPlane returns the kubectl of a control plane built when it
// still included kubectl, when its manifest vouches for it.
func (r *Resolver) kubectlInControlPlane() (string, bool) {
	k8s, err := r.toolDir(kubernetesTool)
	if err != nil {
		return "", false
	}
	if ok, _ := verify(k8s, tool{outputs: kubectlTool.outputs}); !ok {
		return "", false
	}
	return filepath.Join(k8s, "bin", "kubectl"), true
}

// Status describes one tool's cache entry.
type Status struct {
	Tool    string `json:"tool"`
	Version string `json:"version"`
	Dir     string `json:"dir"`
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason,omitempty"`
}

// Status reports, without building anything, which tools are built. kubectl
// is built only on first use (Resolver.Kubectl), so "not built" is its
// normal state.
func (r *Resolver) Status() []Status {
	var out []Status
	for _, t := range []tool{pulumiTool, kubernetesProviderTool, kubernetesTool, kwokTool, kubectlTool} {
		dir, err := r.toolDir(t)
		s := Status{Tool: t.name, Version: t.version, Dir: dir}
		if err != nil {
			s.Reason = err.Error()
		} else {
			s.Ready, s.Reason = verify(dir, t)
			if !s.Ready && t.name == kubectlTool.name {
				if bin, ok := r.kubectlInControlPlane(); ok {
					s.Dir, s.Ready, s.Reason = filepath.Dir(filepath.Dir(bin)), true, ""
				}
			}
			if !s.Ready && s.Reason == "" {
				s.Reason = "not built"
				if t.name == kubectlTool.name {
					s.Reason = "not built (built on first use; only the benchmarks use it)"
				}
			}
		}
		out = append(out, s)
	}
	return out
}
