// Package toolspec describes the tools package toolchain builds, for the
// commands under toolchain/internal that study their builds (breakdown).
// Package toolchain fills Tools and Modules when it is initialised, so a
// command imports it for that effect.
package toolspec

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Tool is one tool as toolchain builds it on first use.
type Tool struct {
	Name     string   // the tool's cache directory name (pulumi, kubernetes, ...)
	Module   string   // its module's directory under Modules' "modules/"
	Packages []string // the go build targets
	Flags    []string // the go build flags that decide how packages compile
}

// Tools are the tools the first run builds, in the order it builds them;
// nil until package toolchain is initialised.
var Tools []Tool

// Modules holds the tools' embedded modules under "modules/<Module>", each
// file with a ".txt" suffix.
var Modules fs.FS

// WriteModule writes the module "modules/<name>" of fsys to dst, stripping
// the ".txt" suffix of each file.
func WriteModule(fsys fs.FS, name, dst string) error {
	root := "modules/" + name
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		target := filepath.Join(dst, filepath.FromSlash(strings.TrimSuffix(rel, ".txt")))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
