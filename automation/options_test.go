package automation

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/optdeploy"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/policypacks"
)

// parseDir parses the non-test Go files of one package directory.
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var files []*ast.File
	fset := token.NewFileSet()
	for _, en := range entries {
		if en.IsDir() || !strings.HasSuffix(en.Name(), ".go") || strings.HasSuffix(en.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, en.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		files = append(files, f)
	}
	require.NotEmpty(t, files, "no Go files in %s", dir)
	return files
}

// exportedFuncsReturning lists the exported package-level funcs (not
// methods) whose results include one of the named local types, sorted.
func exportedFuncsReturning(files []*ast.File, types ...string) []string {
	var out []string
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() || fn.Type.Results == nil {
				continue
			}
			for _, r := range fn.Type.Results.List {
				if id, ok := r.Type.(*ast.Ident); ok && slices.Contains(types, id.Name) {
					out = append(out, fn.Name.Name)
					break
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// exportedTypes lists the exported type names a package declares.
func exportedTypes(files []*ast.File) []string {
	var out []string
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					out = append(out, ts.Name.Name)
				}
			}
		}
	}
	return out
}

// TestNoSharedOptionType: package automation has no option type shared by
// every verb (one that most verbs silently ignored), and no function returns
// one; each verb takes its own options package, so an option that makes no
// sense for a verb does not compile. The duplicate finding type and the
// last-known-good alias are gone too.
func TestNoSharedOptionType(t *testing.T) {
	files := parseDir(t, ".")
	removed := []string{"Option", "DriftOption", "DeployOption", "PolicyFinding", "LastKnownGood"}
	for _, name := range exportedTypes(files) {
		assert.NotContains(t, removed, name, "package automation declares the removed type %s", name)
	}
	assert.Empty(t, exportedFuncsReturning(files, "Option", "DriftOption", "DeployOption", "stack.OpConfig"),
		"package automation has exported funcs returning a shared option type")
	var funcs []string
	for _, f := range files {
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				funcs = append(funcs, fn.Name.Name)
			}
		}
	}
	for _, old := range []string{"WithOptions", "Remediate", "NoRollback", "RemoveStack", "PreviewOnly", "RefreshFirst",
		"SavePlan", "ApplyPlan", "Policies", "ExpectNoChanges", "OnEvent", "Message", "Parallel", "Retry"} {
		assert.NotContains(t, funcs, old, "package automation still has the option func %s", old)
	}
	// The engine options stay: they configure New, not a verb.
	assert.Contains(t, exportedFuncsReturning(files, "EngineOption"), "WithDir")
}

// TestVerbOptions_Surface lists each verb's option constructors. A change
// to a verb's options must change this list: the surface is deliberate.
func TestVerbOptions_Surface(t *testing.T) {
	want := map[string][]string{
		"optpreview": {"ExpectNoChanges", "Message", "OnEvent", "Parallel", "Plan", "Policies", "Retry"},
		"optup":      {"CommitTime", "ExpectNoChanges", "Message", "OnEvent", "Parallel", "Plan", "Policies", "Refresh", "Retry", "Revision"},
		"optrefresh": {"ExpectNoChanges", "Message", "OnEvent", "Parallel", "PreviewOnly", "Retry"},
		"optdestroy": {"Message", "OnEvent", "Parallel", "RemoveStack", "Retry"},
		"optdrift":   {"OnEvent", "Remediate", "Up"},
		"optdeploy":  {"NoRollback", "Up"},
	}
	dirs, err := filepath.Glob("opt*")
	require.NoError(t, err)
	var got []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			got = append(got, d)
		}
	}
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), got, "every opt* package is listed here")
	for pkg, funcs := range want {
		files := parseDir(t, pkg)
		assert.Equal(t, funcs, exportedFuncsReturning(files, "Option"), "option constructors of %s", pkg)
		types := exportedTypes(files)
		slices.Sort(types)
		assert.Equal(t, []string{"Option", "Options"}, types, "exported types of %s", pkg)
	}
}

// TestVerbOptions_Apply: each option lands in the operation's settings, and
// a later option overrides an earlier one.
func TestVerbOptions_Apply(t *testing.T) {
	ev := func(events.EngineEvent) {}
	p := stack.PreviewConfig([]optpreview.Option{optpreview.Parallel(2), optpreview.Parallel(3), optpreview.Message("m"),
		optpreview.Policies("a"), optpreview.Policies("b"), optpreview.ExpectNoChanges(), optpreview.OnEvent(ev),
		optpreview.Retry(4, time.Second), optpreview.Plan("plan.json")})
	assert.Equal(t, 3, p.Parallel)
	assert.Equal(t, "m", p.Message)
	assert.Equal(t, []string{"a", "b"}, p.PolicyDirs)
	assert.True(t, p.ExpectNoChanges)
	assert.NotNil(t, p.OnEvent)
	assert.Equal(t, 4, p.Attempts)
	assert.Equal(t, time.Second, p.Backoff)
	assert.Equal(t, "plan.json", p.SavePlan)
	assert.Empty(t, p.ApplyPlan, "a preview saves a plan, it never applies one")

	u := stack.UpConfig([]optup.Option{optup.Parallel(5), optup.Refresh(), optup.Plan("plan.json"), optup.Policies("a"),
		optup.ExpectNoChanges(), optup.Message("m"), optup.Retry(2, time.Millisecond), optup.OnEvent(ev), optup.Revision("abc123"),
		optup.CommitTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))})
	assert.NotNil(t, u.OnEvent)
	u.OnEvent = nil // funcs do not compare
	assert.Equal(t, stack.OpConfig{Parallel: 5, RefreshFirst: true, ApplyPlan: "plan.json", PolicyDirs: []string{"a"},
		ExpectNoChanges: true, Message: "m", Attempts: 2, Backoff: time.Millisecond, Revision: "abc123",
		CommitTime: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, u)
	assert.False(t, u.NoRecord, "only Deploy, Rollback and Promote leave recording to themselves")

	r := stack.RefreshConfig([]optrefresh.Option{optrefresh.PreviewOnly(), optrefresh.ExpectNoChanges(), optrefresh.Parallel(1), optrefresh.Message("m")})
	assert.Equal(t, stack.OpConfig{PreviewOnly: true, ExpectNoChanges: true, Parallel: 1, Message: "m"}, r)

	d := stack.DestroyConfig([]optdestroy.Option{optdestroy.RemoveStack(), optdestroy.Parallel(7), optdestroy.Retry(3, time.Second)})
	assert.Equal(t, stack.OpConfig{Remove: true, Parallel: 7, Attempts: 3, Backoff: time.Second}, d)

	var dr optdrift.Options
	for _, o := range []optdrift.Option{optdrift.Remediate(), optdrift.Up(optup.Parallel(2)), optdrift.Up(optup.Refresh())} {
		o.ApplyOption(&dr)
	}
	assert.True(t, dr.Remediate)
	assert.Len(t, dr.Up, 2)
	assert.Equal(t, stack.OpConfig{Parallel: 2, RefreshFirst: true}, stack.UpConfig(dr.Up))

	var dp optdeploy.Options
	for _, o := range []optdeploy.Option{optdeploy.NoRollback(), optdeploy.Up(optup.Policies("p"))} {
		o.ApplyOption(&dp)
	}
	assert.True(t, dp.NoRollback)
	assert.Equal(t, []string{"p"}, stack.UpConfig(dp.Up).PolicyDirs)
}

