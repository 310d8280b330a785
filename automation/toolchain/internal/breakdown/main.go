// Command breakdown counts the packages the first run compiles: Slipway's
// own command (what `go run ./cmd/slipway` builds) and each tool the
// toolchain builds from its embedded module, and how many of them the Go
// build cache can share between builds.
//
// A package is compiled once for all builds that need it at the same
// version, with the same compile flags and the same dependencies (each
// compiled the same way); every other combination is a compile of its own.
// The command reproduces that rule from `go list -deps`, so it compiles
// nothing; it downloads the modules it lists. The pulumi tool's patches are
// not applied: they change a handful of packages only pulumi uses.
//
//	go run ./automation/toolchain/internal/breakdown [-cli ./cmd/slipway] [-modules 20]
//
// It prints Markdown: per build, its packages, how many another build
// shares, and the modules that are compiled more than once, with the
// versions or flags that keep them apart.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	_ "github.com/slipwayhq/slipway/automation/toolchain" // fills toolspec
	"github.com/slipwayhq/slipway/automation/toolchain/internal/toolspec"
)

func main() {
	cli := flag.String("cli", "./cmd/slipway", "the main module's command the first run builds (in the current directory's module)")
	top := flag.Int("modules", 20, "how many modules compiled more than once to list")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *cli, *top); err != nil {
		fmt.Fprintln(os.Stderr, "breakdown:", err)
		os.Exit(1)
	}
}

// build is one go build of the first run.
type build struct {
	name  string
	dir   string   // the module's directory
	pkgs  []string // targets
	flags []string // compile flags (ldflags dropped: they only change the link)
}

// pkg is one package as a build compiles it.
type pkg struct {
	path, module, version string
	key                   string // equal keys compile once
}

func run(ctx context.Context, w io.Writer, cli string, top int) error {
	tmp, err := os.MkdirTemp("", "slipway-breakdown-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	builds := []build{{name: "slipway (" + cli + ")", dir: ".", pkgs: []string{cli}}}
	for _, t := range toolspec.Tools {
		dir := filepath.Join(tmp, t.Name)
		if err := toolspec.WriteModule(toolspec.Modules, t.Module, dir); err != nil {
			return err
		}
		builds = append(builds, build{name: t.Name, dir: dir, pkgs: t.Packages, flags: compileFlags(t.Flags)})
	}
	lists := make([][]pkg, len(builds))
	for i, b := range builds {
		if lists[i], err = list(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
	}
	report(w, builds, lists, top)
	return nil
}

// compileFlags drops the flags that only change the link.
func compileFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if !strings.HasPrefix(f, "-ldflags") {
			out = append(out, f)
		}
	}
	return out
}

// list returns the packages b compiles, in dependency order, each keyed by
// what decides whether a compile is shared.
func list(ctx context.Context, b build) ([]pkg, error) {
	args := append([]string{"list", "-e", "-deps", "-f",
		"{{.ImportPath}}\t{{with .Module}}{{.Path}}\t{{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{else}}std\t{{end}}\t{{.Dir}}\t{{join .Imports \" \"}}"}, b.flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, b.pkgs...)...)
	cmd.Dir = b.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	flags := strings.Join(b.flags, " ")
	keys := map[string]string{}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			continue
		}
		p := pkg{path: f[0], module: f[1], version: f[2]}
		where := p.module + "@" + p.version
		if p.version == "" && p.module != "std" {
			where = f[3] // the main module: its directory
		}
		var deps []string
		for _, imp := range strings.Fields(f[4]) {
			if k, ok := keys[imp]; ok {
				deps = append(deps, k)
			} else if imp != "C" && imp != "unsafe" {
				return nil, fmt.Errorf("%s imports %s, listed after it", p.path, imp)
			}
		}
		sort.Strings(deps)
		h := sha256.Sum256([]byte(p.path + "\n" + where + "\n" + flags + "\n" + strings.Join(deps, ",")))
		p.key = hex.EncodeToString(h[:8])
		keys[p.path] = p.key
		pkgs = append(pkgs, p)
	}
	return pkgs, sc.Err()
}

func report(w io.Writer, builds []build, lists [][]pkg, top int) {
	in := map[string]int{} // key → builds that compile it
	for _, l := range lists {
		for _, p := range l {
			in[p.key]++
		}
	}
	fmt.Fprintln(w, "| build | flags | packages | shared with another build | only in this build |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	total := 0
	for i, b := range builds {
		shared := 0
		for _, p := range lists[i] {
			if in[p.key] > 1 {
				shared++
			}
		}
		total += len(lists[i])
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d |\n", b.name, strings.Join(b.flags, " "), len(lists[i]), shared, len(lists[i])-shared)
	}
	fmt.Fprintf(w, "| **all** | | %d | | **%d compiled** |\n\n", total, len(in))

	// Modules compiled more than once: for each module, the distinct ways
	// its packages are compiled, and by which builds.
	type way struct {
		version string
		builds  []string
		keys    map[string]bool
	}
	mods := map[string]map[string]*way{} // module → version+flags → way
	for i, b := range builds {
		for _, p := range lists[i] {
			ways := mods[p.module]
			if ways == nil {
				ways = map[string]*way{}
				mods[p.module] = ways
			}
			id := p.version + " " + strings.Join(b.flags, " ")
			wy := ways[id]
			if wy == nil {
				wy = &way{version: strings.TrimSpace(id), keys: map[string]bool{}}
				ways[id] = wy
			}
			if !slices.Contains(wy.builds, b.name) {
				wy.builds = append(wy.builds, b.name)
			}
			wy.keys[p.key] = true
		}
	}
	type row struct {
		module string
		extra  int
		ways   []string
	}
	var rows []row
	for m, ways := range mods {
		seen := map[string]bool{}
		paths := map[string]bool{}
		var desc []string
		for _, wy := range ways {
			for k := range wy.keys {
				seen[k] = true
			}
			desc = append(desc, fmt.Sprintf("%s (%s: %d)", wy.version, strings.Join(wy.builds, ", "), len(wy.keys)))
		}
		for _, l := range lists {
			for _, p := range l {
				if p.module == m {
					paths[p.path] = true
				}
			}
		}
		if extra := len(seen) - len(paths); extra > 0 {
			sort.Strings(desc)
			rows = append(rows, row{m, extra, desc})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].extra > rows[j].extra || rows[i].extra == rows[j].extra && rows[i].module < rows[j].module
	})
	extra := 0
	for _, r := range rows {
		extra += r.extra
	}
	fmt.Fprintf(w, "%d compiles repeat a package another build also compiles (another version, other flags or other dependencies), in %d modules; the first %d:\n\n",
		extra, len(rows), min(top, len(rows)))
	fmt.Fprintln(w, "| module | repeated compiles | compiled as (version flags (builds: distinct compiles)) |")
	fmt.Fprintln(w, "|---|---:|---|")
	for _, r := range rows[:min(top, len(rows))] {
		fmt.Fprintf(w, "| %s | %d | %s |\n", r.module, r.extra, strings.Join(r.ways, "; "))
	}
}
