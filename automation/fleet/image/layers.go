package image

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// entry is one file or directory of a layer.
type entry struct {
	// path is slash-separated, without a leading slash.
	path string
	// mode holds the permission bits, fs.ModeDir for a directory and
	// fs.ModeSticky where it applies.
	mode     fs.FileMode
	uid, gid int
	// src is the host file to copy; data the contents when src is empty.
	src  string
	data []byte
}

// baseEntries are the base layer's files: the users, the CA bundle, the
// home, work and temporary directories.
func baseEntries(caFile string) []entry {
	dir := func(p string, mode fs.FileMode, owner int) entry {
		return entry{path: p, mode: fs.ModeDir | mode, uid: owner, gid: owner}
	}
	file := func(p, data string) entry { return entry{path: p, mode: 0o644, data: []byte(data)} }
	return []entry{
		file("etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, UID, Home)),
		file("etc/group", fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)),
		file("etc/nsswitch.conf", "hosts: files dns\n"),
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, src: caFile},
		dir("root", 0o700, 0),
		dir(strings.TrimPrefix(Home, "/"), 0o700, UID),
		// The fleet Deployments' HOME and --dir (an emptyDir there).
		dir("var/lib/slipway", 0o700, UID),
		dir("tmp", fs.ModeSticky|0o777, 0),
	}
}

// toolchainEntries places the toolchain bundle under ToolchainDir.
func toolchainEntries(files []toolchain.BundleFile) []entry {
	out := make([]entry, 0, len(files))
	for _, f := range files {
		out = append(out, entry{path: path.Join(strings.TrimPrefix(ToolchainDir, "/"), f.Path), mode: f.Mode.Perm(), src: f.Source, data: f.Data})
	}
	return out
}

// writeLayer writes entries, with their missing parent directories (root,
// 0755), as a sorted tar stream in which every file carries modTime and
// numeric owners, gzips it to base+".tar.gz" and returns it as an OCI layer.
func writeLayer(base string, entries []entry, modTime time.Time) (v1.Layer, error) {
	byPath := map[string]entry{}
	for _, e := range entries {
		if _, dup := byPath[e.path]; dup {
			return nil, fmt.Errorf("%s is given twice", e.path)
		}
		byPath[e.path] = e
	}
	for _, e := range entries {
		for d := path.Dir(e.path); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = entry{path: d, mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	name := base + ".tar.gz"
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		if err := writeEntry(tw, byPath[p], modTime); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(name, tarball.WithMediaType(types.OCILayer))
}

// writeEntry writes one entry's header and contents.
func writeEntry(tw *tar.Writer, e entry, modTime time.Time) error {
	h := &tar.Header{Name: e.path, Mode: int64(e.mode.Perm()), Uid: e.uid, Gid: e.gid, ModTime: modTime, Format: tar.FormatPAX}
	if e.mode&fs.ModeSticky != 0 {
		h.Mode |= 0o1000
	}
	if e.mode.IsDir() {
		h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
		return tw.WriteHeader(h)
	}
	h.Typeflag = tar.TypeReg
	if e.src == "" {
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	src, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", e.src)
	}
	h.Size = fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(tw, src)
	if err == nil && n != h.Size {
		err = fmt.Errorf("%s changed size while it was copied", e.src)
	}
	return err
}

// libraryDirs are where the host's dynamic loader finds libraries of arch
// (Debian's multiarch directories first).
func libraryDirs(arch string) []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
	return []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
}

// sharedLibraries returns the entries for the dynamic loader and the
// libraries that the dynamically linked binaries among bins need, taken
// from the host at the same paths (the C library of a binary built with
// cgo). Static binaries need none. A dynamically linked binary for another
// platform than the host's is refused: the host has no libraries for it.
func sharedLibraries(bins []string, p Platform) ([]entry, error) {
	host := p.OS == runtime.GOOS && p.Arch == runtime.GOARCH
	var out []entry
	seen := map[string]bool{}
	add := func(imagePath string) error {
		if seen[imagePath] {
			return nil
		}
		seen[imagePath] = true
		real, err := filepath.EvalSymlinks(imagePath)
		if err != nil {
			return err
		}
		fi, err := os.Stat(real)
		if err != nil {
			return err
		}
		out = append(out, entry{path: strings.TrimPrefix(imagePath, "/"), mode: fi.Mode().Perm() | 0o444, src: real})
		return nil
	}
	queue := append([]string(nil), bins...)
	for len(queue) > 0 {
		bin := queue[0]
		queue = queue[1:]
		interp, needed, err := dynamic(bin)
		if err != nil {
			return nil, fmt.Errorf("image: reading %s: %w", bin, err)
		}
		if interp == "" && len(needed) == 0 {
			continue
		}
		if !host {
			return nil, fmt.Errorf("image: %s is dynamically linked (it needs %s), and this %s/%s host has no C library for %s; "+
				"build it with CGO_ENABLED=0", bin, strings.Join(append([]string{interp}, needed...), ", "), runtime.GOOS, runtime.GOARCH, p)
		}
		if interp != "" {
			if err := add(interp); err != nil {
				return nil, fmt.Errorf("image: the dynamic loader %s that %s needs: %w", interp, bin, err)
			}
		}
		for _, lib := range needed {
			found := ""
			for _, d := range libraryDirs(p.Arch) {
				if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
					found = filepath.Join(d, lib)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("image: %s needs the library %s, which is in none of %s; build it with CGO_ENABLED=0",
					bin, lib, strings.Join(libraryDirs(p.Arch), ", "))
			}
			if !seen[found] {
				if err := add(found); err != nil {
					return nil, err
				}
				queue = append(queue, found)
			}
		}
	}
	return out, nil
}

// dynamic returns the program interpreter and the needed libraries of an
// ELF file (none for a static binary).
func dynamic(file string) (interp string, needed []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(prog.Open())
			if err != nil {
				return "", nil, err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, err = f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", nil, err
	}
	return interp, needed, nil
}

// statusDirs reads the directory of each tool from a `toolchain status
// --json` envelope.
func statusDirs(out []byte) (map[string]string, error) {
	var env struct {
		Results []struct {
			Tools []toolchain.Status `json:"tools"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &env); err != nil {
		return nil, fmt.Errorf("its --json output does not parse: %w", err)
	}
	dirs := map[string]string{}
	for _, r := range env.Results {
		for _, s := range r.Tools {
			dirs[s.Tool] = filepath.ToSlash(s.Dir)
		}
	}
	return dirs, nil
}
