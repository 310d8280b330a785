package toolchain

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLazyInit_PatchedPackagesKeepTheirBehaviour applies the pulumi build's
// patches (each original text must occur exactly once) and runs zxcvbn-go's
// own tests and the package schema's binding tests against the patched
// copies, with the patches' tests: nothing is loaded before its first use,
// which loads it and behaves as before.
func TestLazyInit_PatchedPackagesKeepTheirBehaviour(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	g, _ := patchedPulumi(ctx, t)
	patchedTestsPass(ctx, t, g, "zxcvbn-go's tests", []string{"github.com/ccojocar/zxcvbn-go/..."},
		"TestSlipwayLazy_ListsAreLoadedAtTheFirstCheck", "TestPasswordStrength", "TestDictionaryMatch")
	patchedTestsPass(ctx, t, g, "the schema package's tests", []string{"-run", "TestSlipwayLazy|TestBindSpec", "github.com/pulumi/pulumi/pkg/v3/codegen/schema"},
		"TestSlipwayLazy_MetaSchemaIsCompiledAtTheFirstValidation", "TestBindSpecReservedPackageNames")
}

// TestLazyInit_PulumiStartsWithoutThem reads the Go runtime's trace of the
// package initialisers of Slipway's pulumi (GODEBUG=inittrace=1): the
// patched packages allocate a small part of what they did at start
// (zxcvbn-go's frequency lists took 10 MB, its matchers 8 MB, the schema
// package 3.3 MB with its meta-schema; 48 bytes, 27 KB and 200 KB now).
func TestLazyInit_PulumiStartsWithoutThem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	p, err := New(WithoutPATH(), WithLog(os.Stderr)).Pulumi(ctx)
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, p.Bin(), "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "PULUMI_SKIP_UPDATE_CHECK=true")
	var trace bytes.Buffer
	cmd.Stderr = &trace
	require.NoError(t, cmd.Run())
	initLine := regexp.MustCompile(`(?m)^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes`)
	allocated := map[string]int{}
	for _, m := range initLine.FindAllStringSubmatch(trace.String(), -1) {
		allocated[m[1]], err = strconv.Atoi(m[2])
		require.NoError(t, err)
	}
	require.Contains(t, allocated, "github.com/pulumi/pulumi/sdk/v3/go/common/workspace", "the trace lists the initialisers:\n%s", trace.String())
	for _, pkg := range []string{"github.com/ccojocar/zxcvbn-go/frequency", "github.com/ccojocar/zxcvbn-go/matching",
		"github.com/pulumi/pulumi/pkg/v3/codegen/schema"} {
		// A package whose initialiser has nothing left to do is not listed.
		assert.Less(t, allocated[pkg], 256<<10, "%s allocates %d bytes at start", pkg, allocated[pkg])
	}
}
