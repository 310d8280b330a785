package gobuild

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A Patch replaces one exact piece of a dependency's source file in a tool's
// build, in a copy of the dependency the build is pointed at (ApplyPatches):
// the module cache is never modified. A patch whose original text is not
// found exactly once fails the build, so a version bump cannot silently drop
// it.
type Patch struct {
	// Name is a short name, for messages.
	Name string
	// Module is the module path of the dependency.
	Module string
	// File is the file inside the module, slash-separated.
	File string
	// Old is the text replaced; it must occur exactly once.
	Old string
	// New is the replacement.
	New string
	// Add are Go source files added to the patched package (name →
	// source), always: code the replacement calls.
	Add map[string]string
	// Tests are Go test files added to the patched package (name → source)
	// when the patches are applied with tests, so the engine's own tests
	// and ours run against the patched file.
	Tests map[string]string
}

// Apply returns src with the patch applied, or an error naming the patch when
// its original text does not occur exactly once.
func (p Patch) Apply(src string) (string, error) {
	if n := strings.Count(src, p.Old); n != 1 {
		return "", fmt.Errorf("toolchain: patch %s: %s of %s has the text to replace %d times, want once; "+
			"update the patch for this version", p.Name, p.File, p.Module, n)
	}
	return strings.Replace(src, p.Old, p.New, 1), nil
}

// ApplyPatches gives the module in g.Dir a patched copy of each module the
// patches touch: the module's files are hard-linked (copied across file
// systems) from the module cache into g.Dir/third_party, the patched files
// are written over their links, and a replace directive points the build at
// the copy. (The go command refuses -overlay for files in the module cache.)
// With withTests, the patches' test files are added to their packages too.
func ApplyPatches(ctx context.Context, g Runner, patches []Patch, withTests bool) error {
	copies := map[string]string{} // module path → copy directory
	for _, p := range patches {
		dst, ok := copies[p.Module]
		if !ok {
			modDir, err := g.ModuleDir(ctx, p.Module)
			if err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.Name, err)
			}
			dst = filepath.Join(g.Dir, "third_party", strings.ReplaceAll(p.Module, "/", "_"))
			if err := linkTree(modDir, dst); err != nil {
				return fmt.Errorf("toolchain: patch %s: copying %s: %w", p.Name, p.Module, err)
			}
			if _, err := g.Run(ctx, "mod", "edit", "-replace", p.Module+"=./"+filepath.ToSlash(mustRel(g.Dir, dst))); err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.Name, err)
			}
			copies[p.Module] = dst
		}
		target := filepath.Join(dst, filepath.FromSlash(p.File))
		b, err := os.ReadFile(target)
		if err != nil {
			return fmt.Errorf("toolchain: patch %s: %w", p.Name, err)
		}
		patched, err := p.Apply(string(b))
		if err != nil {
			return err
		}
		if err := replaceFile(target, []byte(patched)); err != nil {
			return fmt.Errorf("toolchain: patch %s: %w", p.Name, err)
		}
		for name, src := range p.Add {
			if err := replaceFile(filepath.Join(filepath.Dir(target), name), []byte(src)); err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.Name, err)
			}
		}
		if !withTests {
			continue
		}
		for name, src := range p.Tests {
			if err := replaceFile(filepath.Join(filepath.Dir(target), name), []byte(src)); err != nil {
				return fmt.Errorf("toolchain: patch %s: %w", p.Name, err)
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
		return CopyFile(p, target, 0o644)
	})
}

func mustRel(base, p string) string {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		panic(err) // both paths are absolute and p is under base
	}
	return rel
}

// PatchNames lists the patches' names and files, for messages.
func PatchNames(patches []Patch) string {
	names := make([]string, len(patches))
	for i, p := range patches {
		names[i] = p.Name + " (" + p.Module + "/" + p.File + ")"
	}
	return strings.Join(names, ", ")
}
