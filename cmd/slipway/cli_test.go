package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCLI_BadInputIsRefusedBeforeAnythingIsTouched runs the built binary
// with bad input of every kind and asserts, for each, exit code 1, a message
// naming the flag and the fix, and that neither the API server's namespaces
// nor any file of the backend changed.
func TestCLI_BadInputIsRefusedBeforeAnythingIsTouched(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc := cluster.Kubeconfig
	r := exe(t, dir, nil, "up", "--env", "bi-dev", "--kind", "dev", "--kubeconfig", kc)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAfter(t, dir, "bi-dev")

	notFile := t.TempDir()
	paramsFile := filepath.Join(t.TempDir(), "params.json")
	require.NoError(t, os.WriteFile(paramsFile, []byte(`{"App": {"Replica": 2}}`), 0o644))
	notJSON := filepath.Join(t.TempDir(), "params.json")
	require.NoError(t, os.WriteFile(notJSON, []byte(`App.Replicas: 2`), 0o644))
	k := []string{"--kubeconfig", kc}
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"env missing", []string{"preview"}, nil, "--env is required"},
		{"env not a DNS label", append([]string{"preview", "--env", "Bad_Name"}, k...), nil, `--env "Bad_Name" must be a lower-case DNS label`},
		{"env empty in a list", append([]string{"preview", "--env", "bi-dev,,qa"}, k...), nil, "has an empty name"},
		{"env twice", append([]string{"preview", "--env", "bi-dev,bi-dev"}, k...), nil, `names "bi-dev" twice`},
		{"env too long", append([]string{"preview", "--env", strings.Repeat("a", 41)}, k...), nil, "at most 40 characters"},
		{"kind unknown", append([]string{"up", "--env", "bi-dev", "--kind", "production"}, k...), nil, `--kind "production" is not a kind`},
		{"set empty value", append([]string{"up", "--env", "bi-dev", "--set", "GREETING="}, k...), nil, "has an empty value"},
		{"set empty key", append([]string{"up", "--env", "bi-dev", "--set", "=x"}, k...), nil, "use KEY=VALUE"},
		{"set no equals", append([]string{"up", "--env", "bi-dev", "--set", "GREETING"}, k...), nil, "use KEY=VALUE"},
		{"set duplicate key", append([]string{"up", "--env", "bi-dev", "--set", "A=1", "--set", "A=2"}, k...), nil, `sets "A" twice`},
		{"set bad key", append([]string{"up", "--env", "bi-dev", "--set", "bad key=1"}, k...), nil, "Env.Params.App.Settings"},
		{"secret empty value", append([]string{"up", "--env", "bi-dev", "--secret", "TOKEN="}, k...), nil, "--secret \"TOKEN=\" has an empty value"},
		{"secret also a setting", append([]string{"up", "--env", "bi-dev", "--secret", "TOKEN=abcd", "--set", "TOKEN=b"}, k...), nil, "either a setting or a secret"},
		{"replicas negative", append([]string{"up", "--env", "bi-dev", "--replicas", "-1"}, k...), nil, "Env.Params.App.Replicas: -1 is out of range; use 1 to 100 (given as --replicas -1)"},
		{"replicas too many", append([]string{"up", "--env", "bi-dev", "--replicas", "1000"}, k...), nil, "App.Replicas"},
		{"replicas too few for prod", append([]string{"up", "--env", "bi-prod", "--kind", "prod", "--replicas", "1"}, k...), nil, "too few for a prod environment"},
		{"replicas not a number", append([]string{"up", "--env", "bi-dev", "--replicas", "many"}, k...), nil, "--replicas"},
		{"image latest", append([]string{"up", "--env", "bi-dev", "--image", "nginx:latest"}, k...), nil, "not :latest"},
		{"image untagged", append([]string{"up", "--env", "bi-dev", "--image", "nginx"}, k...), nil, "no pinned tag"},
		{"namespace default", append([]string{"up", "--env", "bi-dev", "--namespace", "default"}, k...), nil, `Namespace: "default" is reserved`},
		{"namespace kube-system", append([]string{"up", "--env", "bi-dev", "--namespace", "kube-system"}, k...), nil, "is reserved"},
		{"namespace with several envs", append([]string{"up", "--env", "bi-dev,bi-qa", "--namespace", "shared"}, k...), nil, "--namespace names one environment's namespace"},
		{"kubeconfig missing", []string{"up", "--env", "bi-dev", "--kubeconfig", "/nonexistent/kubeconfig"}, nil, `--kubeconfig "/nonexistent/kubeconfig" is not a readable file`},
		{"kubeconfig a directory", []string{"up", "--env", "bi-dev", "--kubeconfig", notFile}, nil, "is not a readable file"},
		{"no kubeconfig and no local cluster", []string{"up", "--env", "bi-dev"}, nil, "no --kubeconfig given, $KUBECONFIG is not set and no local cluster"},
		{"policy pack unknown", append([]string{"up", "--env", "bi-dev", "--policy", "nosuch"}, k...), nil, "no pack named nosuch"},
		{"policy level without policy", append([]string{"up", "--env", "bi-dev", "--policy-level", "image-pinned=mandatory"}, k...), nil, "--policy-level needs --policy"},
		{"policy level unknown policy", append([]string{"up", "--env", "bi-dev", "--policy", "kubernetes", "--policy-level", "nosuch=mandatory"}, k...), nil, `Overrides["nosuch"] names no policy`},
		{"policy level unknown level", append([]string{"up", "--env", "bi-dev", "--policy", "kubernetes", "--policy-level", "image-pinned=strict"}, k...), nil, "is not a level"},
		{"policy level no value", append([]string{"up", "--env", "bi-dev", "--policy", "kubernetes", "--policy-level", "image-pinned"}, k...), nil, "use KEY=VALUE"},
		{"backend scheme", append([]string{"--backend", "ftp://x", "up", "--env", "bi-dev"}, k...), nil, "--backend: automation: backend URL \"ftp://x\" is not supported"},
		{"backend relative file", append([]string{"--backend", "file://relative/dir", "up", "--env", "bi-dev"}, k...), nil, "needs an absolute directory"},
		{"backend no bucket", append([]string{"--backend", "s3://", "up", "--env", "bi-dev"}, k...), nil, "names no bucket"},
		{"shared backend without passphrase", append([]string{"--backend", "s3://bucket?region=us-east-1", "up", "--env", "bi-dev"}, k...),
			[]string{"-PULUMI_CONFIG_PASSPHRASE"}, "set PULUMI_CONFIG_PASSPHRASE"},
		{"plugin without path", append([]string{"--plugin", "aws", "up", "--env", "bi-dev"}, k...), nil, "use NAME[@VERSION]=PATH"},
		{"plugin path missing", append([]string{"--plugin", "aws=/nonexistent/pulumi-resource-aws", "up", "--env", "bi-dev"}, k...), nil, "is not an executable file"},
		{"plugin without version", append([]string{"--plugin", "random=/bin/true", "up", "--env", "bi-dev"}, k...), nil, "give the version of random"},
		{"concurrency zero", append([]string{"up", "--env", "bi-dev", "--concurrency", "0"}, k...), nil, "--concurrency 0 must be at least 1"},
		{"parallel negative", append([]string{"preview", "--env", "bi-dev", "--parallel", "-1"}, k...), nil, "--parallel -1 must be at least 1 (or 0 for the engine's default)"},
		{"unknown flag", append([]string{"up", "--env", "bi-dev", "--replica", "2"}, k...), nil, "unknown flag: --replica"},
		{"stray argument", append([]string{"preview", "--env", "bi-dev", "dev"}, k...), nil, "unknown command \"dev\""},
		{"ttl zero", append([]string{"ephemeral", "create", "--env", "bi-pr-1", "--ttl", "0s"}, k...), nil, "--ttl 0s must be positive"},
		{"ttl negative", append([]string{"ephemeral", "create", "--env", "bi-pr-1", "--ttl", "-1h"}, k...), nil, "must be positive"},
		{"ttl too long", append([]string{"ephemeral", "create", "--env", "bi-pr-1", "--ttl", "2400h"}, k...), nil, "longer than 90 days"},
		{"ttl unparsable", append([]string{"ephemeral", "create", "--env", "bi-pr-1", "--ttl", "5parsecs"}, k...), nil, "--ttl"},
		{"ephemeral key", append([]string{"ephemeral", "create", "--env", "bi-pr-1", "--key", "bad key"}, k...), nil, `--key "bad key"`},
		{"ephemeral create over a real environment", append([]string{"ephemeral", "create", "--env", "bi-dev"}, k...), nil, "is not ephemeral (it lacks the stack tag slipway:ephemeral=true)"},
		{"ephemeral destroy of a real environment", []string{"ephemeral", "destroy", "--env", "bi-dev", "--yes"}, nil, "is not ephemeral"},
		{"ephemeral destroy without env", []string{"ephemeral", "destroy"}, nil, "--env is required"},
		{"ephemeral destroy unknown", []string{"ephemeral", "destroy", "--env", "bi-nosuch", "--yes"}, nil, `environment "bi-nosuch" does not exist in project slipway (it has: bi-dev)`},
		{"drift unknown", append([]string{"drift", "--env", "bi-prdo", "--kind", "dev"}, k...), nil, `environment "bi-prdo" does not exist in project slipway (it has: bi-dev)`},
		{"destroy unknown", append([]string{"destroy", "--env", "bi-prdo", "--kind", "dev", "--yes"}, k...), nil, `"bi-prdo" does not exist`},
		{"refresh unknown", append([]string{"refresh", "--env", "bi-prdo", "--kind", "dev"}, k...), nil, `"bi-prdo" does not exist`},
		{"rollback unknown", append([]string{"rollback", "--env", "bi-prdo", "--kind", "dev"}, k...), nil, `"bi-prdo" does not exist`},
		{"drift interval too short", append([]string{"drift", "--env", "bi-dev", "--interval", "1s"}, k...), nil, "--interval 1s is too short"},
		{"drift interval negative", append([]string{"drift", "--env", "bi-dev", "--interval", "-5m"}, k...), nil, "--interval -5m0s is negative"},
		{"drift several envs", append([]string{"drift", "--env", "bi-dev,bi-qa"}, k...), nil, "this verb takes one"},
		{"promote namespace", append([]string{"promote", "--through", "bi-dev,bi-qa", "--namespace", "one"}, k...), nil, "--namespace would put every stage into one namespace"},
		{"promote env", append([]string{"promote", "--env", "bi-dev"}, k...), nil, "name the stages with --through"},
		{"promote approve unknown stage", append([]string{"promote", "--through", "bi-dev,bi-qa", "--approve", "bi-prod"}, k...), nil, "--approve bi-prod is not a stage"},
		{"promote wait without the public key", append([]string{"promote", "--through", "bi-dev", "--approve", "bi-dev", "--approval-wait", "1m"}, k...), []string{"-SLIPWAY_APPROVAL_PUBLIC_KEY_FILE"}, "--approval-wait needs --approval-public-key-file"},
		{"render without out", []string{"render", "--env", "bi-dev"}, nil, "--out is required"},
		// Destructive verbs without a terminal need --yes; refused, they touch nothing (bi-dev stays).
		{"destroy without --yes", append([]string{"destroy", "--env", "bi-dev"}, k...), nil, "destroy destroys without asking only with --yes: stdin is not a terminal"},
		{"gc without --yes", []string{"gc"}, nil, "gc destroys without asking only with --yes"},
		{"ephemeral destroy without --yes", []string{"ephemeral", "destroy", "--env", "bi-dev"}, nil, "ephemeral destroy destroys without asking only with --yes"},
		{"backend without records", append([]string{"preview", "--env", "bi-dev", "--backend", "gs://bucket"}, k...), nil, "use a file:// or s3:// backend, or accept local records with WithLocalRecords (--local-records)"},
		{"backend without records from the environment", append([]string{"preview", "--env", "bi-dev"}, k...), []string{"PULUMI_BACKEND_URL=azblob://container"}, "backend azblob://container has no driver for Slipway's records"},
		{"KUBECONFIG of several files", []string{"preview", "--env", "bi-dev"}, []string{"KUBECONFIG=/a:/b"}, "$KUBECONFIG lists 2 files (/a:/b); an environment targets one cluster: pass --kubeconfig"},
		{"gc concurrency", []string{"gc", "--concurrency", "0"}, nil, "--concurrency 0 must be at least 1"},
		{"gc has no resource parallelism", []string{"gc", "--parallel", "2"}, nil, "unknown flag: --parallel"},
		{"definition unknown", append([]string{"up", "--env", "bi-dev", "--definition", "nosuch"}, k...), nil, `--definition "nosuch" is not a definition of slipway; use one of web`},
		{"gc definition unknown", []string{"gc", "--definition", "nosuch"}, nil, `--definition "nosuch" is not a definition of slipway`},
		{"param unknown path", append([]string{"up", "--env", "bi-dev", "--param", "App.Replica=2"}, k...), nil, `web: --param App.Replica=2: "App.Replica" is not a parameter; use one of `},
		{"param bad type", append([]string{"up", "--env", "bi-dev", "--param", "App.Replicas=two"}, k...), nil, `web: --param App.Replicas=two: App.Replicas="two": not an integer`},
		{"param group", append([]string{"up", "--env", "bi-dev", "--param", "App=x"}, k...), nil, `"App" is a group of parameters`},
		{"param no equals", append([]string{"up", "--env", "bi-dev", "--param", "App.Replicas"}, k...), nil, `--param "App.Replicas": use PATH=VALUE`},
		{"param invalid value", append([]string{"up", "--env", "bi-dev", "--param", "Namespace=kube-public"}, k...), nil, `Env.Params.Namespace: "kube-public" is reserved; use a namespace of the environment's own such as "slipway-bi-dev" (given as --param Namespace=kube-public)`},
		{"params missing file", append([]string{"up", "--env", "bi-dev", "--params", "/nonexistent/params.json"}, k...), nil, `--params "/nonexistent/params.json" is not a readable file`},
		{"params unknown field", append([]string{"up", "--env", "bi-dev", "--params", paramsFile}, k...), nil, `--params ` + paramsFile + `: unknown field(s) "App.Replica"`},
		{"params not JSON", append([]string{"up", "--env", "bi-dev", "--params", notJSON}, k...), nil, `--params ` + notJSON + `: invalid character`},
		{"format unknown", append([]string{"preview", "--env", "bi-dev", "--format", "yaml"}, k...), nil, `--format "yaml" is not a format; use one of text, json, markdown, junit, sarif, github`},
		{"format on a verb without reports", append([]string{"refresh", "--env", "bi-dev", "--format", "markdown"}, k...), nil, "unknown flag: --format"},
		{"policy check definition unknown", []string{"policy", "check", "--env", "bi-dev", "--definition", "nosuch"}, nil, `--definition "nosuch" is not a definition`},
		// A name that is not a kind gets no kind by default (never dev's advisory policies).
		{"kind of production", append([]string{"up", "--env", "production", "--policy", "kubernetes"}, k...), nil, `--env production: environment "production" is not named after a kind and was given none: set its kind (dev, qa, staging, prod or ephemeral) with --kind`},
		{"kind of prod-eu", append([]string{"up", "--env", "prod-eu", "--policy", "kubernetes", "--image", "nginx:1.27"}, k...), nil, `environment "prod-eu" is not named after a kind`},
		{"kind of pr-42", append([]string{"up", "--env", "pr-42"}, k...), nil, `environment "pr-42" is not named after a kind`},
		{"kind of one of several", append([]string{"preview", "--env", "bi-dev,live"}, k...), nil, `--env live: environment "live" is not named after a kind`},
		{"kind in promotion", append([]string{"promote", "--through", "bi-dev,production"}, k...), nil, `environment "production" is not named after a kind`},
		{"kind of params", []string{"params", "--env", "prod-eu"}, nil, `environment "prod-eu" is not named after a kind`},
		{"policy list kind unknown", []string{"policy", "list", "--kind", "production"}, nil, `--kind "production" is not an environment kind`},
		{"operator max failures", append([]string{"operator", "--max-failures", "0"}, k...), nil, "--max-failures 0 must be at least 1"},
		{"operator renew deadline", append([]string{"operator", "--lease-duration", "5s", "--renew-deadline", "5s"}, k...), nil, "--renew-deadline 5s must be shorter than --lease-duration 5s"},
		{"operator backoff", append([]string{"operator", "--backoff", "0s"}, k...), nil, "--backoff 0s must be positive"},
		{"operator no cluster", []string{"operator", "--kubeconfig", "/nonexistent/kubeconfig"}, nil, "no cluster to connect to"},
		{"runner concurrency", append([]string{"runner", "--concurrency", "0"}, k...), nil, "--concurrency 0 must be at least 1"},
		{"runner lease", append([]string{"runner", "--lease-duration", "-1s"}, k...), nil, "--lease-duration -1s must be positive"},
		{"runner renew deadline", append([]string{"runner", "--lease-duration", "6s", "--renew-deadline", "6s"}, k...), nil, "--renew-deadline 6s must be shorter than --lease-duration 6s"},
		{"runner allowed namespaces", append([]string{"runner", "--allow-runner-credentials", "team-a,Team_B"}, k...), nil, `--allow-runner-credentials: "Team_B" is not a namespace name`},
		{"operator allowed namespaces", append([]string{"operator", "--allow-runner-credentials", "*"}, k...), nil, `--allow-runner-credentials: "*" is not a namespace name`},
		{"runner plugin without path", append([]string{"--plugin", "aws", "runner"}, k...), nil, "use NAME[@VERSION]=PATH"},
		{"operator install runners", []string{"operator", "install", "--print", "--runners", "0"}, nil, "must be at least 1"},
		{"operator install without a mode", []string{"operator", "install", "--print"}, nil, "choose the install mode: --watch-namespaces a,b"},
		{"operator install both modes", []string{"operator", "install", "--print", "--cluster-wide", "--watch-namespaces", "a"}, nil, "--cluster-wide and --watch-namespaces exclude each other"},
		{"operator install bad namespace", []string{"operator", "install", "--print", "--image", "registry.example.com/team/shopctl@sha256:" + strings.Repeat("ab", 32), "--watch-namespaces", "a,Team_B"}, nil, `--watch-namespaces: "Team_B" is not a namespace name`},
		{"operator install print and kustomize", []string{"operator", "install", "--print", "--cluster-wide", "--kustomize", "k"}, nil, "--print and --kustomize exclude each other"},
		{"operator bad watch namespaces", append([]string{"operator", "--watch-namespaces", "a,a"}, k...), nil, `--watch-namespaces: namespace "a" is listed twice`},
		{"rollout no step", append([]string{"rollout", "start", "--env", "bi-dev", "--strategy", "canary", "--image", "nginx:1.28"}, k...), nil, "--step is required"},
		{"rollout step not a step", append([]string{"rollout", "start", "--env", "bi-dev", "--step", "setWeight=10"}, k...), nil, `--step "setWeight=10" is not a step`},
		{"rollout weight out of range", append([]string{"rollout", "start", "--env", "bi-dev", "--step", "weight=150"}, k...), nil, "--step weight=150: the weight must be a whole percentage from 1 to 100"},
		{"rollout token on argv", append([]string{"rollout", "start", "--env", "bi-dev", "--step", "weight=10", "--analysis", "errors.token=abc"}, k...), nil, "--analysis errors.token: a secret on the command line"},
		{"rollout analysis undefined", append([]string{"rollout", "start", "--env", "bi-dev", "--step", "analysis=errors"}, k...), nil, "--step analysis=errors: no --analysis errors is defined"},
		{"rollout stable not a canary", append([]string{"rollout", "start", "--env", "bi-dev", "--strategy", "canary", "--image", "nginx:1.28", "--step", "weight=10"}, k...), nil,
			`--step weight=10: web: Env.Params.App.Strategy: of the last good release is "rolling"; deploy the stable version with --strategy canary first`},
		{"rollout no stable release", append([]string{"rollout", "start", "--env", "bi-qa", "--kind", "dev", "--strategy", "canary", "--image", "nginx:1.28", "--step", "weight=10"}, k...), nil,
			"environment bi-qa has no good release to roll out over; deploy the stable version first"},
		{"rollout status of none", []string{"rollout", "status", "--env", "bi-dev"}, nil, "environment bi-dev has no rollout; start one"},
		{"rollout status bad interval", []string{"rollout", "status", "--env", "bi-dev", "--watch", "--interval", "1ns"}, nil, "--interval 1ns is too short"},
		{"rollout abort of none", append([]string{"rollout", "abort", "--env", "bi-dev"}, k...), nil, "environment bi-dev has no rollout to abort"},
		{"runner bad watch namespaces", append([]string{"runner", "--watch-namespaces", "kube_system"}, k...), nil, `--watch-namespaces: "kube_system" is not a namespace name`},
	}
	require.GreaterOrEqual(t, len(cases), 40)
	before := snapshot(t, dir)
	require.NotEmpty(t, before.files, "the backend holds bi-dev")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exe(t, dir, c.env, c.args...)
			assert.Equal(t, 1, r.code, "exit code; stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, c.want)
			assert.Empty(t, r.stdout, "nothing on stdout without --json")
			after := snapshot(t, dir)
			assert.Equal(t, rowNamespaces(before.namespaces), rowNamespaces(after.namespaces), "the API server is unchanged")
			assert.Equal(t, before.files, after.files, "the backend is unchanged")
		})
	}
	// The same refusal as JSON: one envelope with a structured error.
	r = exe(t, dir, nil, append([]string{"--json", "drift", "--env", "bi-prdo", "--kind", "dev"}, k...)...)
	assert.Equal(t, 1, r.code)
	env := envelopeOf(t, r)
	e := env["error"].(map[string]any)
	assert.Equal(t, "unknown_environment", e["code"])
	assert.Contains(t, e["message"], "(it has: bi-dev)")
	assert.Contains(t, r.stderr, "(it has: bi-dev)", "the error is on stderr too")
}

