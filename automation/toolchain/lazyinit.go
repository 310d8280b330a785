package toolchain

import "github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"

// lazyInitPatches move the pulumi CLI's two costliest package initialisers
// to their first use. Every pulumi process paid them at start — ≈ 115 ms
// of the ≈ 230 ms its package initialisers take on this machine
// (GODEBUG=inittrace=1), in a no-op preview of ≈ 0.7 s — for code a
// preview, an update or a destroy never runs:
//   - zxcvbn-go's frequency lists and dictionary matchers (≈ 83 ms), which
//     `pulumi config set` and `esc env set` use to warn that a plain value
//     looks like a secret;
//   - the package schema's compiled meta-schema (≈ 32 ms), which only
//     validating a package schema uses.
//
// What each computes, and when it is first needed, is unchanged: the first
// call that needs the data loads it, once (sync.Once), before using it.
// TestLazyInit_PatchedPackagesKeepTheirBehaviour runs the packages' own
// tests against the patched copies.
var lazyInitPatches = []gobuild.Patch{
	{
		Name:   "lazy-zxcvbn-frequency",
		Module: "github.com/ccojocar/zxcvbn-go",
		File:   "frequency/frequency.go",
		Old:    "var Lists = make(map[string]List)\n\nfunc init() {\n",
		New: "var Lists = make(map[string]List)\n\n" +
			"// Load fills Lists, once (Slipway: at first use, not at init; see\n" +
			"// slipway automation/toolchain/lazyinit.go).\n" +
			"func Load() { loadOnce.Do(load) }\n\n" +
			"func load() {\n",
		Add:   map[string]string{"slipway_lazy.go": "package frequency\n\nimport \"sync\"\n\nvar loadOnce sync.Once\n"},
		Tests: map[string]string{"slipway_lazy_test.go": lazyFrequencyTest},
	},
	{
		Name:   "lazy-zxcvbn-matching-init",
		Module: "github.com/ccojocar/zxcvbn-go",
		File:   "matching/matching.go",
		Old:    "func init() {\n\tloadFrequencyList()\n}\n",
		New:    "// Slipway: the matchers are built at first use (Omnimatch), not at init.\n",
		Add:    map[string]string{"slipway_lazy.go": "package matching\n\nimport \"sync\"\n\nvar loadOnce sync.Once\n"},
		// The package's own tests read the matchers directly: they run
		// after the load Omnimatch does first.
		Tests: map[string]string{"slipway_lazy_test.go": lazyMatchingTestMain},
	},
	{
		Name:   "lazy-zxcvbn-matching-use",
		Module: "github.com/ccojocar/zxcvbn-go",
		File:   "matching/matching.go",
		Old:    "\tif dictionaryMatchers == nil || adjacencyGraphs == nil {\n\t\tloadFrequencyList()\n\t}\n",
		New:    "\tloadOnce.Do(loadFrequencyList)\n",
	},
	{
		Name:   "lazy-zxcvbn-matching-lists",
		Module: "github.com/ccojocar/zxcvbn-go",
		File:   "matching/matching.go",
		Old:    "func loadFrequencyList() {\n\tfor n, list := range frequency.Lists {\n",
		New:    "func loadFrequencyList() {\n\tfrequency.Load()\n\tfor n, list := range frequency.Lists {\n",
	},
	{
		Name:   "lazy-schema-metaschema-init",
		Module: "github.com/pulumi/pulumi/pkg/v3",
		File:   "codegen/schema/bind.go",
		Old:    "var MetaSchema *jsonschema.Schema\n\nfunc init() {\n",
		New: "var MetaSchema *jsonschema.Schema\n\n" +
			"// Slipway: MetaSchema is compiled at its first use (validateSpec), not at\n" +
			"// init; see slipway automation/toolchain/lazyinit.go.\n" +
			"func compileMetaSchema() {\n",
		Add:   map[string]string{"slipway_lazy.go": "package schema\n\nimport \"sync\"\n\nvar metaSchemaOnce sync.Once\n"},
		Tests: map[string]string{"slipway_lazy_test.go": lazySchemaTest},
	},
	{
		Name:   "lazy-schema-metaschema-use",
		Module: "github.com/pulumi/pulumi/pkg/v3",
		File:   "codegen/schema/bind.go",
		Old:    "\tif err = MetaSchema.Validate(raw); err == nil {\n",
		New:    "\tmetaSchemaOnce.Do(compileMetaSchema)\n\tif err = MetaSchema.Validate(raw); err == nil {\n",
	},
}

// lazyMatchingTestMain loads the matchers before zxcvbn-go's matching tests,
// which read them directly, as they did after init.
const lazyMatchingTestMain = `package matching

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	loadOnce.Do(loadFrequencyList)
	os.Exit(m.Run())
}
`

// lazyFrequencyTest: nothing is loaded before the first strength check,
// which loads every list and scores as before.
const lazyFrequencyTest = `package frequency_test

import (
	"testing"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
	"github.com/ccojocar/zxcvbn-go/frequency"
)

func TestSlipwayLazy_ListsAreLoadedAtTheFirstCheck(t *testing.T) {
	if n := len(frequency.Lists); n != 0 {
		t.Fatalf("%d frequency lists loaded before any use, want 0", n)
	}
	weak := zxcvbn.PasswordStrength("password", nil)
	if n := len(frequency.Lists); n != 5 {
		t.Fatalf("%d frequency lists after the first check, want 5", n)
	}
	strong := zxcvbn.PasswordStrength("vX9#qLr2!mT7zP0w", nil)
	if weak.Score != 0 || strong.Score != 4 {
		t.Fatalf("scores %d and %d, want 0 for a dictionary word and 4 for a random string", weak.Score, strong.Score)
	}
}
`

// lazySchemaTest: the meta-schema is compiled at the first validation,
// which still rejects a spec the meta-schema forbids.
const lazySchemaTest = `package schema

import "testing"

func TestSlipwayLazy_MetaSchemaIsCompiledAtTheFirstValidation(t *testing.T) {
	if MetaSchema != nil {
		t.Fatal("the meta-schema was compiled before any validation")
	}
	diags, err := validateSpec(PackageSpec{Name: "Not A Valid Name!"})
	if err != nil {
		t.Fatal(err)
	}
	if MetaSchema == nil {
		t.Fatal("the meta-schema was not compiled by the first validation")
	}
	if !diags.HasErrors() {
		t.Fatalf("a package name the meta-schema forbids was accepted: %v", diags)
	}
}
`
