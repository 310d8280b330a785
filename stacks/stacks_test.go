package stacks

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

// mode is a string type, as definitions use for enums.
type mode string

type group struct {
	Name string
	Size int
}

// params exercise every kind of field a definition's parameters have.
type params struct {
	Image    string `json:"image"`
	Replicas int
	Ratio    float64
	Enabled  bool
	Timeout  time.Duration
	Port     uint16
	Mode     mode
	Labels   map[string]string
	Hosts    []string
	Ports    []int
	Addr     netip.Addr // encoding.TextUnmarshaler, set as a whole
	Groups   []group    // set with a JSON value
	Nested   struct {
		Level int8
		Deep  struct{ Name string }
	}
	Ptr    *group
	Hidden string `json:"-"`
}

func tiny() *Definition[params] {
	base := params{Image: "app:1", Replicas: 1, Timeout: time.Minute, Labels: map[string]string{"team": "core"},
		Hosts: []string{"a.example"}, Groups: []group{{Name: "g", Size: 1}}}
	base.Nested.Level = 1
	base.Nested.Deep.Name = "deep"
	prod := base
	prod.Replicas = 3
	prod.Labels = map[string]string{"team": "core", "tier": "prod"}
	return &Definition[params]{
		Name:     "tiny",
		Project:  "tiny-project",
		Defaults: map[Kind]params{Dev: base, QA: base, Staging: base, Prod: prod, Ephemeral: base},
		Complete: func(e *Env[params]) {
			if e.Params.Mode == "" {
				e.Params.Mode = mode("for-" + e.Name)
			}
		},
		Validate: func(e Env[params]) error {
			var errs []error
			if e.Params.Replicas > 10 {
				errs = append(errs, Errorf("Params.Replicas", "%d is too many; use at most 10", e.Params.Replicas))
			}
			if e.Kind == Prod && e.Params.Replicas < 2 {
				errs = append(errs, Errorf("Params.Replicas", "%d is too few for prod; use at least 2", e.Params.Replicas))
			}
			return errors.Join(errs...)
		},
		Run: func(ctx *pulumi.Context, e Env[params]) error {
			prov, err := e.KubernetesProvider(ctx, "k8s")
			if err != nil {
				return err
			}
			data := pulumi.StringMap{"image": pulumi.String(e.Params.Image)}
			if _, err := corev1.NewConfigMap(ctx, "cm", &corev1.ConfigMapArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(e.Name)}, Data: data}, pulumi.Provider(prov)); err != nil {
				return err
			}
			secrets, ok, err := Secrets(ctx)
			if err != nil {
				return err
			}
			if ok {
				ctx.Export("secrets", secrets)
			}
			return nil
		},
		Plugins: func(Env[params]) []automation.Plugin { return []automation.Plugin{automation.KubernetesPlugin} },
		Flags:   []Flag{{Name: "image", Path: "image"}, {Name: "label", Path: "Labels"}},
	}
}

func kubeconfig(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	return p
}

func TestKinds(t *testing.T) {
	assert.Equal(t, []Kind{Dev, QA, Staging, Prod, Ephemeral}, Kinds())
	for _, k := range Kinds() {
		assert.True(t, k.Valid())
	}
	assert.False(t, Kind("production").Valid())
	assert.False(t, Kind("").Valid())
	k, err := KindOf("prod")
	require.NoError(t, err)
	assert.Equal(t, Prod, k)
}

