package toolchain

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
)

// TestGroupCommit_EngineTestsPassWithThePatch runs the engine's backend
// package tests — its own snapshot manager tests and the group commit tests
// the patch adds — against the patched snapshot.go, with the same module
// versions the pulumi build uses.
func TestGroupCommit_EngineTestsPassWithThePatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	g, _ := patchedPulumi(ctx, t)
	out := patchedTestsPass(ctx, t, g, "the engine's backend tests", []string{"github.com/pulumi/pulumi/pkg/v3/backend"},
		"TestSlipwayGroupCommit_MutationsWaitingDuringAWriteShareTheNextWrite",
		"TestSlipwayGroupCommit_OneMutationAtATimeIsOneWriteEach", "TestRecordingCreateSuccess", "TestWriteCheckpointOnceUnsafe")
	if testing.Verbose() {
		_, _ = os.Stdout.WriteString(gobuild.Tail(out, 5) + "\n")
	}
}

// patchedPulumi writes the pulumi build's module into a temporary
// directory and applies its patches with their tests (each original text
// must occur exactly once): the runner in that module and its directory.
func patchedPulumi(ctx context.Context, t *testing.T) (gobuild.Runner, string) {
	t.Helper()
	goBin, err := New().goCommand()
	require.NoError(t, err)
	src := t.TempDir()
	require.NoError(t, writeModule(pulumiTool.module, src))
	g := gobuild.Runner{Bin: goBin, Dir: src}
	require.NoError(t, gobuild.ApplyPatches(ctx, g, pulumiTool.patches, true))
	return g, src
}

// patchedTestsPass runs `go test -v args...` in the patched module g and
// requires that it passes, that each named test passed and that none
// failed; it returns the output. what names the tests in messages.
func patchedTestsPass(ctx context.Context, t *testing.T, g gobuild.Runner, what string, args []string, names ...string) string {
	t.Helper()
	out, err := g.Run(ctx, append([]string{"test", "-count=1", "-v"}, args...)...)
	require.NoError(t, err, "%s with the patch:\n%s", what, failures(out))
	for _, name := range names {
		assert.Regexp(t, regexp.MustCompile(`(?m)^\s*--- PASS: `+name+` `), out)
	}
	assert.NotRegexp(t, `(?m)^\s*--- FAIL`, out)
	return out
}

// failures returns the lines of go test -v output around each failure.
func failures(out string) string {
	lines := strings.Split(out, "\n")
	var b strings.Builder
	for i, l := range lines {
		if strings.Contains(l, "--- FAIL") || strings.Contains(l, "panic:") || strings.Contains(l, "Error Trace") {
			for _, c := range lines[max(0, i-3):min(len(lines), i+15)] {
				b.WriteString(c + "\n")
			}
		}
	}
	return b.String()
}

// TestFence_EngineTestsPassWithThePatch applies the fence patches to the
// pinned engine (each original text must occur exactly once) and runs the
// fence's own tests and the diy backend's lock tests against the patched
// package.
func TestFence_EngineTestsPassWithThePatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	g, src := patchedPulumi(ctx, t)
	for _, p := range fencePatches {
		b, err := os.ReadFile(src + "/third_party/" + strings.ReplaceAll(p.Module, "/", "_") + "/" + p.File)
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(string(b), p.New), "patch %s applied once", p.Name)
		assert.NotContains(t, string(b), p.Old, "patch %s", p.Name)
	}
	patchedTestsPass(ctx, t, g, "the engine's diy tests", []string{"-run", "TestSlipwayFence|Lock", "github.com/pulumi/pulumi/pkg/v3/backend/diy"},
		"TestSlipwayFence_WritesRefusedOnceTheDeadlinePassed", "TestSlipwayFence_UnsetMeansUnfenced", "TestSlipwayFence_LockRecordsTheToken")
}

// TestFence_PatchesArePartOfTheCacheKey: the fence patches, the source
// they add included, are in the pulumi build's cache key, so a changed
// fence rebuilds the CLI.
func TestFence_PatchesArePartOfTheCacheKey(t *testing.T) {
	r := New(WithCacheDir(t.TempDir()))
	a, err := r.toolDir(pulumiTool)
	require.NoError(t, err)
	changed := pulumiTool
	changed.patches = slices.Clone(pulumiTool.patches)
	for i, p := range changed.patches {
		if p.Name == "fence-bucket" {
			p.Add = map[string]string{"slipway_fence.go": fenceSource + "\n// changed\n"}
			changed.patches[i] = p
		}
	}
	b, err := r.toolDir(changed)
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
	assert.Equal(t, []string{"group-commit", "fence-bucket", "fence-lock-field", "fence-lock-token",
		"lazy-zxcvbn-frequency", "lazy-zxcvbn-matching-init", "lazy-zxcvbn-matching-use", "lazy-zxcvbn-matching-lists",
		"lazy-schema-metaschema-init", "lazy-schema-metaschema-use", "passphrase-key"},
		func() (names []string) {
			for _, p := range pulumiTool.patches {
				names = append(names, p.Name)
			}
			return names
		}())
}

// TestPassphraseKey_PatchedPackageKeepsItsBehaviour applies the pulumi
// build's patches and runs the passphrase manager's own tests with the
// patch's: the key SLIPWAY_PASSPHRASE_KEY carries is used for its salt and
// passphrase only and checked as a passphrase is (a wrong key is an
// incorrect passphrase), and every other value leaves the derivation as it
// was.
func TestPassphraseKey_PatchedPackageKeepsItsBehaviour(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	g, _ := patchedPulumi(ctx, t)
	patchedTestsPass(ctx, t, g, "the passphrase manager's tests", []string{"github.com/pulumi/pulumi/pkg/v3/secrets/passphrase"},
		"TestSlipwayPassphraseKey_UsedOnlyForItsSaltAndPassphraseAndChecked",
		"TestPassphraseManagerIncorrectPassphraseReturnsErrorCrypter", "TestPassphraseManagerCorrectPassphraseReturnsSecretsManager")
}
