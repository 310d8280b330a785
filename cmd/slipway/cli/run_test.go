package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	pmeta "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// tinyParams are the parameters of a definition of the tests' own.
type tinyParams struct {
	Greeting string
	Debug    bool
	Labels   map[string]string
}

// tiny is a second definition: one ConfigMap in namespace "tiny".
var tiny = &stacks.Definition[tinyParams]{
	Name:     "tiny",
	Project:  "tiny",
	Defaults: map[stacks.Kind]tinyParams{stacks.Dev: {Greeting: "hello"}},
	Run: func(ctx *pulumi.Context, env stacks.Env[tinyParams]) error {
		_, err := corev1.NewConfigMap(ctx, "greeting", &corev1.ConfigMapArgs{
			Metadata: &pmeta.ObjectMetaArgs{Namespace: pulumi.String("tiny"), Labels: pulumi.ToStringMap(env.Params.Labels)},
			Data:     pulumi.StringMap{"GREETING": pulumi.String(env.Params.Greeting)},
		})
		return err
	},
	Flags: []stacks.Flag{{Name: "greeting", Path: "Greeting"}, {Name: "debug", Path: "Debug"}, {Name: "label", Path: "Labels"}},
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, opts []Option, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), append([]string{"--dir", t.TempDir()}, args...), &out, &errb, opts...)
	return result{code, out.String(), errb.String()}
}

var envelopeValidator = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(envelopeSchema))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("envelope.v1.json", doc); err != nil {
		panic(err)
	}
	return c.MustCompile("envelope.v1.json")
}()

// validEnvelope validates stdout against the schema and decodes it.
func validEnvelope(t *testing.T, r result) map[string]any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(r.stdout))
	require.NoError(t, err, "stdout is not one JSON document:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.NoError(t, envelopeValidator.Validate(inst), "stdout does not match the schema:\n%s", r.stdout)
	var env map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &env))
	return env
}

