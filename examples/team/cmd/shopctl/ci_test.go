package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// ciDir holds the CI examples that call shopctl.
const ciDir = "../../../ci"

// invocation is one shopctl command line in a CI file.
type invocation struct {
	where string   // file:line
	args  []string // without the binary
}

var (
	ghExprRE  = regexp.MustCompile(`\$\{\{[^}]*\}\}`)
	shopctlRE = regexp.MustCompile(`(\./bin/shopctl|\$\{?SHOPCTL\}?)\b`)
)

// ciInvocations returns every shopctl invocation of a CI file: the shell
// of each run, script, before_script and after_script, with $SHOPCTL (from
// the env or variables sections) expanded and GitHub expressions replaced
// by a placeholder value.
func ciInvocations(t *testing.T, path string) []invocation {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(b, &doc), "%s is not YAML", path)

	shopctl := ""
	var scripts []*yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				switch k.Value {
				case "run", "script", "before_script", "after_script":
					if v.Kind == yaml.ScalarNode {
						scripts = append(scripts, v)
					}
					for _, s := range v.Content {
						if s.Kind == yaml.ScalarNode {
							scripts = append(scripts, s)
						}
					}
				case "SHOPCTL":
					shopctl = v.Value
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	require.NotEmpty(t, scripts, "%s has no scripts", path)

	var out []invocation
	for _, s := range scripts {
		text := strings.ReplaceAll(s.Value, "\\\n", " ")
		for i, line := range strings.Split(text, "\n") {
			for _, loc := range shopctlRE.FindAllStringIndex(line, -1) {
				cmd := line[loc[0]:]
				if strings.Contains(line[loc[0]:loc[1]], "SHOPCTL") {
					require.NotEmpty(t, shopctl, "%s uses $SHOPCTL without defining it", path)
					cmd = shopctl + line[loc[1]:]
				}
				args := shellWords(ghExprRE.ReplaceAllString(cmd, "42"))
				require.NotEmpty(t, args)
				out = append(out, invocation{where: fmt.Sprintf("%s:%d", filepath.Base(path), s.Line+i), args: args[1:]})
			}
		}
	}
	return out
}

// shellWords splits one command off a shell line: words with their quotes
// removed, up to the first control or redirection operator or comment.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				end = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == ' ' || c == '\t':
			flush()
		case strings.IndexByte(";&|<>#)", c) >= 0 && !(c == '#' && inWord):
			flush()
			return words
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words
}

func TestShellWords(t *testing.T) {
	assert.Equal(t, []string{"./bin/shopctl", "gc", "--backend", "$SLIPWAY_BACKEND"}, shellWords(`./bin/shopctl gc --backend "$SLIPWAY_BACKEND"   # expired`))
	assert.Equal(t, []string{"x", "preview", "--format", "markdown"}, shellWords(`x preview --format markdown > summary.md; code=$?`))
	assert.Equal(t, []string{"x", "--a", "b c"}, shellWords(`x --a 'b c' || true`))
}

// Every shopctl command line in examples/ci names verbs shopctl has and
// flags those verbs accept, and cobra itself parses it (`... --help` exits
// 0): the CI examples cannot rot as the command line changes.
func TestCIExamples_UseRealVerbsAndFlags(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(ciDir, "*.yml"))
	require.NoError(t, err)
	require.Len(t, files, 2, "github-actions.yml and gitlab-ci.yml")
	tr := treeOf(t, inProcess)
	verbs := map[string]bool{}
	for _, f := range files {
		invs := ciInvocations(t, f)
		require.NotEmpty(t, invs, "%s calls shopctl", f)
		for _, inv := range invs {
			path, problems := tr.check(inv.args)
			assert.Empty(t, problems, "%s: shopctl %s", inv.where, strings.Join(inv.args, " "))
			assert.NotEmpty(t, path, "%s: shopctl %s names no verb", inv.where, strings.Join(inv.args, " "))
			verbs[path] = true
			if path == "destroy" || path == "gc" || path == "ephemeral destroy" {
				assert.Contains(t, inv.args, "--yes", "%s: a pipeline has no terminal to confirm `shopctl %s` on", inv.where, path)
			}
			if len(problems) == 0 {
				r := inProcess(t, append(slices.Clone(inv.args), "--help")...)
				assert.Equal(t, 0, r.code, "%s: cobra refuses `shopctl %s`: %s", inv.where, strings.Join(inv.args, " "), r.stderr)
			}
		}
	}
	// What the pipelines promise: policy check, preview, ephemeral create
	// and destroy, promotion, gc.
	for _, v := range []string{"policy check", "preview", "ephemeral create", "ephemeral destroy", "promote", "gc"} {
		assert.True(t, verbs[v], "the CI examples run `shopctl %s`", v)
	}
}

// The checker itself finds a verb or flag that does not exist.
func TestCIExamples_CheckerFindsRot(t *testing.T) {
	tr := treeOf(t, inProcess)
	_, problems := tr.check([]string{"--backend", "file:///x", "preview", "--env", "dev", "--no-such-flag"})
	assert.Equal(t, []string{"`shopctl preview` has no flag --no-such-flag"}, problems)
	_, problems = tr.check([]string{"ephemeral", "explode", "--env", "pr-1"})
	assert.Equal(t, []string{"`shopctl ephemeral` has no command explode"}, problems)
	path, problems := tr.check([]string{"--kubeconfig", "k", "ephemeral", "create", "--env", "pr-1", "--ttl", "1h"})
	assert.Empty(t, problems)
	assert.Equal(t, "ephemeral create", path)
}
