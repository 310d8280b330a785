package toolchain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/filelock"
	"github.com/slipwayhq/slipway/automation/toolchain/internal/buildtime"
	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
	"github.com/slipwayhq/slipway/automation/toolchain/internal/toolspec"
)

// modules holds one Go module per tool. Files carry a ".txt" suffix so that
// the go command does not treat them as part of this module; it is stripped
// when a module is written out for a build.
//
//go:embed modules
var embedded embed.FS

// modules is the file system the tool modules are read from (a variable so
// tests can build a tiny module through the same path).
var modules fs.FS = embedded

// tool describes how to build one tool from its embedded module.
type tool struct {
	name     string   // cache directory name
	version  string   // version, for messages and the cache path
	module   string   // directory under modules/
	packages []string // go build targets
	outputs  []string // files in bin/ that the build produces
	ldflags  string
	estimate time.Duration // cold build time on 2 cores, until one is recorded here
	rev      int           // bump when prepare/finish change what a build produces
	patches  []gobuild.Patch
	// prepare runs in the module directory before go build.
	prepare func(ctx context.Context, g gobuild.Runner) error
	// finish runs after go build, with the new bin directory.
	finish func(ctx context.Context, g gobuild.Runner, bin string) error
}

// buildFlags are the go build flags of t's build. None of them changes how
// a package compiles: the tools compile their packages as go run and go test
// compile the slipway command's (no -trimpath), so the Go build cache
// compiles a package they share once; ldflags only change the link. (The
// binaries hold the module cache's paths in their debug information.)
func (t tool) buildFlags() []string { return []string{"-ldflags=" + t.ldflags} }

func init() {
	// What the breakdown command (toolchain/internal/breakdown) studies.
	toolspec.Modules = embedded
	for _, t := range []tool{kubernetesProviderTool, kubernetesTool, kwokTool, pulumiTool} {
		toolspec.Tools = append(toolspec.Tools, toolspec.Tool{Name: t.name, Module: t.module, Packages: t.packages, Flags: t.buildFlags()})
	}
}

// pulumiVersionFlag is the ldflag that stamps the version the pulumi CLI prints.
const pulumiVersionFlag = "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v"

// pulumiTool is the pulumi CLI with Slipway's patches, stamped
// PatchedPulumiVersion so that it can be told from any other build. The
// stamp is part of ldflags, hence of the cache directory's hash: a change
// of stamp makes a new directory, whose build only relinks (the compiled
// packages are in the Go build cache).
var pulumiTool = tool{
	name: "pulumi", version: "v" + PulumiVersion, module: "pulumi",
	packages: []string{"github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"},
	outputs:  []string{"pulumi"},
	ldflags:  pulumiVersionFlag + PatchedPulumiVersion,
	estimate: 6 * time.Minute,
	patches:  append(append(append([]gobuild.Patch{groupCommit}, fencePatches...), lazyInitPatches...), passphraseKeyPatch),
}

// pulumiUpstreamTool is the same pulumi CLI without Slipway's patches: what a
// user of the bare Automation API runs, stamped PulumiVersion as upstream
// stamps it. Only the benchmarks build it.
var pulumiUpstreamTool = tool{
	name: "pulumi-upstream", version: pulumiTool.version, module: pulumiTool.module,
	packages: pulumiTool.packages, outputs: pulumiTool.outputs, ldflags: pulumiVersionFlag + PulumiVersion,
	estimate: 3 * time.Minute, // after the patched build, whose packages it shares
}

var kubernetesProviderTool = tool{
	name: "pulumi-resource-kubernetes", version: "v" + KubernetesProviderVersion, module: "kubernetes-provider",
	packages: []string{"."},
	outputs:  []string{"pulumi-resource-kubernetes"},
	ldflags:  "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=" + KubernetesProviderVersion,
	estimate: 12 * time.Minute,
	prepare: func(ctx context.Context, g gobuild.Runner) error {
		dir, err := g.ModuleDir(ctx, "github.com/pulumi/pulumi-kubernetes/provider/v4")
		if err != nil {
			return err
		}
		for _, f := range []string{"schema.json", "terraform-mapping.json"} {
			if err := gobuild.CopyFile(filepath.Join(dir, "cmd", "pulumi-resource-kubernetes", f), filepath.Join(g.Dir, f), 0o644); err != nil {
				return err
			}
		}
		return nil
	},
}

