// Package image builds the fleet's container image without Docker: the
// team's own binary (a main that calls Slipway's cli.Main with its programs
// and policy packs) as /usr/local/bin/slipway, the engine's toolchain (the
// pulumi CLI and the Kubernetes provider plugin, Slipway's own builds, laid
// out as a toolchain cache the binary finds through SLIPWAY_CACHE_DIR), the
// other resource plugins the team's programs list (Options.Plugins, e.g.
// the AWS provider: copied under PluginsDir and named in $SLIPWAY_PLUGINS,
// which the binary reads as --plugin values), CA certificates, and a
// non-root user (65532) with a home directory. The
// operator and runner Deployments that `operator install --print` writes
// run it as it is: `slipway` on PATH, a read-only root file system, HOME
// and /tmp on empty directories.
//
// The image is reproducible: every file carries one timestamp
// (Options.Created, the Unix epoch by default), layers are sorted tar
// streams with numeric owners, and the binary is built with -trimpath, so
// the same inputs give the same digest. It has three layers, from the least
// to the most often changed: the base (users, certificates, directories and,
// for a dynamically linked binary, the host's C library), the toolchain, and
// the binary; with plugins, a fourth, the plugins, comes before the binary.
// Several platforms make an OCI image index; plugins, binaries of one
// platform, restrict the image to one.
//
// It is written with go-containerregistry as an OCI image layout, a
// tarball (`docker load`) or pushed to a registry with the usual
// keychains (Docker's config, credential helpers); see Result.
package image

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// Paths and identities inside the image.
const (
	// BinaryPath is where the team's binary is installed (on PATH as
	// "slipway", the command the fleet's Deployments run).
	BinaryPath = "/usr/local/bin/slipway"
	// ToolchainDir is the toolchain cache in the image: SLIPWAY_CACHE_DIR.
	ToolchainDir = "/opt/slipway/toolchain"
	// PluginsDir holds the plugins of Options.Plugins, each at
	// PluginsDir/NAME-vVERSION/pulumi-resource-NAME (PluginPath).
	PluginsDir = "/opt/slipway/plugins"
	// PluginsEnv is the variable of the image's configuration that names
	// its plugins, NAME@VERSION=PATH entries separated by commas; the
	// binary reads it as further --plugin values.
	PluginsEnv = "SLIPWAY_PLUGINS"
	// Home is the non-root user's home directory and the image's HOME.
	Home = "/home/nonroot"
	// UID is the non-root user (and group) the image runs as.
	UID = 65532
	// DefaultCACertificates is the host's CA bundle copied into the image.
	DefaultCACertificates = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultPlatform is built when Options.Platforms is empty.
	DefaultPlatform = "linux/amd64"
	// slipwayModule is the module path a team's binary must be built with.
	slipwayModule = "github.com/slipwayhq/slipway"
)

// Label keys the image carries (the OCI annotation names).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
)

// Platforms lists the platforms an image can be built for: Linux on the
// architectures the pulumi CLI ships for.
var Platforms = []string{"linux/amd64", "linux/arm64"}

// Options says what goes into the image. The zero value is not enough:
// Main or Binaries must name the team's binary.
type Options struct {
	// Main is the Go package of the team's binary (a main that calls
	// Slipway's cli.Main with its programs and policy packs), e.g.
	// "./cmd/platform", built for each platform with `go build -trimpath`
	// and CGO_ENABLED=0 in ModuleDir. A platform in Binaries is not built.
	Main string
	// ModuleDir is the directory go build runs in: the team's module
	// (default the working directory).
	ModuleDir string
	// Binaries are prebuilt binaries by platform ("linux/amd64":
	// "/path/to/binary"), used instead of building Main. A dynamically
	// linked binary for the host's platform brings the host's C library
	// into the image; for another platform it is refused.
	Binaries map[string]string
	// Platforms are the platforms to build, "os/arch" (default
	// DefaultPlatform). With two or more the result is an image index.
	Platforms []string
	// Source, Revision and Version are the image's
	// org.opencontainers.image.{source,revision,version} labels. Revision
	// and Version default to the binary's VCS revision and module version
	// from its build information, when it has them.
	Source, Revision, Version string
	// Created is the time every file, the history and the configuration
	// carry (default the Unix epoch): the same inputs give the same digest.
	Created time.Time
	// CACertificates is the CA bundle copied to
	// /etc/ssl/certs/ca-certificates.crt (default DefaultCACertificates).
	CACertificates string
	// CacheDir is the toolchain cache the pulumi CLI and the Kubernetes
	// provider are taken from, built there when missing (default
	// toolchain.DefaultCacheDir()). Another platform's tools are
	// cross-compiled into it.
	CacheDir string
	// Plugins are the resource plugins that Slipway does not build (the
	// AWS provider, say) and the team's programs list: each is copied to
	// PluginPath and named in the image's $SLIPWAY_PLUGINS (PluginsEnv),
	// so the fleet's engines use them with no argument. A plugin is one
	// Linux binary, so an image with plugins has one platform.
	Plugins []Plugin
	// Go is the go command (default "go" on PATH).
	Go string
	// Log receives progress lines (default io.Discard).
	Log io.Writer

	// bundle replaces the toolchain's Bundle in this package's tests.
	bundle func(ctx context.Context, goos, goarch string, created time.Time) ([]toolchain.BundleFile, error)
}

