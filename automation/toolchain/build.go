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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/filelock"
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
	estimate string // cold build time, for the progress message
	rev      int    // bump when prepare/finish change what a build produces
	patches  []patch
	// prepare runs in the module directory before go build.
	prepare func(ctx context.Context, g goRunner) error
	// finish runs after go build, with the new bin directory.
	finish func(ctx context.Context, g goRunner, bin string) error
}

var pulumiTool = tool{
	name: "pulumi", version: "v" + PulumiVersion, module: "pulumi",
	packages: []string{"github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"},
	outputs:  []string{"pulumi"},
	ldflags:  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v" + PulumiVersion,
	estimate: "about 6 minutes",
	patches:  []patch{groupCommit},
}

// pulumiUpstreamTool is the same pulumi CLI without Slipway's patches: what a
// user of the bare Automation API runs. Only the benchmarks build it.
var pulumiUpstreamTool = tool{
	name: "pulumi-upstream", version: pulumiTool.version, module: pulumiTool.module,
	packages: pulumiTool.packages, outputs: pulumiTool.outputs, ldflags: pulumiTool.ldflags,
	estimate: "about 3 minutes after the patched build",
}

var kubernetesProviderTool = tool{
	name: "pulumi-resource-kubernetes", version: "v" + KubernetesProviderVersion, module: "kubernetes-provider",
	packages: []string{"."},
	outputs:  []string{"pulumi-resource-kubernetes"},
	ldflags:  "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=" + KubernetesProviderVersion,
	estimate: "about 10 minutes",
	prepare: func(ctx context.Context, g goRunner) error {
		dir, err := g.moduleDir(ctx, "github.com/pulumi/pulumi-kubernetes/provider/v4")
		if err != nil {
			return err
		}
		for _, f := range []string{"schema.json", "terraform-mapping.json"} {
			if err := copyFile(filepath.Join(dir, "cmd", "pulumi-resource-kubernetes", f), filepath.Join(g.dir, f), 0o644); err != nil {
				return err
			}
		}
		return nil
	},
}