// TestKindOf_ANameThatIsNotAKindIsRefusedNeverDev: "production", "prod-eu"
// and "pr-42" given no kind are refused (a *KindError naming the name and
// --kind) by KindOf, Check, Program, Build and DefaultParams — never given
// dev's advisory guards; an explicit kind, or the definition's own
// KindOf mapping, gives them one.
func TestKindOf_ANameThatIsNotAKindIsRefusedNeverDev(t *testing.T) {
	d := tiny()
	for _, name := range []string{"production", "prod-eu", "pr-42", "live"} {
		t.Run(name, func(t *testing.T) {
			k, err := KindOf(name)
			var ke *KindError
			require.ErrorAs(t, err, &ke)
			assert.Equal(t, name, ke.Name)
			assert.Empty(t, k)
			assert.Contains(t, err.Error(), "--kind")

			_, err = d.Build(Spec{Name: name})
			require.ErrorAs(t, err, &ke, "Build")
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			assert.Len(t, inv.Problems, 1, "%v", err)

			_, err = d.Program(Env[params]{Name: name})
			require.ErrorAs(t, err, &ke, "Program")
			require.ErrorAs(t, d.Check(Env[params]{Name: name}), &ke, "Check")
			_, err = d.DefaultParams(name, "")
			require.ErrorAs(t, err, &ke, "DefaultParams")
			assert.Empty(t, d.WithDefaults(Env[params]{Name: name}).Kind, "no kind is made up")

			e, err := d.FromSpec(Spec{Name: name, Kind: Prod})
			require.NoError(t, err, "an explicit kind")
			assert.Equal(t, Prod, e.Kind)
			e, err = d.FromSpec(Spec{Name: name, Kind: Ephemeral})
			require.NoError(t, err, "an ephemeral environment keeps its kind")
			assert.Equal(t, Ephemeral, e.Kind)
		})
	}

	// A definition's own mapping names its environments' kinds.
	d.KindOf = func(name string) (Kind, bool) {
		if name == "production" || strings.HasPrefix(name, "prod-") {
			return Prod, true
		}
		return "", false
	}
	for name, want := range map[string]Kind{"production": Prod, "prod-eu": Prod, "staging": Staging} {
		k, err := d.KindFor(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, k, name)
		e, err := d.FromSpec(Spec{Name: name})
		require.NoError(t, err, name)
		assert.Equal(t, want, e.Kind, name)
		def := d.Env(string(want), want).Params
		assert.Equal(t, def.Replicas, d.WithDefaults(e).Params.Replicas, "%s gets its kind's defaults", name)
		assert.Equal(t, def.Labels, d.WithDefaults(e).Params.Labels, "%s gets its kind's defaults", name)
	}
	_, err := d.KindFor("pr-42")
	var ke *KindError
	assert.ErrorAs(t, err, &ke, "a name the mapping leaves alone is still refused")
	d.KindOf = func(string) (Kind, bool) { return "production", true }
	_, err = d.KindFor("x")
	assert.ErrorContains(t, err, `maps "x" to "production", which is not a kind`)
}

func TestDefinition_DefaultsPerKind(t *testing.T) {
	d := tiny()
	dev, prod := d.Env("dev", ""), d.Env("prod", "")
	assert.Equal(t, Dev, dev.Kind)
	assert.Equal(t, Prod, prod.Kind, "the name is the kind")
	assert.Empty(t, d.Env("pr-1", "").Kind, "any other name gets no kind (Check refuses it)")
	assert.Equal(t, 1, dev.Params.Replicas)
	assert.Equal(t, 3, prod.Params.Replicas)
	assert.Equal(t, map[string]string{"team": "core", "tier": "prod"}, prod.Params.Labels)
	assert.Equal(t, "deep", dev.Params.Nested.Deep.Name)
	assert.Equal(t, mode("for-dev"), dev.Params.Mode, "Complete runs after the defaults")

	// Given fields win; zero ones (also in nested structs) are filled; a
	// given map is kept, not merged.
	e := d.WithDefaults(Env[params]{Name: "x", Kind: Prod, Params: params{Replicas: 5, Labels: map[string]string{"own": "1"}}})
	e.Params.Nested.Deep.Name = "given"
	e = d.WithDefaults(e)
	assert.Equal(t, 5, e.Params.Replicas)
	assert.Equal(t, "app:1", e.Params.Image)
	assert.Equal(t, map[string]string{"own": "1"}, e.Params.Labels)
	assert.Equal(t, int8(1), e.Params.Nested.Level)
	assert.Equal(t, "given", e.Params.Nested.Deep.Name)

	// No environment shares a map or slice with the defaults or another.
	dev.Params.Labels["team"] = "changed"
	dev.Params.Hosts[0] = "changed"
	dev.Params.Groups[0].Name = "changed"
	again := d.Env("dev", "")
	assert.Equal(t, "core", again.Params.Labels["team"])
	assert.Equal(t, "a.example", again.Params.Hosts[0])
	assert.Equal(t, "g", again.Params.Groups[0].Name)
	assert.Equal(t, "core", d.Defaults[Dev].Labels["team"])

	js, err := d.DefaultParams("prod", "")
	require.NoError(t, err)
	var got params
	require.NoError(t, json.Unmarshal(js, &got))
	assert.Equal(t, prod.Params, got)
	_, err = d.DefaultParams("x", "production")
	assert.ErrorContains(t, err, `Env.Kind: "production" is not a kind`)
}