// Plugin is a resource plugin binary the image holds (Options.Plugins).
type Plugin struct {
	// Name and Version name it, e.g. "aws" and "6.83.0".
	Name, Version string
	// Path is its binary on this machine: an executable Linux ELF file of
	// the image's platform.
	Path string
}

// PluginPath is where the image holds the plugin name at version.
func PluginPath(name, version string) string {
	return path.Join(PluginsDir, name+"-v"+version, "pulumi-resource-"+name)
}

// pluginRE matches a plugin name, as the CLI's --plugin takes it.
var pluginRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Platform is one platform of the image.
type Platform struct {
	OS, Arch string
}

// String returns "os/arch".
func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatform parses "os/arch" and refuses a platform the image cannot
// be built for, naming the supported ones.
func ParsePlatform(s string) (Platform, error) {
	if !slices.Contains(Platforms, s) {
		return Platform{}, fmt.Errorf("image: platform %q is not supported; use one of %s (Linux only: the fleet runs on Linux nodes)",
			s, strings.Join(Platforms, ", "))
	}
	os, arch, _ := strings.Cut(s, "/")
	return Platform{OS: os, Arch: arch}, nil
}

// Result is a built image: one platform's Image, or an Index of several.
// Its layers are files in a temporary directory until Close.
type Result struct {
	// Image is the image when one platform was built.
	Image v1.Image
	// Index is the image index when several platforms were built.
	Index v1.ImageIndex
	// Platforms are the platforms built, in the order asked.
	Platforms []Platform
	tmp       string
}

// Digest returns the digest of the image, or of the index.
func (r *Result) Digest() (v1.Hash, error) {
	if r.Index != nil {
		return r.Index.Digest()
	}
	return r.Image.Digest()
}

// Close removes the layer files; the Result is unusable afterwards.
func (r *Result) Close() error { return os.RemoveAll(r.tmp) }

// InputError is a wrong Options value, found before anything is built;
// its message names the option, the CLI flag and the fix. Get it with
// errors.As.
type InputError struct{ Err error }

