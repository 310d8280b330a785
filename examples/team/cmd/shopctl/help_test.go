package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/examples/team/shop"
)

// outcome is one run of a command line.
type outcome struct {
	code           int
	stdout, stderr string
}

// runner runs a command line with the given arguments.
type runner func(t *testing.T, args ...string) outcome

// inProcess runs shopctl's command line in the test process (cli.Run), as
// main.go configures it.
func inProcess(t *testing.T, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Run(ctx, args, &out, &errb, cli.Definitions(shop.Definition), cli.Name("shopctl"))
	return outcome{code: code, stdout: out.String(), stderr: errb.String()}
}

// binaryRunner runs a built binary.
func binaryRunner(path string) runner {
	return func(t *testing.T, args ...string) outcome {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := outcome{stdout: out.String(), stderr: errb.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return r
	}
}

// help is what a command's --help says about it.
type help struct {
	// name is the binary's name as the help shows it.
	name string
	// path is the command's path without the binary's name ("" for the root).
	path string
	// subcommands are the names under "Available Commands:".
	subcommands []string
	// flags map each flag the command accepts (its own and the global
	// ones, without dashes) to whether it takes a value.
	flags map[string]bool
	// shorthands map one-letter flags to their long names.
	shorthands map[string]string
}

var (
	usageRE   = regexp.MustCompile(`(?m)^Usage:\n\s+(\S+)((?: [a-z][a-z0-9-]*)*)`)
	commandRE = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}`)
	// "  -v, --verbose   ...", "      --env string   ...", "      --ttl slipway gc   ..." (cobra names
	// the value after a back-quoted word of the usage), "      --x[=v]   ...".
	flagRE = regexp.MustCompile(`^\s+(?:-([a-zA-Z]), )?--([a-z0-9][a-z0-9-]*)(\[=[^\]]*\])?( \S.*?)?\s{2,}`)
)

// helpOf runs `<path...> --help` and parses cobra's help text.
func helpOf(t *testing.T, run runner, path ...string) help {
	t.Helper()
	r := run(t, append(slices.Clone(path), "--help")...)
	require.Equal(t, 0, r.code, "%s --help: %s%s", strings.Join(path, " "), r.stdout, r.stderr)
	m := usageRE.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "no Usage line in the help of %q:\n%s", path, r.stdout)
	h := help{name: m[1], path: strings.TrimSpace(m[2]), flags: map[string]bool{}, shorthands: map[string]string{}}
	require.Equal(t, strings.Join(path, " "), h.path, "the help describes the command asked for")
	section := ""
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			section = line
			continue
		}
		switch section {
		case "Available Commands:":
			if m := commandRE.FindStringSubmatch(line); m != nil && m[1] != "help" && m[1] != "completion" {
				h.subcommands = append(h.subcommands, m[1])
			}
		case "Flags:", "Global Flags:":
			if m := flagRE.FindStringSubmatch(line); m != nil {
				h.flags[m[2]] = m[4] != "" // "--dir string" takes a value; "--json" and "--x[=v]" need none
				if m[1] != "" {
					h.shorthands[m[1]] = m[2]
				}
			}
		}
	}
	return h
}

// tree is every command of a command line by path.
type tree map[string]help

// treeOf walks the command line's help from the root.
func treeOf(t *testing.T, run runner) tree {
	t.Helper()
	out := tree{}
	var walk func(path []string)
	walk = func(path []string) {
		h := helpOf(t, run, path...)
		out[h.path] = h
		for _, c := range h.subcommands {
			walk(append(slices.Clone(path), c))
		}
	}
	walk(nil)
	return out
}

// paths lists the tree's command paths, sorted.
func (tr tree) paths() []string {
	var out []string
	for p := range tr {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// check walks args (a command line without the binary) through the tree
// as cobra does: the verbs (the words before any positional argument,
// wherever the flags are) must be commands, then every flag one the
// command found accepts (its own or a global one). It returns the
// command's path and a list of problems.
func (tr tree) check(args []string) (string, []string) {
	cur := tr[""]
	// flagAt reports whether args[i] is a flag and how many words it spans.
	flagAt := func(h help, i int) (name string, span int, known bool) {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, _, hasValue := strings.Cut(a[2:], "=")
			takes, ok := h.flags[name]
			if !ok {
				takes = true // cobra's assumption for a flag it does not know yet
			}
			if takes && !hasValue {
				return name, 2, ok
			}
			return name, 1, ok
		case strings.HasPrefix(a, "-") && len(a) == 2:
			long, ok := h.shorthands[a[1:]]
			if !ok || h.flags[long] {
				return a[1:], 2, ok
			}
			return long, 1, ok
		}
		return "", 0, false
	}
	var problems []string
	name := func(h help) string { return "`" + strings.TrimSpace("shopctl "+h.path) + "`" }
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		if _, span, _ := flagAt(cur, i); span > 0 {
			i += span - 1
			continue
		}
		if len(cur.subcommands) == 0 {
			break // a positional argument
		}
		if !slices.Contains(cur.subcommands, args[i]) {
			return cur.path, append(problems, name(cur)+" has no command "+args[i])
		}
		cur = tr[strings.TrimSpace(cur.path+" "+args[i])]
	}
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		f, span, known := flagAt(cur, i)
		if span == 0 {
			continue
		}
		if !known {
			problems = append(problems, name(cur)+" has no flag "+map[bool]string{true: "--", false: "-"}[len(args[i]) > 2]+f)
		}
		i += span - 1
	}
	return cur.path, problems
}