// TestDefinition_CheckNamesEveryProblemAtOnce: the common checks and the
// definition's own run together; each problem names its field.
func TestDefinition_CheckNamesEveryProblemAtOnce(t *testing.T) {
	d := tiny()
	_, err := d.Program(Env[params]{Name: "Bad_Name", Kind: "production", Kubeconfig: "/nonexistent/kubeconfig",
		Secrets: map[string]string{"a b": "v"}, Params: params{Replicas: 50}})
	require.Error(t, err)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Equal(t, "tiny", inv.Definition)
	assert.Len(t, inv.Problems, 4, "%v", err) // Validate does not run on an unknown kind
	for _, want := range []string{
		`tiny: Env.Name: "Bad_Name" must be a lower-case DNS label`,
		`tiny: Env.Kind: "production" is not a kind; use dev, qa, staging, prod or ephemeral`,
		`tiny: Env.Kubeconfig: "/nonexistent/kubeconfig" is not a readable file`,
		`tiny: Env.Secrets: key "a b" is not a valid secret key`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	_, err = d.Program(Env[params]{Name: "prod", Params: params{Replicas: 1}, RenderDir: t.TempDir(), Secrets: map[string]string{"K": "v"}})
	require.ErrorAs(t, err, &inv)
	assert.Len(t, inv.Problems, 2, "%v", err)
	assert.Contains(t, err.Error(), "tiny: Env.Secrets: cannot be rendered (RenderDir)")
	assert.Contains(t, err.Error(), "tiny: Env.Params.Replicas: 1 is too few for prod; use at least 2")
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "Secrets", fe.Field)

	_, err = d.Program(Env[params]{Name: "", Params: params{Replicas: 11}})
	assert.ErrorContains(t, err, "tiny: Env.Name: is empty")
	assert.ErrorContains(t, err, "tiny: Env.Params.Replicas: 11 is too many")

	assert.NoError(t, d.Check(Env[params]{Name: "dev", Kubeconfig: kubeconfig(t)}))
}