// kubernetesTool is the control plane. It does not include kubectl, which
// only the benchmarks use (kubectlTool). Builds made before kubectl was split
// off hold it too; their cache directory stays valid, since the directory
// hash does not cover the package list.
var kubernetesTool = tool{
	name: "kubernetes", version: "v" + KubernetesVersion, module: "kubernetes",
	packages: []string{"./cmd/etcd", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler"},
	outputs:  []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"},
	ldflags:  "-s -w" + versionStamp("k8s.io/component-base/version") + versionStamp("k8s.io/client-go/pkg/version"),
	estimate: 9 * time.Minute,
}

// kubectlTool is kubectl, built from the control plane's module on first use
// (Resolver.Kubectl); after the control plane it mostly links cached packages.
var kubectlTool = tool{
	name: "kubectl", version: kubernetesTool.version, module: kubernetesTool.module,
	packages: []string{"k8s.io/kubernetes/cmd/kubectl"},
	outputs:  []string{"kubectl"},
	ldflags:  kubernetesTool.ldflags,
	estimate: 3 * time.Minute,
}

// kwokStageFiles are the Stage objects (from kwok's kustomize/stage) that make
// nodes Ready and move pods through their lifecycle.
var kwokStageFiles = []string{
	"node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml",
}

var kwokTool = tool{
	name: "kwok", version: "v" + KwokVersion, module: "kwok",
	packages: []string{"sigs.k8s.io/kwok/cmd/kwok"},
	outputs:  []string{"kwok", "kwok-stages.yaml"},
	ldflags:  "-s -w",
	estimate: 2 * time.Minute,
	finish: func(ctx context.Context, g gobuild.Runner, bin string) error {
		dir, err := g.ModuleDir(ctx, "sigs.k8s.io/kwok")
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		for _, f := range kwokStageFiles {
			b, err := os.ReadFile(filepath.Join(dir, "kustomize", "stage", f))
			if err != nil {
				return fmt.Errorf("kwok stage %s: %w", f, err)
			}
			if f == "pod/fast/pod-ready.yaml" {
				b, err = neverReadySelector(b)
				if err != nil {
					return err
				}
			}
			buf.WriteString("---\n")
			buf.Write(b)
		}
		return os.WriteFile(filepath.Join(bin, "kwok-stages.yaml"), buf.Bytes(), 0o644)
	},
}

// NeverReadyLabel is a pod label that keeps kwok from ever making the pod
// Ready, so tests can exercise failed rollouts on the local cluster.
const NeverReadyLabel = "slipway.dev/kwok-never-ready"

// neverReadySelector adds to kwok's pod-ready stage a selector that skips pods
// labelled NeverReadyLabel.
func neverReadySelector(stage []byte) ([]byte, error) {
	anchor := "    - key: '.metadata.deletionTimestamp'\n      operator: 'DoesNotExist'\n"
	if !bytes.Contains(stage, []byte(anchor)) {
		return nil, errors.New("kwok pod-ready stage has an unexpected layout; update neverReadySelector")
	}
	extra := anchor + "    - key: '.metadata.labels.\"" + NeverReadyLabel + "\"'\n      operator: 'DoesNotExist'\n"
	return bytes.Replace(stage, []byte(anchor), []byte(extra), 1), nil
}

func versionStamp(pkg string) string {
	minor := strings.Split(KubernetesVersion, ".")[1]
	return fmt.Sprintf(" -X %[1]s.gitVersion=v%[2]s -X %[1]s.gitMajor=1 -X %[1]s.gitMinor=%[3]s -X %[1]s.gitTreeState=clean",
		pkg, KubernetesVersion, minor)
}

// toolDir is the cache directory of one build of t: its name, version and a
// hash of everything that goes into the build.
func (r *Resolver) toolDir(t tool) (string, error) {
	h := sha256.New()
	goos, goarch := r.target()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s/%s\nrev %d\n", t.name, t.version, t.ldflags, goos, goarch, t.rev)
	err := fs.WalkDir(modules, "modules/"+t.module, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(modules, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("toolchain: embedded module %s: %w", t.module, err)
	}
	for _, p := range t.patches {
		fmt.Fprintf(h, "patch %s %s %s\n%d %s\n%d %s\n", p.Name, p.Module, p.File, len(p.Old), p.Old, len(p.New), p.New)
		for _, name := range slices.Sorted(maps.Keys(p.Add)) {
			fmt.Fprintf(h, "add %s %d %s\n", name, len(p.Add[name]), p.Add[name])
		}
	}
	return filepath.Join(r.cacheDir, t.name, t.version+"-"+hex.EncodeToString(h.Sum(nil))[:12]), nil
}

// manifest records what a finished build produced.
type manifest struct {
	Tool    string                  `json:"tool"`
	Version string                  `json:"version"`
	Built   time.Time               `json:"built"`
	Files   map[string]manifestFile `json:"files"`
}

type manifestFile struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"modTimeUnixNano"`
	SHA256  string `json:"sha256"`
}

// verify reports whether dir holds a complete build of t. When it does not,
// the reason says why (empty when nothing was ever built).
func verify(dir string, t tool) (ok bool, reason string) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "bin")); err == nil {
			return false, "a previous build did not finish"
		}
		return false, ""
	}
	var m manifest
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return false, fmt.Sprintf("its manifest is unreadable (%v)", err)
	}
	for _, name := range t.outputs {
		want, ok := m.Files[name]
		if !ok {
			return false, fmt.Sprintf("bin/%s is missing from the manifest", name)
		}
		fi, err := os.Stat(filepath.Join(dir, "bin", name))
		switch {
		case err != nil:
			return false, fmt.Sprintf("bin/%s is missing", name)
		case fi.Size() != want.Size:
			return false, fmt.Sprintf("bin/%s is %d bytes, the build wrote %d (truncated or replaced)", name, fi.Size(), want.Size)
		case fi.ModTime().UnixNano() != want.ModTime:
			return false, fmt.Sprintf("bin/%s was modified after the build", name)
		}
	}
	return true, ""
}

// ensure returns the cache directory of a complete build of t, building it
// first when needed. Every error names the tool.
func (r *Resolver) ensure(ctx context.Context, t tool) (string, error) {
	return r.ensureNotify(ctx, t, func() {})
}

// ensureNotify is ensure that calls started (once or more) as soon as it no
// longer waits for a build slot: when it holds one, waits for another process
// that builds t, or needs no build. ensureAll starts the next build then.
func (r *Resolver) ensureNotify(ctx context.Context, t tool, started func()) (string, error) {
	dir, err := r.toolDir(t)
	if err != nil {
		return "", err
	}
	if ok, _ := verify(dir, t); ok {
		return dir, nil
	}
	if err := r.ensureBuilt(ctx, t, dir, started); err != nil {
		return "", fmt.Errorf("toolchain: building %s %s: %w", t.name, t.version, err)
	}
	return dir, nil
}

// ensureBuilt builds t into dir under its file lock and a build slot, unless
// another process built it meanwhile.
func (r *Resolver) ensureBuilt(ctx context.Context, t tool, dir string, started func()) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	unlock, err := filelock.Lock(ctx, dir+".lock", 0o644, 250*time.Millisecond, func() {
		started()
		r.logf("%s: waiting for another process that is building %s %s (lock %s)", t.name, t.name, t.version, dir+".lock")
	})
	if err != nil {
		return fmt.Errorf("build lock: %w", err)
	}
	defer unlock()
	ok, reason := verify(dir, t) // another process may have built it meanwhile
	if ok {
		return nil
	}
	release, err := r.acquireSlot(ctx, t)
	if err != nil {
		return err
	}
	defer release()
	started()
	if reason != "" {
		r.logf("rebuilding %s %s: %s", t.name, t.version, reason)
	}
	return r.build(ctx, t, dir)
}

// build writes t's module under dir/src, builds into dir/bin and records the
// manifest last, so an interrupted build is never taken for a finished one.
// It reports its progress and records how long it took (package buildtime).
func (r *Resolver) build(ctx context.Context, t tool, dir string) error {
	goBin, err := r.goCommand()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.buildTimeout)
	defer cancel()
	expect, basis := r.expected(t)
	r.logf("building %s %s from Go modules into %s (first run only; expect about %s: %s)...",
		t.name, t.version, dir, buildtime.Format(expect), basis)
	p := buildtime.Start(t.name, expect, r.progressEvery, r.logf)
	defer p.Stop()
	_ = os.Remove(filepath.Join(dir, "manifest.json"))
	src := filepath.Join(dir, "src")
	if err := os.RemoveAll(src); err != nil {
		return fmt.Errorf("clearing %s: %w", src, err)
	}
	if err := writeModule(t.module, src); err != nil {
		return err
	}
	g := gobuild.Runner{Bin: goBin, Dir: src, Env: r.targetEnv()}
	if t.prepare != nil {
		p.SetPhase("preparing the module (downloading dependencies)")
		if err := t.prepare(ctx, g); err != nil {
			return fmt.Errorf("preparing: %w", err)
		}
	}
	tmp := filepath.Join(dir, "bin.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if len(t.patches) > 0 {
		p.SetPhase("patching (downloading dependencies)")
		r.logf("patching %s: %s", t.name, gobuild.PatchNames(t.patches))
		if err := gobuild.ApplyPatches(ctx, g, t.patches, false); err != nil {
			return err
		}
	}
	flags := t.buildFlags()
	p.SetPhase("downloading dependencies and listing packages")
	if n, deps, err := g.ToCompile(ctx, flags, t.packages); err == nil {
		expect = r.buildTimes().ExpectedFor(t.name, t.estimate, n, deps)
		p.SetTotal(n, expect)
		r.logf("%s: %d of %d packages to compile (the rest are in the Go build cache); expect about %s in all",
			t.name, n, deps, buildtime.Format(expect))
	} else if ctx.Err() != nil {
		return ctx.Err()
	}
	p.SetPhase("")
	args := append([]string{"build", "-v"}, flags...)
	args = append(append(args, "-o", tmp+string(filepath.Separator)), t.packages...)
	if err := g.Build(ctx, p.CompiledPackage, args...); err != nil {
		return err
	}
	if t.finish != nil {
		p.SetPhase("finishing")
		if err := t.finish(ctx, g, tmp); err != nil {
			return fmt.Errorf("finishing: %w", err)
		}
	}
	bin := filepath.Join(dir, "bin")
	if err := os.RemoveAll(bin); err != nil {
		return err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return err
	}
	m := manifest{Tool: t.name, Version: t.version, Built: time.Now().UTC(), Files: map[string]manifestFile{}}
	for _, name := range t.outputs {
		mf, err := describe(filepath.Join(bin, name))
		if err != nil {
			return fmt.Errorf("the build did not produce %s: %w", name, err)
		}
		m.Files[name] = mf
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := gobuild.WriteFileAtomic(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		return err
	}
	took := p.Stop()
	if err := r.buildTimes().Add(ctx, t.name, t.version, took, p.Compiled()); err != nil {
		r.logf("%s: recording the build time: %v", t.name, err) // only the next estimate suffers
	}
	r.logf("built %s %s in %s", t.name, t.version, took.Round(time.Second))
	return nil
}

// buildTimes are the build times recorded in the resolver's cache.
func (r *Resolver) buildTimes() buildtime.Records { return buildtime.Records{Dir: r.cacheDir} }

// expected returns how long a cold build of t should take and what that is
// based on (see buildtime.Records.Expected).
func (r *Resolver) expected(t tool) (time.Duration, string) {
	return r.buildTimes().Expected(t.name, t.estimate)
}

// describe returns the manifest entry of the file at path.
func describe(path string) (manifestFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifestFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return manifestFile{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return manifestFile{}, err
	}
	return manifestFile{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeModule writes the embedded module modules/<name> to dst (see
// toolspec.WriteModule).
func writeModule(name, dst string) error { return toolspec.WriteModule(modules, name, dst) }