// TestCLI_RenderLeavesNoStackAndRendersAgain: render needs no cluster,
// leaves no stack in the backend, and a second render into a clean
// directory writes every manifest again.
func TestCLI_RenderLeavesNoStackAndRendersAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "manifests")
		r := exe(t, dir, nil, "render", "--env", "rd-dev", "--out", out)
		require.Equal(t, 0, r.code, "render %d: %s", i, r.stderr)
		assert.Subset(t, manifestKinds(t, out), []string{"Namespace", "Deployment", "Service", "NetworkPolicy", "ConfigMap"}, "render %d", i)
	}
	assert.False(t, namespaceExists(t, "slipway-rd-dev"), "render touches no cluster")
	_, err := os.Stat(filepath.Join(dir, "state", ".pulumi", "stacks"))
	assert.True(t, os.IsNotExist(err), "render leaves no stack in the backend: %v", err)
}

func manifestKinds(t *testing.T, dir string) []string {
	t.Helper()
	var kinds []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var obj struct{ Kind string }
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return err
		}
		kinds = append(kinds, obj.Kind)
		return nil
	}))
	require.NotEmpty(t, kinds, "manifests in %s", dir)
	return kinds
}

// editConfigMap changes one setting of an environment out of band.
func editConfigMap(t *testing.T, ns, key, value string) {
	t.Helper()
	ctx := context.Background()
	cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[key] = value
	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// TestCLI_ClusterUpStatusDown manages a local cluster of its own through the
// binary, with one JSON envelope per verb.
func TestCLI_ClusterUpStatusDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := exe(t, dir, nil, "--json", "cluster", "up")
	require.Equal(t, 0, r.code, r.stderr)
	t.Cleanup(func() {
		if r := exe(t, dir, nil, "cluster", "down"); r.code != 0 && !strings.Contains(r.stderr, "not running") {
			t.Errorf("cluster down: %s", r.stderr)
		}
	})
	envelopeOf(t, r)
	r = exe(t, dir, nil, "--json", "cluster", "status")
	require.Equal(t, 0, r.code, r.stderr)
	res := results(t, envelopeOf(t, r))
	require.Len(t, res, 1)
	assert.Equal(t, true, res[0]["cluster"].(map[string]any)["ready"])
	// The default kubeconfig of the environment verbs is this cluster's.
	r = exe(t, dir, nil, "preview", "--env", "cu-dev")
	assert.Equal(t, 0, r.code, r.stderr)
	r = exe(t, dir, nil, "--json", "cluster", "down")
	assert.Equal(t, 0, r.code, r.stderr)
	envelopeOf(t, r)
	r = exe(t, dir, nil, "cluster", "status")
	assert.Equal(t, 1, r.code)
}

// rowNamespaces keeps the namespaces a row of
// TestCLI_BadInputIsRefusedBeforeAnythingIsTouched could create (its
// environments are named bi-*, plus the --namespace and --env values some
// rows give): the package's other tests run in parallel on the same
// cluster and create namespaces of their own meanwhile.
func rowNamespaces(nss []string) []string {
	var out []string
	for _, n := range nss {
		if strings.HasPrefix(n, "slipway-bi-") || slices.Contains([]string{"one", "shared", "production", "slipway-production", "slipway-prod-eu", "slipway-pr-42", "slipway-live"}, n) {
			out = append(out, n)
		}
	}
	return out
}