// Error returns the message.
func (e *InputError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// validated is Options checked, with defaults filled in.
type validated struct {
	Options
	platforms []Platform
	binaries  map[Platform]string
}

// validate checks every input before anything is built, naming the option
// (and the CLI flag) that is wrong and how to fix it.
func (o Options) validate() (validated, error) {
	v := validated{Options: o, binaries: map[Platform]string{}}
	if len(v.Platforms) == 0 {
		v.Platforms = []string{DefaultPlatform}
	}
	seen := map[Platform]bool{}
	for _, s := range v.Platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			return v, fmt.Errorf("%w (Options.Platforms, --platform)", err)
		}
		if seen[p] {
			return v, fmt.Errorf("image: platform %s is given twice (Options.Platforms, --platform); give each once", p)
		}
		seen[p] = true
		v.platforms = append(v.platforms, p)
	}
	for s, path := range v.Binaries {
		p, err := ParsePlatform(s)
		if err != nil {
			return v, fmt.Errorf("%w (Options.Binaries, --binary %s=%s)", err, s, path)
		}
		if !seen[p] {
			return v, fmt.Errorf("image: a binary is given for %s (--binary %s=%s), which is not among the platforms to build (%s); "+
				"add --platform %s or drop the binary", p, s, path, strings.Join(v.Platforms, ", "), p)
		}
		if err := checkBinary(path, p); err != nil {
			return v, fmt.Errorf("image: --binary %s=%s: %w", s, path, err)
		}
		v.binaries[p] = path
	}
	if v.Main == "" {
		for _, p := range v.platforms {
			if v.binaries[p] == "" {
				return v, fmt.Errorf("image: no binary for %s: give the Go package of your binary (Options.Main, --main ./cmd/yours; "+
					"its main calls Slipway's cli.Main) or a prebuilt one (Options.Binaries, --binary %s=/path/to/binary)", p, p)
			}
		}
	}
	if len(v.Plugins) > 0 && len(v.platforms) > 1 {
		return v, fmt.Errorf("image: a plugin (Options.Plugins, --plugin %s@%s=...) is a binary of one platform, and %d platforms are asked (%s, --platform); "+
			"build one image per platform, each with that platform's plugins", v.Plugins[0].Name, v.Plugins[0].Version, len(v.platforms), strings.Join(v.Platforms, ", "))
	}
	seenPlugin := map[string]bool{}
	for _, pl := range v.Plugins {
		flag := fmt.Sprintf("--plugin %s@%s=%s", pl.Name, pl.Version, pl.Path)
		if !pluginRE.MatchString(pl.Name) || pl.Version == "" || pl.Path == "" {
			return v, fmt.Errorf("image: plugin %q version %q path %q (Options.Plugins, %s) needs a lower-case name, a version and a path; give NAME@VERSION=PATH",
				pl.Name, pl.Version, pl.Path, flag)
		}
		if seenPlugin[pl.Name+"@"+pl.Version] {
			return v, fmt.Errorf("image: plugin %s@%s is given twice (Options.Plugins, --plugin); give each once", pl.Name, pl.Version)
		}
		seenPlugin[pl.Name+"@"+pl.Version] = true
		if err := checkBinary(pl.Path, v.platforms[0]); err != nil {
			return v, fmt.Errorf("image: plugin %s (Options.Plugins, %s): %w", pl.Name, flag, err)
		}
	}
	if v.ModuleDir == "" {
		v.ModuleDir = "."
	}
	if v.Main != "" {
		if fi, err := os.Stat(v.ModuleDir); err != nil || !fi.IsDir() {
			return v, fmt.Errorf("image: module directory %q (Options.ModuleDir, --module-dir) is not a directory; give your module's root", v.ModuleDir)
		}
	}
	if v.CACertificates == "" {
		v.CACertificates = DefaultCACertificates
	}
	if fi, err := os.Stat(v.CACertificates); err != nil || fi.IsDir() || fi.Size() == 0 {
		return v, fmt.Errorf("image: CA certificates %q (Options.CACertificates, --ca-certificates) is not a non-empty file; "+
			"install the ca-certificates package or give a PEM bundle", v.CACertificates)
	}
	if v.Created.IsZero() {
		v.Created = time.Unix(0, 0)
	}
	v.Created = v.Created.UTC().Truncate(time.Second)
	if v.Created.Before(time.Unix(0, 0)) {
		return v, fmt.Errorf("image: Created %s (--created, SOURCE_DATE_EPOCH) is before 1970; give a later time", v.Created)
	}
	if v.CacheDir == "" {
		v.CacheDir = toolchain.DefaultCacheDir()
	}
	if v.Log == nil {
		v.Log = io.Discard
	}
	if v.Go == "" {
		v.Go = "go"
	}
	return v, nil
}

// elfMachines maps an architecture to its ELF machine.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkBinary refuses a file that is not an executable Linux ELF binary of
// platform p.
func checkBinary(path string, p Platform) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("the binary does not exist (%v); build it first or give its path", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file; give the path of the built binary")
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an ELF (Linux) binary (%v); build it with GOOS=linux", err)
	}
	defer f.Close()
	if f.Machine != elfMachines[p.Arch] {
		return fmt.Errorf("it is a %s binary, not %s; build it with GOOS=%s GOARCH=%s", f.Machine, p, p.OS, p.Arch)
	}
	return nil
}

// Build builds the image for every platform of o and returns it; the
// caller writes it out (Result.WriteLayout, WriteTarball, Push) and closes
// it. Every input is checked before anything is built. The team's binary
// must be built with Slipway (its build information lists
// github.com/slipwayhq/slipway) and, on the host's platform, must find the
// toolchain in the image (it is asked with `toolchain status --json`).
func Build(ctx context.Context, o Options) (*Result, error) {
	v, err := o.validate()
	if err != nil {
		return nil, &InputError{Err: err}
	}
	tmp, err := os.MkdirTemp("", "slipway-image-")
	if err != nil {
		return nil, err
	}
	res := &Result{Platforms: v.platforms, tmp: tmp}
	ok := false
	defer func() {
		if !ok {
			_ = res.Close()
		}
	}()
	var images []v1.Image
	for _, p := range v.platforms {
		img, err := v.buildPlatform(ctx, p, tmp)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	if len(images) == 1 {
		res.Image = images[0]
	} else {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for i, img := range images {
			p := v.platforms[i]
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}}})
		}
		res.Index = idx
	}
	if _, err := res.Digest(); err != nil {
		return nil, err
	}
	ok = true
	return res, nil
}

