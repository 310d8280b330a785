package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildThin builds testdata/thin: a team's thin binary with two
// definitions (shop first, then web) and a policy pack of its own.
func buildThin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "thin")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/thin").CombinedOutput()
	require.NoError(t, err, "building testdata/thin: %s", out)
	return bin
}

// run runs a binary with --dir dir.
func runBinary(t *testing.T, bin, dir string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--dir", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := outcome{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

var (
	helpCommandRE = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}`)
	helpFlagRE    = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)`)
)

// commandTree walks a binary's --help from the root and returns, per
// command path, its sorted flags.
func commandTree(t *testing.T, bin string) map[string][]string {
	t.Helper()
	tree := map[string][]string{}
	var walk func(path []string)
	walk = func(path []string) {
		r := runBinary(t, bin, t.TempDir(), append(slices.Clone(path), "--help")...)
		require.Equal(t, 0, r.code, "%v --help: %s", path, r.stderr)
		section := ""
		var subs, flags []string
		for _, l := range strings.Split(r.stdout, "\n") {
			switch {
			case strings.HasSuffix(l, ":") && !strings.HasPrefix(l, " "):
				section = l
			case section == "Available Commands:":
				if m := helpCommandRE.FindStringSubmatch(l); m != nil && m[1] != "help" && m[1] != "completion" {
					subs = append(subs, m[1])
				}
			case section == "Flags:" || section == "Global Flags:":
				if m := helpFlagRE.FindStringSubmatch(l); m != nil {
					flags = append(flags, m[1])
				}
			}
		}
		sort.Strings(flags)
		tree[strings.Join(path, " ")] = flags
		for _, s := range subs {
			walk(append(slices.Clone(path), s))
		}
	}
	walk(nil)
	return tree
}

