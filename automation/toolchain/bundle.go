package toolchain

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// WithPlatform makes the resolver build its tools for another platform
// (GOOS and GOARCH, cross-compiled with CGO_ENABLED=0) into their own cache
// directories, for Bundle: an image for that platform. Such a resolver only
// bundles; every method that would run a tool (Pulumi, KubernetesProvider,
// ControlPlane, Kubectl, All) refuses. The host's own platform is the default.
func WithPlatform(goos, goarch string) Option {
	return func(r *Resolver) { r.goos, r.goarch = goos, goarch }
}

// target returns the platform the resolver builds for.
func (r *Resolver) target() (goos, goarch string) {
	if r.goos == "" && r.goarch == "" {
		return runtime.GOOS, runtime.GOARCH
	}
	return r.goos, r.goarch
}

// foreign reports whether the resolver builds for a platform other than
// the host's.
func (r *Resolver) foreign() bool {
	goos, goarch := r.target()
	return goos != runtime.GOOS || goarch != runtime.GOARCH
}

// targetEnv is the go command's extra environment: none for the host,
// GOOS, GOARCH and CGO_ENABLED=0 for another platform.
func (r *Resolver) targetEnv() []string {
	if !r.foreign() {
		return nil
	}
	goos, goarch := r.target()
	return []string{"GOOS=" + goos, "GOARCH=" + goarch, "CGO_ENABLED=0"}
}

// hostOnly refuses to hand out a tool built for another platform.
func (r *Resolver) hostOnly(what string) error {
	if !r.foreign() {
		return nil
	}
	goos, goarch := r.target()
	return fmt.Errorf("toolchain: %s: this resolver builds for %s/%s (WithPlatform), whose binaries cannot run on this %s/%s host; "+
		"use a resolver without WithPlatform, or only Bundle", what, goos, goarch, runtime.GOOS, runtime.GOARCH)
}

// BundleFile is one file of a toolchain cache laid out for another
// machine, such as a container image (see Resolver.Bundle).
type BundleFile struct {
	// Path is the file's slash-separated path relative to the cache
	// directory.
	Path string
	// Source is the file to copy (a built binary), or empty when Data
	// holds the contents.
	Source string
	// Data is the contents when Source is empty.
	Data []byte
	// Mode is the file's permission bits.
	Mode fs.FileMode
}

// Bundle builds, when missing, the tools a runner's engine runs — the
// pulumi CLI (Slipway's patched build) and the Kubernetes provider plugin —
// for the resolver's platform (WithPlatform), and returns the files of a
// cache directory that holds them: their binaries and manifests that
// vouch for them with modification time modTime (which the copies must
// carry, to the second). A binary of the same Slipway version, pointed at
// that directory (SLIPWAY_CACHE_DIR or WithCacheDir), finds the tools
// there and never builds; a different version computes other directories
// and would build (see CacheEntries to check). The pulumi CLI on PATH and
// WithPulumi play no part: the bundle always holds Slipway's build.
func (r *Resolver) Bundle(ctx context.Context, modTime time.Time) ([]BundleFile, error) {
	modTime = modTime.Truncate(time.Second)
	var files []BundleFile
	for _, t := range []tool{pulumiTool, kubernetesProviderTool} {
		dir, err := r.ensure(ctx, t)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(r.cacheDir, dir)
		if err != nil {
			return nil, err
		}
		rel = filepath.ToSlash(rel)
		m := manifest{Tool: t.name, Version: t.version, Built: modTime.UTC(), Files: map[string]manifestFile{}}
		for _, name := range t.outputs {
			bin := filepath.Join(dir, "bin", name)
			mf, err := describe(bin)
			if err != nil {
				return nil, fmt.Errorf("toolchain: bundling %s: %w", t.name, err)
			}
			mf.ModTime = modTime.UnixNano()
			m.Files[name] = mf
			files = append(files, BundleFile{Path: path.Join(rel, "bin", name), Source: bin, Mode: 0o755})
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, BundleFile{Path: path.Join(rel, "manifest.json"), Data: b, Mode: 0o644})
	}
	return files, nil
}

// CacheEntries returns the directories, relative to the cache directory
// and slash-separated, that this binary's resolver looks in for the tools
// Bundle holds, keyed by tool name ("pulumi", "pulumi-resource-kubernetes").
// An image builder compares them with what another binary reports
// (`toolchain status --json`) to make sure that binary finds the bundle.
func (r *Resolver) CacheEntries() (map[string]string, error) {
	out := map[string]string{}
	for _, t := range []tool{pulumiTool, kubernetesProviderTool} {
		dir, err := r.toolDir(t)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(r.cacheDir, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("toolchain: %s is outside the cache %s", dir, r.cacheDir)
		}
		out[t.name] = filepath.ToSlash(rel)
	}
	return out, nil
}