// logf writes one progress line.
func (v validated) logf(format string, args ...any) {
	fmt.Fprintf(v.Log, "slipway image: "+format+"\n", args...)
}

// buildPlatform builds one platform's image.
func (v validated) buildPlatform(ctx context.Context, p Platform, tmp string) (v1.Image, error) {
	dir := filepath.Join(tmp, p.OS+"-"+p.Arch)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	bin := v.binaries[p]
	if bin == "" {
		var err error
		if bin, err = v.goBuild(ctx, p, dir); err != nil {
			return nil, err
		}
	}
	info, err := slipwayBuild(bin)
	if err != nil {
		return nil, err
	}
	v.logf("%s: binary %s (Slipway %s)", p, bin, info.slipway)
	bundle, err := v.toolchainBundle(ctx, p)
	if err != nil {
		return nil, err
	}
	if p.OS == runtime.GOOS && p.Arch == runtime.GOARCH {
		if err := checkFinds(ctx, bin, bundle); err != nil {
			return nil, err
		}
	}
	binaries := []string{bin}
	for _, f := range bundle {
		if f.Source != "" {
			binaries = append(binaries, f.Source)
		}
	}
	var plugins []entry
	var pluginsEnv []string
	for _, pl := range v.Plugins {
		binaries = append(binaries, pl.Path)
		plugins = append(plugins, entry{path: strings.TrimPrefix(PluginPath(pl.Name, pl.Version), "/"), mode: 0o755, src: pl.Path})
		pluginsEnv = append(pluginsEnv, pl.Name+"@"+pl.Version+"="+PluginPath(pl.Name, pl.Version))
		v.logf("%s: plugin %s v%s from %s", p, pl.Name, pl.Version, pl.Path)
	}
	libs, err := sharedLibraries(binaries, p)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for k, val := range map[string]string{LabelSource: v.Source, LabelRevision: cmpOr(v.Revision, info.revision),
		LabelVersion: cmpOr(v.Version, info.version)} {
		if val != "" {
			labels[k] = val
		}
	}
	layers := []struct {
		name    string
		entries []entry
	}{
		{"base", append(baseEntries(v.CACertificates), libs...)},
		{"toolchain", toolchainEntries(bundle)},
		{"plugins", plugins},
		{"binary", []entry{{path: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, src: bin}}},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		if len(l.entries) == 0 {
			continue // no plugins: no layer
		}
		layer, err := writeLayer(filepath.Join(dir, l.name), l.entries, v.Created)
		if err != nil {
			return nil, fmt.Errorf("image: %s layer of %s: %w", l.name, p, err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
			Created: v1.Time{Time: v.Created}, CreatedBy: "slipway image build: " + l.name, Comment: l.name}}); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Arch
	cf.Created = v1.Time{Time: v.Created}
	cf.Author = "slipway image build"
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", UID, UID),
		Entrypoint: []string{BinaryPath},
		Cmd:        []string{"--help"},
		WorkingDir: Home,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + Home,
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			"SLIPWAY_CACHE_DIR=" + ToolchainDir,
			"PULUMI_SKIP_UPDATE_CHECK=true",
		},
		Labels: labels,
	}
	if len(pluginsEnv) > 0 {
		cf.Config.Env = append(cf.Config.Env, PluginsEnv+"="+strings.Join(pluginsEnv, ","))
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	if len(labels) > 0 {
		img = mutate.Annotations(img, labels).(v1.Image)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	v.logf("%s: image %s", p, d)
	return img, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// goBuild builds Main for p with CGO_ENABLED=0 and -trimpath into dir.
func (v validated) goBuild(ctx context.Context, p Platform, dir string) (string, error) {
	out := filepath.Join(dir, "slipway")
	start := time.Now()
	v.logf("%s: go build %s (CGO_ENABLED=0) in %s", p, v.Main, v.ModuleDir)
	cmd := exec.CommandContext(ctx, v.Go, "build", "-trimpath", "-o", out, v.Main)
	cmd.Dir = v.ModuleDir
	cmd.Env = append(os.Environ(), "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0")
	cmd.WaitDelay = 10 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("image: building %s for %s (Options.Main, --main) failed: %w\n%s", v.Main, p, err, strings.TrimSpace(string(b)))
	}
	v.logf("%s: built in %s", p, time.Since(start).Round(time.Second))
	return out, nil
}

// buildFacts is what an image takes from its binary's build information.
type buildFacts struct {
	slipway, version, revision string
}

// slipwayBuild reads bin's build information and refuses a binary that is
// not built with Slipway, or with a Slipway version other than this one's
// (its toolchain directories would differ).
func slipwayBuild(bin string) (buildFacts, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return buildFacts{}, fmt.Errorf("image: %s has no Go build information (%v); build it with the go command", bin, err)
	}
	var f buildFacts
	if bi.Main.Path == slipwayModule {
		f.slipway = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == slipwayModule {
			f.slipway = d.Version
			if d.Replace != nil {
				f.slipway = "(devel)"
			}
		}
	}
	if f.slipway == "" {
		return f, fmt.Errorf("image: %s is not built with Slipway (%s is not in its build information); "+
			"the image runs the fleet, so give a binary whose main calls Slipway's cli.Main (--main, --binary)", bin, slipwayModule)
	}
	if own := ownSlipwayVersion(); own != "" && own != "(devel)" && f.slipway != "(devel)" && own != f.slipway {
		return f, fmt.Errorf("image: %s is built with Slipway %s, this builder is Slipway %s: the image's toolchain would not match "+
			"the binary's; run the image build of the binary itself (`<your binary> image build`)", bin, f.slipway, own)
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		f.version = v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			f.revision = s.Value
		}
	}
	return f, nil
}