// TestDefinition_MalformedDefinitionIsRefused: a definition with a bad
// name, project, kind in its defaults, flag or no Run builds nothing.
func TestDefinition_MalformedDefinitionIsRefused(t *testing.T) {
	d := tiny()
	d.Name, d.Project, d.Run = "Tiny!", "bad project", nil
	d.Defaults["production"] = params{}
	d.Flags = append(d.Flags, Flag{Name: "image", Path: "Nope"}, Flag{Name: "nested", Path: "Nested"})
	_, err := d.Program(Env[params]{Name: "dev"})
	require.Error(t, err)
	for _, want := range []string{
		`Definition.Name "Tiny!" must be a lower-case DNS label`,
		`Definition.Project "bad project" is invalid`,
		"Definition.Run is nil",
		`Definition.Defaults["production"] is not a kind`,
		`Definition.Flags[2].Name "image" must be a unique`,
		`Definition.Flags[2].Path: "Nope" is not a parameter; use one of `,
		`Definition.Flags[3].Path: "Nested" is a group of parameters`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestBuild_ParamsOfEveryType: JSON first, then PATH=VALUE settings typed
// by reflection, matched by Go or JSON name in any case.
func TestBuild_ParamsOfEveryType(t *testing.T) {
	d := tiny()
	kc := kubeconfig(t)
	prog, err := d.Build(Spec{Name: "qa", Kubeconfig: kc,
		ParamsJSON: []byte(`{"image":"from-json:1","Replicas":2,"labels":{"json":"1"},"Nested":{"Deep":{"Name":"json"}}}`),
		Params: []Param{
			{"Image", "app:2"}, {"replicas", "4"}, {"Ratio", "0.5"}, {"enabled", "true"}, {"Timeout", "5m"},
			{"Port", "8080"}, {"Mode", "fast"}, {"Labels", "a=1"}, {"labels", "b=x=y"}, {"Hosts", "h1"}, {"Hosts", "h2"},
			{"Ports", "80"}, {"Ports", "443"}, {"Addr", "10.0.0.1"}, {"Groups", `[{"Name":"big","Size":9}]`},
			{"nested.level", "7"}, {"Nested.Deep.Name", "set"}, {"Ptr.Size", "3"},
		}})
	require.NoError(t, err)
	assert.Equal(t, "tiny-project", prog.Project)
	assert.Equal(t, "qa", prog.Stack)
	assert.Equal(t, []automation.Plugin{automation.KubernetesPlugin}, prog.Plugins)
	e, err := d.ParseVersion(prog.Version)
	require.NoError(t, err)
	assert.Equal(t, QA, e.Kind, "the kind is resolved and recorded")
	assert.Equal(t, kc, e.Kubeconfig)
	p := e.Params
	assert.Equal(t, "app:2", p.Image)
	assert.Equal(t, 4, p.Replicas)
	assert.Equal(t, 0.5, p.Ratio)
	assert.True(t, p.Enabled)
	assert.Equal(t, 5*time.Minute, p.Timeout)
	assert.Equal(t, uint16(8080), p.Port)
	assert.Equal(t, mode("fast"), p.Mode)
	assert.Equal(t, map[string]string{"json": "1", "a": "1", "b": "x=y"}, p.Labels, "KEY=VALUE adds to the map")
	assert.Equal(t, []string{"h1", "h2"}, p.Hosts, "each setting appends")
	assert.Equal(t, []int{80, 443}, p.Ports)
	assert.Equal(t, netip.MustParseAddr("10.0.0.1"), p.Addr)
	assert.Equal(t, []group{{Name: "big", Size: 9}}, p.Groups)
	assert.Equal(t, int8(7), p.Nested.Level)
	assert.Equal(t, "set", p.Nested.Deep.Name)
	require.NotNil(t, p.Ptr)
	assert.Equal(t, 3, p.Ptr.Size)

	// The recorded version rebuilds the same program.
	back, err := d.FromVersion(prog.Version)
	require.NoError(t, err)
	assert.Equal(t, prog.Version, back.Version)
	assert.Equal(t, prog.Stack, back.Stack)

	// Kind default: the name when it is a kind; an explicit kind wins.
	e, err = d.FromSpec(Spec{Name: "prod"})
	require.NoError(t, err)
	assert.Equal(t, Prod, e.Kind)
	e, err = d.FromSpec(Spec{Name: "prod", Kind: Staging})
	require.NoError(t, err)
	assert.Equal(t, Staging, e.Kind)
}

// TestBuild_BadParamsAreNamedWithTheValidPaths: an unknown path names the
// path and lists every valid one; bad values name the type; all at once.
func TestBuild_BadParamsAreNamedWithTheValidPaths(t *testing.T) {
	d := tiny()
	_, err := d.Build(Spec{Name: "dev", Params: []Param{
		{"Replica", "2"}, {"Replicas", "two"}, {"Timeout", "5 minutes"}, {"Labels", "novalue"}, {"Enabled", "maybe"},
		{"Port", "-1"}, {"Nested", "1"}, {"Hidden", "x"}, {"Groups", `[{"Nmae":"x"}]`},
	}})
	require.Error(t, err)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Len(t, inv.Problems, 9, "%v", err)
	for _, want := range []string{
		`Spec.Params[0]: "Replica" is not a parameter; use one of Addr, Enabled, Groups, Hosts, Image, Labels, Mode, Nested.Deep.Name, Nested.Level, Port, Ports, Ptr.Name, Ptr.Size, Ratio, Replicas, Timeout`,
		`Spec.Params[1]: Replicas="two": not an integer`,
		`Spec.Params[2]: Timeout="5 minutes": not a duration; use e.g. 30s, 5m or 1h30m`,
		`Spec.Params[3]: Labels="novalue": use KEY=VALUE`,
		`Spec.Params[4]: Enabled="maybe": not a bool`,
		`Spec.Params[5]: Port="-1": not an unsigned integer of 16 bits`,
		`Spec.Params[6]: "Nested" is a group of parameters`,
		`Spec.Params[7]: "Hidden" is not a parameter`,
		`Spec.Params[8]: Groups=`, `unknown field(s) "[0].Nmae"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Equal(t, []string{"Addr", "Enabled", "Groups", "Hosts", "Image", "Labels", "Mode", "Nested.Deep.Name", "Nested.Level",
		"Port", "Ports", "Ptr.Name", "Ptr.Size", "Ratio", "Replicas", "Timeout"}, d.Info().Paths, "Go names, sorted")
}

// TestBuild_UnknownJSONFieldsAreNamed: every unknown field of ParamsJSON,
// nested ones included, is named.
func TestBuild_UnknownJSONFieldsAreNamed(t *testing.T) {
	d := tiny()
	_, err := d.Build(Spec{Name: "dev", ParamsJSON: []byte(`{"Imgae":"x","Nested":{"Levle":2},"Groups":[{"Name":"a","Szie":1}],"Hidden":"h"}`)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tiny: Spec.ParamsJSON: unknown field(s) "Groups[0].Szie", "Hidden", "Imgae", "Nested.Levle"; the parameters are Addr, `)

	_, err = d.Build(Spec{Name: "dev", ParamsJSON: []byte(`{"Replicas":"two"}`)})
	assert.ErrorContains(t, err, "Spec.ParamsJSON: json: cannot unmarshal")
	_, err = d.Build(Spec{Name: "dev", ParamsJSON: []byte(`{} {}`)})
	assert.ErrorContains(t, err, "Spec.ParamsJSON: invalid character")
}

// TestVersion_RoundTripWithoutSecrets: Version is the environment as
// given, never its secrets; FromVersion rebuilds the same program without
// them (the stack keeps its own); a foreign version is refused.
func TestVersion_RoundTripWithoutSecrets(t *testing.T) {
	const canary = "s3cr3t-canary"
	d := tiny()
	e := Env[params]{Name: "staging", Kubeconfig: kubeconfig(t), Params: params{Replicas: 2}, Secrets: map[string]string{"TOKEN": canary}}
	v := d.Version(e)
	assert.NotContains(t, v, canary)
	assert.NotContains(t, v, "TOKEN")
	js, err := json.Marshal(e)
	require.NoError(t, err)
	assert.NotContains(t, string(js), canary)

	prog, err := d.Program(e)
	require.NoError(t, err)
	assert.Equal(t, v, prog.Version)
	assert.NotContains(t, prog.Version, canary)
	require.Contains(t, prog.Config, SecretsConfigKey)
	assert.True(t, prog.Config[SecretsConfigKey].Secret)
	assert.JSONEq(t, `{"TOKEN":"`+canary+`"}`, prog.Config[SecretsConfigKey].Value)

	back, err := d.FromVersion(v)
	require.NoError(t, err)
	assert.Equal(t, v, back.Version)
	assert.Empty(t, back.Config, "a rebuilt program never overwrites the stack's secrets")
	assert.Equal(t, prog.Stack, back.Stack)

	rel, err := d.Release(e, nil)
	require.NoError(t, err)
	assert.Equal(t, v, rel.Version)
	assert.Equal(t, v, rel.Program.Version)

	_, err = d.FromVersion(`{"Name":"dev","Params":{"Target":"aws"}}`)
	assert.ErrorContains(t, err, `tiny: version is not an encoded tiny environment: unknown field(s) "Params.Target"`)
	_, err = d.FromVersion("v1")
	assert.Error(t, err)
}

// TestProgram_SecretsReachTheProgramAsSecret: Secrets returns the stack's
// secrets as a secret output.
func TestProgram_SecretsReachTheProgramAsSecret(t *testing.T) {
	d := tiny()
	prog, err := d.Program(Env[params]{Name: "dev", Kubeconfig: kubeconfig(t), Secrets: map[string]string{"K": "v"}})
	require.NoError(t, err)
	var got pulumi.StringMapOutput
	d.Run = func(ctx *pulumi.Context, _ Env[params]) error {
		out, ok, err := Secrets(ctx)
		require.True(t, ok)
		got = out
		return err
	}
	prog, err = d.Program(Env[params]{Name: "dev", Kubeconfig: kubeconfig(t), Secrets: map[string]string{"K": "v"}})
	require.NoError(t, err)
	_, err = mocktest.Run(prog.Run, nil, mocktest.Config(map[string]string{SecretsConfigKey: prog.Config[SecretsConfigKey].Value}, SecretsConfigKey))
	require.NoError(t, err)
	values, secret := awaitMap(t, got)
	assert.Equal(t, map[string]string{"K": "v"}, values)
	assert.True(t, secret)
}

// awaitMap resolves an output (mocks have run).
func awaitMap(t *testing.T, o pulumi.StringMapOutput) (map[string]string, bool) {
	t.Helper()
	ch := make(chan map[string]string, 1)
	o.ApplyT(func(m map[string]string) map[string]string { ch <- m; return m })
	select {
	case m := <-ch:
		return m, pulumi.IsSecret(o)
	case <-time.After(10 * time.Second):
		t.Fatal("output never resolved")
		return nil, false
	}
}

// TestProgram_RenderRunsAsItsOwnStack: a rendering environment is stack
// "<name>-render" and its Kubernetes provider writes YAML files.
func TestProgram_RenderRunsAsItsOwnStack(t *testing.T) {
	d := tiny()
	dir := t.TempDir()
	prog, err := d.Program(Env[params]{Name: "dev", RenderDir: dir})
	require.NoError(t, err)
	assert.Equal(t, "dev-render", prog.Stack)
	g, err := mocktest.Run(prog.Run, nil)
	require.NoError(t, err)
	p := g.OfType("pulumi:providers:kubernetes")
	require.Len(t, p, 1)
	assert.Equal(t, dir, p[0].Inputs["renderYamlToDirectory"])
	assert.Nil(t, p[0].Inputs["kubeconfig"])

	kc := kubeconfig(t)
	prog, err = d.Program(Env[params]{Name: "dev", Kubeconfig: kc})
	require.NoError(t, err)
	assert.Equal(t, "dev", prog.Stack)
	g, err = mocktest.Run(prog.Run, nil)
	require.NoError(t, err)
	p = g.OfType("pulumi:providers:kubernetes")
	require.Len(t, p, 1)
	assert.Equal(t, kc, p[0].Inputs["kubeconfig"])
	assert.Equal(t, false, p[0].Inputs["deleteUnreachable"])
	assert.Equal(t, true, p[0].Inputs["enableConfigMapMutable"])

	// No kubeconfig and no render directory: never the ambient cluster.
	prog, err = d.Program(Env[params]{Name: "dev"})
	require.NoError(t, err)
	_, err = mocktest.Run(prog.Run, nil)
	assert.ErrorContains(t, err, "Env.Kubeconfig is empty")
}

func TestCatalog_StandardFour(t *testing.T) {
	d := tiny()
	kc := kubeconfig(t)
	var names []string
	for _, e := range d.Catalog(kc) {
		assert.Equal(t, Kind(e.Name), e.Kind)
		assert.Equal(t, kc, e.Kubeconfig)
		require.NoError(t, d.Check(e))
		names = append(names, e.Name)
	}
	assert.Equal(t, []string{"dev", "qa", "staging", "prod"}, names)
}

func TestBuilder_InfoAndFlags(t *testing.T) {
	var b Builder = tiny()
	info := b.Info()
	assert.Equal(t, "tiny", info.Name)
	assert.Equal(t, "tiny-project", info.Project)
	assert.Equal(t, Param{Path: "image", Value: "x:1"}, info.Flags[0].Param("x:1"))
	p, err := ParseParam("Labels=a=b")
	require.NoError(t, err)
	assert.Equal(t, Param{Path: "Labels", Value: "a=b"}, p)
	_, err = ParseParam("novalue")
	assert.ErrorContains(t, err, "use PATH=VALUE")
	_, err = ParseParam("=x")
	assert.Error(t, err)
}

// TestInfo_PluginsOfEveryKindsDefaults: Info.Plugins are the plugins the
// definition lists for each kind's defaults, once each, sorted; none
// without Plugins.
func TestInfo_PluginsOfEveryKindsDefaults(t *testing.T) {
	d := tiny()
	assert.Equal(t, []automation.Plugin{automation.KubernetesPlugin}, d.Info().Plugins)
	d.Plugins = nil
	assert.Empty(t, d.Info().Plugins, "no Plugins, no plugins")
	aws := automation.Plugin{Name: "aws", Version: "7.0.0"}
	d.Plugins = func(e Env[params]) []automation.Plugin {
		if e.Params.Replicas > 1 { // the prod defaults only
			return []automation.Plugin{automation.KubernetesPlugin, aws}
		}
		return []automation.Plugin{automation.KubernetesPlugin}
	}
	assert.Equal(t, []automation.Plugin{aws, automation.KubernetesPlugin}, d.Info().Plugins)
}

func TestWithAnnotation_KeepsEverythingElse(t *testing.T) {
	props := pulumi.Map{"metadata": pulumi.Map{"name": pulumi.String("x"), "annotations": pulumi.Map{"a": pulumi.String("1")}},
		"data": pulumi.Map{"k": pulumi.String("v")}}
	out := withAnnotation(props, patchForce, "true")
	meta := out["metadata"].(pulumi.Map)
	assert.Equal(t, pulumi.String("x"), meta["name"])
	assert.Equal(t, pulumi.String("1"), meta["annotations"].(pulumi.Map)["a"])
	assert.Equal(t, pulumi.String("true"), meta["annotations"].(pulumi.Map)[patchForce])
	assert.Equal(t, props["data"], out["data"])
	assert.Equal(t, pulumi.Map{"metadata": pulumi.Map{"annotations": pulumi.Map{patchForce: pulumi.String("true")}}},
		withAnnotation(pulumi.Map{}, patchForce, "true"))
	odd := pulumi.Map{"metadata": pulumi.String("not a map")}
	assert.Equal(t, odd, withAnnotation(odd, patchForce, "true"))
}

// TestBuilder_ParamType: each path says how it takes a value, matched as
// Param paths are (Go or JSON name, any case); group and unknown paths fail.
func TestBuilder_ParamType(t *testing.T) {
	var b Builder = tiny()
	for path, want := range map[string]ParamType{
		"image": StringParam, "Replicas": IntParam, "ratio": FloatParam, "Enabled": BoolParam,
		"Timeout": DurationParam, "Port": UintParam, "Mode": StringParam, "Labels": MapParam,
		"Hosts": ListParam, "Ports": ListParam, "Addr": StringParam, "Groups": JSONParam,
		"Nested.Level": IntParam, "nested.deep.name": StringParam,
	} {
		got, err := b.ParamType(path)
		require.NoError(t, err, path)
		assert.Equal(t, want, got, path)
	}
	assert.True(t, MapParam.Repeated())
	assert.True(t, ListParam.Repeated())
	assert.False(t, IntParam.Repeated())
	_, err := b.ParamType("Nested")
	assert.ErrorContains(t, err, "group of parameters")
	_, err = b.ParamType("Nope")
	assert.ErrorContains(t, err, `"Nope" is not a parameter`)
}