// TestCLI_ThinBinaryHasEveryVerbAndFlag compares the --help trees of
// slipway and of a team's thin binary: the same commands, and every flag
// of slipway on the same command of the thin binary (which adds the
// shorthands of its other definition).
func TestCLI_ThinBinaryHasEveryVerbAndFlag(t *testing.T) {
	t.Parallel()
	thin := buildThin(t)
	want, got := commandTree(t, binary), commandTree(t, thin)
	require.Greater(t, len(want), 20, "slipway's command tree: %v", want)
	assert.ElementsMatch(t, keys(want), keys(got), "the same commands")
	for cmd, flags := range want {
		assert.Subset(t, got[cmd], flags, "flags of %q", cmd)
	}
	for _, cmd := range []string{"preview", "up", "drift", "policy check"} {
		assert.Contains(t, want[cmd], "format", cmd)
		assert.Contains(t, got[cmd], "log-level", "the shop's shorthand on %s", cmd)
		assert.Contains(t, got[cmd], "definition", cmd)
	}
	r := runBinary(t, thin, t.TempDir(), "policy", "check", "--env", "nosuch", "--definition", "nosuch")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `thin: --definition "nosuch" is not a definition of thin; use one of shop, web`)
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCLI_ThinBinaryRunsTheSelectedDefinition brings one environment of each
// of the thin binary's definitions up on the shared cluster: the default
// (shop, its own namespace), then web with --definition, and previews with
// the team's own policy pack, which the thin binary serves to the engine.
func TestCLI_ThinBinaryRunsTheSelectedDefinition(t *testing.T) {
	t.Parallel()
	thin := buildThin(t)
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig}
	t.Cleanup(func() {
		for _, a := range [][]string{{"destroy", "--yes", "--env", "tp-shop", "--kind", "dev", "--remove"}, {"destroy", "--yes", "--definition", "web", "--env", "tp-web", "--kind", "dev", "--remove"}} {
			if r := runBinary(t, thin, dir, append(a, k...)...); r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
				t.Errorf("cleanup %v: %s", a, r.stderr)
			}
		}
	})
	r := runBinary(t, thin, dir, append([]string{"up", "--env", "tp-shop", "--kind", "dev", "--log-level", "info", "--set", "COLOR=blue"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, namespaceExists(t, "shop-tp-shop"), "shop is the default definition")
	r = runBinary(t, thin, dir, append([]string{"up", "--definition", "web", "--env", "tp-web", "--kind", "dev", "--set", "GREETING=hi"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, namespaceExists(t, "slipway-tp-web"))
	assert.Equal(t, "nginx:1.27", image(t, "slipway-tp-web"))

	r = runBinary(t, thin, dir, append([]string{"up", "--definition", "web", "--env", "tp-web", "--kind", "dev", "--log-level", "info"}, k...)...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--log-level is a parameter of definition shop, not of web")

	r = runBinary(t, thin, dir, append([]string{"preview", "--env", "tp-shop", "--kind", "dev", "--log-level", "info", "--set", "COLOR=blue", "--policy", "team", "--format", "markdown"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "team-namespace-owner", "the engine ran the team's pack, served by the thin binary")
}

// TestCLI_FormatsOnRealRuns runs preview, up and drift on the shared
// cluster in every format with a secret planted: the exit code is the
// same in every format, each output is well formed and names the
// environment, and the secret is in none.
func TestCLI_FormatsOnRealRuns(t *testing.T) {
	t.Parallel()
	const canary = "canary-0b9e4d2a71"
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig, "--secret", "API_TOKEN=" + canary, "--set", "GREETING=hi"}
	destroyAfter(t, dir, "fm-dev")
	formats := []string{"text", "json", "markdown", "junit", "sarif", "github"}
	check := func(t *testing.T, verb, format string, r outcome) {
		t.Helper()
		assert.NotContains(t, r.stdout+r.stderr, canary, "%s --format %s", verb, format)
		if format != "github" || r.code != 0 { // annotations only for what is wrong
			require.NotEmpty(t, strings.TrimSpace(r.stdout), "%s --format %s: stderr %s", verb, format, r.stderr)
		}
		switch format {
		case "text", "markdown":
			assert.Contains(t, r.stdout, "fm-dev")
		case "json":
			env := envelopeOf(t, r)
			assert.Equal(t, "fm-dev", results(t, env)[0]["environment"])
		case "junit":
			var doc struct {
				XMLName xml.Name
				Suites  []struct {
					Name  string `xml:"name,attr"`
					Cases []struct {
						Name string `xml:"name,attr"`
					} `xml:"testcase"`
				} `xml:"testsuite"`
			}
			require.NoError(t, xml.Unmarshal([]byte(r.stdout), &doc), r.stdout)
			assert.Equal(t, "testsuites", doc.XMLName.Local)
			require.NotEmpty(t, doc.Suites)
			assert.Contains(t, r.stdout, "fm-dev")
		case "sarif":
			var doc struct {
				Version string `json:"version"`
				Runs    []any  `json:"runs"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
			assert.Equal(t, "2.1.0", doc.Version)
			assert.NotEmpty(t, doc.Runs)
		case "github":
			for _, l := range strings.Split(r.stdout, "\n") {
				assert.True(t, l == "" || strings.HasPrefix(l, "::"), "%s: not a workflow command: %q", verb, l)
			}
		}
	}
	codes := func(verb string, want int, args ...string) {
		t.Helper()
		for _, f := range formats {
			r := exe(t, dir, nil, append(append(append(strings.Fields(verb), "--env", "fm-dev", "--format", f), args...), k...)...)
			assert.Equal(t, want, r.code, "%s --format %s: %s", verb, f, r.stderr)
			check(t, verb, f, r)
		}
	}
	codes("preview", ExitChanges, "--expect-no-changes") // nothing exists yet
	codes("up", 0)
	codes("preview", 0, "--expect-no-changes")
	codes("drift", 0)
	editConfigMap(t, "slipway-fm-dev", "GREETING", "edited")
	codes("drift", ExitChanges)
	r := exe(t, dir, nil, append([]string{"drift", "--env", "fm-dev", "--format", "markdown"}, k...)...)
	assert.Contains(t, r.stdout, "GREETING", "the drifted key is in the summary")
	codes("policy check", 0) // advisory in dev
	require.Equal(t, 0, exe(t, dir, nil, append([]string{"up", "--env", "fm-dev"}, k...)...).code)
}

// TestCLI_PolicyCheckFindsWhatTheEngineBlocks: policy check, in seconds
// and without touching the cluster or a backend, blocks (exit 3) with the
// same policies on the same URNs as an up with --policy of the same
// program.
func TestCLI_PolicyCheckFindsWhatTheEngineBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--env", "pc-stg", "--kind", "staging", "--image", evil, "--replicas", "2", "--policy", "kubernetes,cost"}
	start := time.Now()
	r := exe(t, dir, nil, append([]string{"--json", "policy", "check"}, args...)...)
	took := time.Since(start)
	require.Equal(t, ExitPolicy, r.code, r.stderr)
	assert.Less(t, took, time.Minute, "policy check runs in seconds")
	item := results(t, envelopeOf(t, r))[0]
	var checked []string
	for _, f := range item["policy"].(map[string]any)["results"].([]any) {
		f := f.(map[string]any)
		if (f["enforcement"] == "mandatory" || f["enforcement"] == "remediate") && f["unverified"] != true {
			checked = append(checked, f["policy"].(string)+" "+f["urn"].(string))
		}
	}
	require.NotEmpty(t, checked)
	_, err := os.Stat(filepath.Join(dir, "state"))
	assert.True(t, os.IsNotExist(err), "policy check opens no backend")
	assert.False(t, namespaceExists(t, "slipway-pc-stg"))

	r = exe(t, dir, nil, append([]string{"--json", "up", "--kubeconfig", cluster.Kubeconfig}, args...)...)
	require.Equal(t, ExitPolicy, r.code, r.stderr)
	destroyAfter(t, dir, "pc-stg")
	res := results(t, envelopeOf(t, r))[0]["result"].(map[string]any)
	var engine []string
	for _, f := range res["policy"].([]any) {
		f := f.(map[string]any)
		if f["enforcement"] == "mandatory" || f["enforcement"] == "remediate" {
			engine = append(engine, f["policy"].(string)+" "+f["urn"].(string))
		}
	}
	slices.Sort(checked)
	slices.Sort(engine)
	assert.Equal(t, slices.Compact(engine), slices.Compact(checked), "the same blocking policies on the same resources")
	assert.False(t, namespaceExists(t, "slipway-pc-stg"), "the up was blocked")
}
