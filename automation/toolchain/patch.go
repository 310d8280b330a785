package toolchain

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A patch replaces one exact piece of a dependency's source file in a tool's
// build, in a copy of the dependency the build is pointed at (applyPatches):
// the module cache is never modified. A patch whose original text is not found exactly once fails the
// build, so a version bump cannot silently drop it.
type patch struct {
	name   string // short name, for messages and the overlay file
	module string // module path of the dependency
	file   string // file inside the module, slash-separated
	old    string // the text replaced; must occur exactly once
	new    string // the replacement
	// add are Go source files added to the patched package (name →
	// source), always: code the replacement calls.
	add map[string]string
	// tests are Go test files added to the patched package (name → source),
	// so the engine's own tests and ours run against the patched file.
	tests map[string]string
}

// apply returns src with the patch applied, or an error naming the patch when
// its original text does not occur exactly once.
func (p patch) apply(src string) (string, error) {
	if n := strings.Count(src, p.old); n != 1 {
		return "", fmt.Errorf("toolchain: patch %s: %s of %s has the text to replace %d times, want once; "+
			"update the patch for this version", p.name, p.file, p.module, n)
	}
	return strings.Replace(src, p.old, p.new, 1), nil
}

// applyPatches gives the module in g.dir a patched copy of each module the
// patches touch: the module's files are hard-linked (copied across file
// systems) from the module cache into g.dir/third_party, the patched files
// are written over their links, and a replace directive points the build at
// the copy. (The go command refuses -overlay for files in the module cache.)
// With withTests, the patches' test files are added to their packages too.
func applyPatches(ctx context.Context, g goRunner, patches []patch, withTests bool) error {
	copies := map[string]string{} // module path → copy directory
	for _, p := range patches {
		dst, ok := copies[p.module]
		if !ok {
			modDir, err := g.moduleDir(ctx, p.module)
			if err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.name, err)
			}
			dst = filepath.Join(g.dir, "third_party", strings.ReplaceAll(p.module, "/", "_"))
			if err := linkTree(modDir, dst); err != nil {
				return fmt.Errorf("toolchain: patch %s: copying %s: %w", p.name, p.module, err)
			}
			if _, err := g.run(ctx, "mod", "edit", "-replace", p.module+"=./"+filepath.ToSlash(mustRel(g.dir, dst))); err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.name, err)
			}
			copies[p.module] = dst
		}
		target := filepath.Join(dst, filepath.FromSlash(p.file))
		b, err := os.ReadFile(target)
		if err != nil {
			return fmt.Errorf("toolchain: patch %s: %w", p.name, err)
		}
		patched, err := p.apply(string(b))
		if err != nil {
			return err
		}
		if err := replaceFile(target, []byte(patched)); err != nil {
			return fmt.Errorf("toolchain: patch %s: %w", p.name, err)
		}
		for name, src := range p.add {
			if err := replaceFile(filepath.Join(filepath.Dir(target), name), []byte(src)); err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.name, err)
			}
		}
		if !withTests {
			continue
		}
		for name, src := range p.tests {
			if err := replaceFile(filepath.Join(filepath.Dir(target), name), []byte(src)); err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.name, err)
			}
		}
	}
	return nil
}

// replaceFile writes b to path, removing what was there first (a hard link
// into the module cache must never be written through).
func replaceFile(path string, b []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// linkTree recreates the tree at src under dst with writable directories and
// hard links to src's files (copies where linking fails).
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, mustRel(src, p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if err := os.Link(p, target); err == nil {
			return nil
		}
		return copyFile(p, target, 0o644)
	})
}

func mustRel(base, p string) string {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		panic(err) // both paths are absolute and p is under base
	}
	return rel
}

// patchNames lists the patches' names and files, for messages.
func patchNames(patches []patch) string {
	names := make([]string, len(patches))
	for i, p := range patches {
		names[i] = p.name + " (" + p.module + "/" + p.file + ")"
	}
	return strings.Join(names, ", ")
}