// TestPolicyBlockedError_NamesEachViolation: a PolicyBlockedError lists each blocking
// finding with the last line of its message and its resource. (How engine
// events become findings is tested in package outcome.)
func TestPolicyBlockedError_NamesEachViolation(t *testing.T) {
	const urn = "urn:pulumi:prod::slipway::kubernetes:apps/v1:Deployment::app"
	f := policypacks.Finding{Pack: "slipway", Policy: "no-privileged", URN: urn, Severity: policypacks.High,
		Enforcement: policypacks.Mandatory, Message: "Containers do not run privileged\ncontainer app is privileged"}
	pe := &PolicyBlockedError{Op: "up", Violations: []policypacks.Finding{f}}
	assert.Contains(t, pe.Error(), "no-privileged: container app is privileged ("+urn+")")
	assert.True(t, IsPolicyBlocked(&OpError{Op: "up", Stack: "dev", Err: pe}))
}

// pulumiOnlyResolver returns a resolver whose cache holds only the warm
// pulumi CLI (a link to the user's cache) and that cannot build anything:
// resolving the Kubernetes provider with it fails at once with ErrNoGo.
func pulumiOnlyResolver(t testing.TB) *toolchain.Resolver {
	t.Helper()
	warm := filepath.Join(toolchain.DefaultCacheDir(), "pulumi")
	if _, err := os.Stat(warm); err != nil {
		t.Skipf("no warm pulumi CLI in %s (resolve the toolchain once first): %v", warm, err)
	}
	cache := t.TempDir()
	require.NoError(t, os.Symlink(warm, filepath.Join(cache, "pulumi")))
	return toolchain.New(toolchain.WithCacheDir(cache), toolchain.WithoutPATH(), toolchain.WithLog(io.Discard),
		toolchain.WithGo(filepath.Join(t.TempDir(), "no-go")))
}

// TestNew_DoesNotResolveTheKubernetesProvider: New needs only the pulumi
// CLI; the Kubernetes provider is resolved by the first program that lists
// KubernetesPlugin, and a failure to resolve it refuses that program before
// any workspace is made.
func TestNew_DoesNotResolveTheKubernetesProvider(t *testing.T) {
	ctx := context.Background()
	r := pulumiOnlyResolver(t)
	home := t.TempDir()
	e, err := New(ctx, WithDir(t.TempDir()), WithPulumiHome(home), WithResolver(r), WithPassphrase(""))
	require.NoError(t, err, "New must not need the Kubernetes provider")
	plugins, _ := filepath.Glob(filepath.Join(home, "plugins", "resource-kubernetes-*"))
	assert.Empty(t, plugins, "the Kubernetes provider was installed into PULUMI_HOME: %v", plugins)
	cached, err := os.ReadDir(r.CacheDir())
	require.NoError(t, err)
	var names []string
	for _, c := range cached {
		names = append(names, c.Name())
	}
	assert.Equal(t, []string{"pulumi"}, names, "nothing but the pulumi CLI is in the cache")

	// A program that needs no plugin runs to the end without the provider.
	st, err := e.UpsertStack(ctx, Program{Project: "p", Stack: "bare", Run: func(ctx *pulumi.Context) error {
		ctx.Export("greeting", pulumi.String("hello"))
		return nil
	}})
	require.NoError(t, err)
	res, err := st.Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello", res.Outputs["greeting"])
	plugins, _ = filepath.Glob(filepath.Join(home, "plugins", "resource-kubernetes-*"))
	assert.Empty(t, plugins, "an up of a program without plugins installed the Kubernetes provider: %v", plugins)

	_, err = e.UpsertStack(ctx, Program{Project: "p", Stack: "dev", Run: func(*pulumi.Context) error { return nil },
		Plugins: []Plugin{KubernetesPlugin}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Kubernetes provider")
	_, serr := os.Stat(filepath.Join(e.Dir(), "workspaces", "p", "dev"))
	assert.True(t, errors.Is(serr, os.ErrNotExist), "no workspace was made for the refused program")
}