// ownSlipwayVersion returns the version of Slipway this code is built from.
func ownSlipwayVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if bi.Main.Path == slipwayModule {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == slipwayModule {
			if d.Replace != nil {
				return "(devel)"
			}
			return d.Version
		}
	}
	return ""
}

// toolchainBundle returns the toolchain files of platform p.
func (v validated) toolchainBundle(ctx context.Context, p Platform) ([]toolchain.BundleFile, error) {
	if v.bundle != nil {
		return v.bundle(ctx, p.OS, p.Arch, v.Created)
	}
	opts := []toolchain.Option{toolchain.WithCacheDir(v.CacheDir), toolchain.WithLog(v.Log)}
	if v.Go != "go" {
		opts = append(opts, toolchain.WithGo(v.Go))
	}
	if p.OS != runtime.GOOS || p.Arch != runtime.GOARCH {
		v.logf("%s: cross-compiling the pulumi CLI and the Kubernetes provider when not built yet (first time: about 20 minutes on 2 cores)", p)
		opts = append(opts, toolchain.WithPlatform(p.OS, p.Arch))
	}
	files, err := toolchain.New(opts...).Bundle(ctx, v.Created)
	if err != nil {
		return nil, fmt.Errorf("image: the toolchain for %s: %w", p, err)
	}
	return files, nil
}

// checkFinds asks bin where it looks for its toolchain in the image (`bin
// toolchain status --json --cache-dir ToolchainDir`, which builds nothing)
// and refuses an image whose toolchain it would not find.
func checkFinds(ctx context.Context, bin string, bundle []toolchain.BundleFile) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "toolchain", "status", "--json", "--cache-dir", ToolchainDir)
	cmd.Env = append(os.Environ(), "SLIPWAY_CACHE_DIR="+ToolchainDir)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("image: asking %s where it looks for its toolchain (`toolchain status --json`): %w; "+
			"its main must call Slipway's cli.Main", bin, err)
	}
	dirs, err := statusDirs(out)
	if err != nil {
		return fmt.Errorf("image: %s toolchain status: %w", bin, err)
	}
	have := map[string]bool{}
	for _, f := range bundle {
		have[f.Path] = true
	}
	for _, tool := range []string{"pulumi", "pulumi-resource-kubernetes"} {
		d, ok := dirs[tool]
		if !ok {
			return fmt.Errorf("image: %s does not report where it looks for %s", bin, tool)
		}
		rel, inside := strings.CutPrefix(d, ToolchainDir+"/")
		if !inside || !have[rel+"/manifest.json"] {
			return fmt.Errorf("image: %s looks for %s in %s, which the image's toolchain (built by this builder's Slipway) does not hold; "+
				"build the image with the binary's own Slipway version (`<your binary> image build`)", bin, tool, d)
		}
	}
	return nil
}