// TestRun_OptionsAreChecked: a binary without definitions, with two of one
// name, with a shorthand that takes a flag of the command line, or with a
// pack named like one of Slipway's is refused before any command runs.
func TestRun_OptionsAreChecked(t *testing.T) {
	clash := &stacks.Definition[tinyParams]{Name: "clash", Project: "clash", Run: tiny.Run, Flags: []stacks.Flag{{Name: "env", Path: "Greeting"}}}
	for _, c := range []struct {
		name string
		opts []Option
		want string
	}{
		{"no definition", nil, "no definition registered"},
		{"duplicate", []Option{Definitions(web.Definition, web.Definition)}, `definition 1's name "web" is empty or registered twice`},
		{"reserved flag", []Option{Definitions(clash)}, "definition clash's flag --env is a flag of the command line itself"},
		{"pack clash", []Option{Definitions(web.Definition), PolicyPacks(&policypacks.Pack{Name: "kubernetes"})}, `pack "kubernetes" is registered twice`},
		{"bad name", []Option{Definitions(web.Definition), Name("Bad Name")}, `Name("Bad Name")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.opts, "params")
			assert.Equal(t, ExitError, r.code)
			assert.Contains(t, r.stderr, c.want)
			assert.Empty(t, r.stdout)
		})
	}
}

// TestRun_DefinitionSelection: --definition picks the definition (default the
// first), its shorthands apply, another definition's shorthand is refused
// naming its owner, and params prints every definition and the defaults.
func TestRun_DefinitionSelection(t *testing.T) {
	opts := []Option{Definitions(tiny, web.Definition), Name("team")}
	r := run(t, opts, "params")
	require.Equal(t, 0, r.code, r.stderr)
	var doc app.ParamsDoc
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	assert.Equal(t, "tiny", doc.Definition, "the first definition is the default")
	require.Len(t, doc.Definitions, 2)
	assert.Equal(t, []string{"Debug", "Greeting", "Labels"}, doc.Definitions[0].Paths)
	assert.JSONEq(t, `{"Greeting": "hello", "Debug": false, "Labels": null}`, string(doc.Params))

	r = run(t, opts, "--json", "params", "--definition", "web", "--kind", "prod")
	require.Equal(t, 0, r.code, r.stderr)
	res := validEnvelope(t, r)["results"].([]any)[0].(map[string]any)["params"].(map[string]any)
	assert.Equal(t, "web", res["definition"])
	assert.EqualValues(t, 3, res["params"].(map[string]any)["App"].(map[string]any)["Replicas"])

	r = run(t, opts, "policy", "check", "--env", "dev", "--definition", "web", "--greeting", "hi")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "team: --greeting is a parameter of definition tiny, not of web; select it with --definition tiny")
	r = run(t, opts, "policy", "check", "--env", "dev", "--definition", "nosuch")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, `--definition "nosuch" is not a definition of team; use one of tiny, web`)
	r = run(t, opts, "policy", "check", "--env", "dev", "--label", "a=1", "--label", "a=2")
	assert.Contains(t, r.stderr, `--label sets "a" twice`)
	r = run(t, opts, "policy", "check", "--env", "dev", "--debug=maybe")
	assert.Contains(t, r.stderr, `tiny: --debug maybe: Debug="maybe": not a bool`)

	// The selected program's parameters reach its program: the team pack
	// sees the label given by shorthand and by --param.
	owner := &policypacks.Pack{Name: "team", Policies: []*policypacks.Policy{{
		Name: "owner-label", Description: "ConfigMaps name their owner.", Severity: policypacks.Low, Enforcement: policypacks.Mandatory, Types: []string{"kubernetes:core/v1:ConfigMap"},
		Validate: func(r policypacks.Resource, a *policypacks.Args) {
			v, st := r.Props.String("metadata.labels.owner")
			a.Check(r, st, v == "shop", "owner label is %q, want shop", v)
		},
	}}}
	opts = append(opts, PolicyPacks(owner))
	r = run(t, opts, "policy", "check", "--env", "prod", "--policy", "team", "--label", "owner=shop", "--debug")
	assert.Equal(t, 0, r.code, r.stderr)
	r = run(t, opts, "policy", "check", "--env", "prod", "--policy", "team", "--param", "Labels=owner=ops")
	assert.Equal(t, ExitPolicy, r.code, r.stderr)
	assert.Contains(t, r.stdout, `owner label is "ops", want shop`)
	assert.Contains(t, r.stderr, "urn:pulumi:prod::tiny::kubernetes:core/v1:ConfigMap::greeting", "URNs are the engine's: the stack's and the project's")
}

// TestRun_PolicyCheckEveryFormat runs policy check in-process (no engine,
// cluster or backend) in every format: exit 3 in each, the blocking
// finding in each, well-formed output, and the secret in none.
func TestRun_PolicyCheckEveryFormat(t *testing.T) {
	const canary = "canary-5e0d1b7c"
	opts := []Option{Definitions(web.Definition)}
	args := []string{"policy", "check", "--env", "pc-stg", "--kind", "staging", "--image", "evil.example.com/web:1.0", "--secret", "TOKEN=" + canary,
		"--policy", "kubernetes"}
	for _, f := range []string{"text", "json", "markdown", "junit", "sarif", "github"} {
		t.Run(f, func(t *testing.T) {
			r := run(t, opts, append(args, "--format", f)...)
			assert.Equal(t, ExitPolicy, r.code, r.stderr)
			assert.NotContains(t, r.stdout+r.stderr, canary)
			assert.Contains(t, r.stdout, "image-registry-allowlist")
			assert.Contains(t, r.stderr, "image-registry-allowlist", "the error is on stderr")
			switch f {
			case "json":
				env := validEnvelope(t, r)
				assert.Equal(t, "policy_blocked", env["error"].(map[string]any)["code"])
				item := env["results"].([]any)[0].(map[string]any)
				assert.Equal(t, "blocked", item["status"])
				assert.NotEmpty(t, item["policy"].(map[string]any)["results"])
			case "junit":
				var doc struct {
					XMLName xml.Name
				}
				require.NoError(t, xml.Unmarshal([]byte(r.stdout), &doc), r.stdout)
				assert.Equal(t, "testsuites", doc.XMLName.Local)
			case "sarif":
				var doc struct{ Version string }
				require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
				assert.Equal(t, "2.1.0", doc.Version)
			case "github":
				for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					assert.True(t, strings.HasPrefix(l, "::"), "workflow command: %s", l)
				}
			case "markdown":
				assert.Contains(t, r.stdout, "pc-stg")
				assert.Contains(t, r.stdout, "|")
			}
		})
	}
	// A compliant environment passes with exit 0; dev makes the violation advisory.
	r := run(t, opts, "policy", "check", "--env", "pc-stg", "--kind", "staging", "--policy", "kubernetes")
	assert.Equal(t, 0, r.code, r.stderr)
	r = run(t, opts, "policy", "check", "--env", "pc-dev", "--image", "evil.example.com/web:1.0")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "advisory")
}

// TestRun_PolicyListHasEveryPolicy: every policy of every pack (Slipway's
// and the team's) is listed in each format, with its enforcement per kind.
func TestRun_PolicyListHasEveryPolicy(t *testing.T) {
	team := &policypacks.Pack{Name: "team", Policies: []*policypacks.Policy{{Name: "team-rule", Description: "A team rule.", Severity: policypacks.Low, Enforcement: policypacks.Mandatory,
		Controls: []policypacks.Control{{Framework: "Runbook", ID: "R-1"}}, ValidateStack: func([]policypacks.Resource, *policypacks.Args) {}}}}
	opts := []Option{Definitions(web.Definition), PolicyPacks(team)}
	packs := append(all.Packs(), team)
	r := run(t, opts, "--json", "policy", "list")
	require.Equal(t, 0, r.code, r.stderr)
	items := validEnvelope(t, r)["results"].([]any)
	rules := items[0].(map[string]any)["rules"].([]any)
	var got []string
	for _, x := range rules {
		got = append(got, x.(map[string]any)["policy"].(string))
	}
	var want []string
	for _, p := range packs {
		for _, pol := range p.Policies {
			want = append(want, pol.Name)
		}
	}
	assert.ElementsMatch(t, want, got)
	last := rules[len(rules)-1].(map[string]any)
	assert.Equal(t, map[string]any{"dev": "advisory", "qa": "advisory", "staging": "mandatory", "prod": "mandatory", "ephemeral": "advisory"}, last["enforcement"])
	for _, f := range []string{"text", "markdown"} {
		r := run(t, opts, "policy", "list", "--format", f)
		require.Equal(t, 0, r.code, r.stderr)
		for _, w := range want {
			assert.Contains(t, r.stdout, w, f)
		}
		assert.Contains(t, r.stdout, "Runbook R-1", f)
	}
	r = run(t, opts, "policy", "list", "--format", "sarif")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "--format sarif is not a format of policy list; use one of text, json, markdown")
	r = run(t, opts, "policy", "list", "--policy", "team", "--kind", "prod", "--policy-level", "team-rule=advisory")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `team\s+team-rule\s+low\s+advisory\s+Runbook R-1`, r.stdout)
	assert.NotContains(t, r.stdout, "image-pinned")
}

// TestRun_FormatAndJSONAgree: --json is --format json; two different
// outputs are refused.
func TestRun_FormatAndJSONAgree(t *testing.T) {
	opts := []Option{Definitions(web.Definition)}
	r := run(t, opts, "--json", "policy", "check", "--env", "dev", "--format", "markdown")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "--json and --format markdown ask for two outputs")
	validEnvelope(t, r)
	r = run(t, opts, "--json", "policy", "check", "--env", "dev", "--format", "json")
	assert.Equal(t, 0, r.code, r.stderr)
	validEnvelope(t, r)
}