var kubernetesTool = tool{
	name: "kubernetes", version: "v" + KubernetesVersion, module: "kubernetes",
	packages: []string{"./cmd/etcd", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl"},
	outputs:  []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"},
	ldflags:  "-s -w" + versionStamp("k8s.io/component-base/version") + versionStamp("k8s.io/client-go/pkg/version"),
	estimate: "about 14 minutes",
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
	estimate: "about 2 minutes",
	finish: func(ctx context.Context, g goRunner, bin string) error {
		dir, err := g.moduleDir(ctx, "sigs.k8s.io/kwok")
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
	fmt.Fprintf(h, "%s\n%s\n%s\n%s/%s\nrev %d\n", t.name, t.version, t.ldflags, runtime.GOOS, runtime.GOARCH, t.rev)
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
		fmt.Fprintf(h, "patch %s %s %s\n%d %s\n%d %s\n", p.name, p.module, p.file, len(p.old), p.old, len(p.new), p.new)
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
// first when needed.
func (r *Resolver) ensure(ctx context.Context, t tool) (string, error) {
	dir, err := r.toolDir(t)
	if err != nil {
		return "", err
	}
	if ok, _ := verify(dir, t); ok {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("toolchain: cache directory: %w", err)
	}
	unlock, err := r.lock(ctx, dir+".lock", t)
	if err != nil {
		return "", err
	}
	defer unlock()
	ok, reason := verify(dir, t) // another process may have built it meanwhile
	if ok {
		return dir, nil
	}
	if reason != "" {
		r.logf("rebuilding %s %s: %s", t.name, t.version, reason)
	}
	if err := r.build(ctx, t, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// lock takes an exclusive file lock, waiting until ctx is done.
func (r *Resolver) lock(ctx context.Context, path string, t tool) (func(), error) {
	unlock, err := filelock.Lock(ctx, path, 0o644, 250*time.Millisecond, func() {
		r.logf("waiting for another process that is building %s %s (lock %s)", t.name, t.version, path)
	})
	if err != nil {
		return nil, fmt.Errorf("toolchain: build lock of %s: %w", t.name, err)
	}
	return unlock, nil
}

// build writes t's module under dir/src, builds into dir/bin and records the
// manifest last, so an interrupted build is never taken for a finished one.
func (r *Resolver) build(ctx context.Context, t tool, dir string) error {
	goBin, err := r.goCommand()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.buildTimeout)
	defer cancel()
	start := time.Now()
	r.logf("building %s %s from Go modules into %s (first run only; %s cold on 2 cores)...", t.name, t.version, dir, t.estimate)
	_ = os.Remove(filepath.Join(dir, "manifest.json"))
	src := filepath.Join(dir, "src")
	if err := os.RemoveAll(src); err != nil {
		return fmt.Errorf("toolchain: clearing %s: %w", src, err)
	}
	if err := writeModule(t.module, src); err != nil {
		return err
	}
	g := goRunner{bin: goBin, dir: src}
	if t.prepare != nil {
		if err := t.prepare(ctx, g); err != nil {
			return fmt.Errorf("toolchain: preparing %s: %w", t.name, err)
		}
	}
	tmp := filepath.Join(dir, "bin.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags=" + t.ldflags, "-o", tmp + string(filepath.Separator)}
	if len(t.patches) > 0 {
		r.logf("patching %s: %s", t.name, patchNames(t.patches))
		if err := applyPatches(ctx, g, t.patches, false); err != nil {
			return err
		}
	}
	args = append(args, t.packages...)
	if _, err := g.run(ctx, args...); err != nil {
		return fmt.Errorf("toolchain: building %s %s: %w", t.name, t.version, err)
	}
	if t.finish != nil {
		if err := t.finish(ctx, g, tmp); err != nil {
			return fmt.Errorf("toolchain: finishing %s: %w", t.name, err)
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
			return fmt.Errorf("toolchain: %s build did not produce %s: %w", t.name, name, err)
		}
		m.Files[name] = mf
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		return err
	}
	r.logf("built %s %s in %s", t.name, t.version, time.Since(start).Round(time.Second))
	return nil
}

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

// writeModule writes the embedded module modules/<name> to dst, stripping the
// ".txt" suffix of each file.
func writeModule(name, dst string) error {
	root := "modules/" + name
	return fs.WalkDir(modules, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		target := filepath.Join(dst, filepath.FromSlash(strings.TrimSuffix(rel, ".txt")))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(modules, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// goRunner runs the go command in a module directory.
type goRunner struct {
	bin string
	dir string
}

func (g goRunner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -modcacherw"), "GOWORK=off")
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return out.String(), fmt.Errorf("go %s: %w\n%s", args[0], err, tail(out.String(), 40))
	}
	return out.String(), nil
}

// moduleDir returns the module cache directory of a dependency, downloading it
// when needed.
func (g goRunner) moduleDir(ctx context.Context, module string) (string, error) {
	if _, err := g.run(ctx, "mod", "download", module); err != nil {
		return "", err
	}
	out, err := g.run(ctx, "list", "-m", "-f", "{{.Dir}}", module)
	if err != nil {
		return "", err
	}
	d := strings.TrimSpace(out)
	if d == "" {
		return "", fmt.Errorf("module %s has no directory in the module cache", module)
	}
	return d, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// InstallPlugin places bin in the engine's plugin cache under pulumiHome as
// the plugin <kind> <name> v<version> (hard-linked when possible), so the
// engine finds it and never downloads one. It returns the installed path.
func InstallPlugin(bin, pulumiHome, kind, name, version string) (string, error) {
	return installPlugin(bin, filepath.Join(pulumiHome, "plugins"), kind, name, version)
}

// PluginPath returns where the engine looks for the plugin <kind> <name>
// v<version> under pulumiHome.
func PluginPath(pulumiHome, kind, name, version string) string {
	return filepath.Join(pulumiHome, "plugins", fmt.Sprintf("%s-%s-v%s", kind, name, version), "pulumi-"+kind+"-"+name)
}

// installPlugin places bin in the engine's plugin cache as <kind>-<name>-v<version>,
// hard-linked when possible and copied otherwise, replacing any other binary
// there. The directory is renamed into place so the engine never sees half of it.
func installPlugin(bin, pluginsDir, kind, name, version string) (string, error) {
	dir := filepath.Join(pluginsDir, fmt.Sprintf("%s-%s-v%s", kind, name, version))
	exe := filepath.Join(dir, "pulumi-"+kind+"-"+name)
	src, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("toolchain: plugin binary: %w", err)
	}
	if cur, err := os.Stat(exe); err == nil && os.SameFile(cur, src) {
		if _, err := os.Stat(dir + ".partial"); err != nil {
			return exe, nil
		}
	}
	if err := os.MkdirAll(pluginsDir, 0o755); err != nil {
		return "", fmt.Errorf("toolchain: plugin cache %s: %w", pluginsDir, err)
	}
	tmp, err := os.MkdirTemp(pluginsDir, ".slipway-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	tmpExe := filepath.Join(tmp, filepath.Base(exe))
	if err := os.Link(bin, tmpExe); err != nil {
		if err := copyFile(bin, tmpExe, 0o755); err != nil {
			return "", fmt.Errorf("toolchain: installing plugin: %w", err)
		}
	}
	old := dir + fmt.Sprintf(".old-%d", os.Getpid())
	_ = os.Rename(dir, old)
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have installed it at the same moment.
		if cur, e := os.Stat(exe); e == nil && os.SameFile(cur, src) {
			_ = os.RemoveAll(old)
			return exe, nil
		}
		return "", fmt.Errorf("toolchain: installing plugin into %s: %w", dir, err)
	}
	_ = os.RemoveAll(old)
	_ = os.Remove(dir + ".partial")
	return exe, nil
}

// Status describes one tool's cache entry.
type Status struct {
	Tool    string `json:"tool"`
	Version string `json:"version"`
	Dir     string `json:"dir"`
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason,omitempty"`
}

// Status reports, without building anything, which tools are built.
func (r *Resolver) Status() []Status {
	var out []Status
	for _, t := range []tool{pulumiTool, kubernetesProviderTool, kubernetesTool, kwokTool} {
		dir, err := r.toolDir(t)
		s := Status{Tool: t.name, Version: t.version, Dir: dir}
		if err != nil {
			s.Reason = err.Error()
		} else {
			s.Ready, s.Reason = verify(dir, t)
			if !s.Ready && s.Reason == "" {
				s.Reason = "not built"
			}
		}
		out = append(out, s)
	}
	return out
}
