package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// TestSpec_EnvironmentsOfOneNameInTwoNamespacesGetTwoStacksAndNamespaces:
// the stack and the web program's target namespace are per namespace and
// name; without a tenant (the CLI) they stay the name's.
func TestSpec_EnvironmentsOfOneNameInTwoNamespacesGetTwoStacksAndNamespaces(t *testing.T) {
	in := v1alpha1.Inputs{Definition: "web", Kind: "dev"}
	a, err := web.Definition.FromSpec(Spec("team-a", "twin", in))
	require.NoError(t, err)
	b, err := web.Definition.FromSpec(Spec("team-b", "twin", in))
	require.NoError(t, err)
	assert.Equal(t, "team-a.twin", a.Stack())
	assert.Equal(t, "team-b.twin", b.Stack())
	a, b = web.Definition.WithDefaults(a), web.Definition.WithDefaults(b)
	assert.NotEqual(t, a.Params.Namespace, b.Params.Namespace)
	assert.Regexp(t, `^slipway-team-a-twin-[0-9a-f]{8}$`, a.Params.Namespace)
	// "team" + "a-twin" reads like "team-a" + "twin" but is another Environment.
	assert.NotEqual(t, stacks.EnvID("team-a", "twin"), stacks.EnvID("team", "a-twin"))
	assert.NotEqual(t, stacks.StackName("team-a", "twin", false), stacks.StackName("team", "a-twin", false))
	long := stacks.EnvID("a-namespace-of-sixty-three-characters-which-is-the-maximum-xyz", "an-environment-name-of-forty-characters")
	assert.LessOrEqual(t, len(long), 40, long)
	assert.Regexp(t, `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, long)
	cli := web.Definition.Env("twin", stacks.Dev)
	assert.Equal(t, "twin", cli.Stack(), "without a tenant nothing changes")
	assert.Equal(t, "slipway-twin", cli.Params.Namespace)
}

func TestCheckKubeconfig_RefusesExecAuthProviderAndFilesNamingTheField(t *testing.T) {
	const head = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
	inline := head + "clusters: [{name: k, cluster: {server: 'https://k.example', certificate-authority-data: Zm9v}}]\n" +
		"users: [{name: u, user: {token: abc}}]\n"
	require.NoError(t, CheckKubeconfig([]byte(inline)))
	for field, user := range map[string]string{
		"exec":               "{exec: {apiVersion: client.authentication.k8s.io/v1, command: touch, args: [/tmp/pwned]}}",
		"auth-provider":      "{auth-provider: {name: gcp}}",
		"tokenFile":          "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}",
		"client-certificate": "{client-certificate: /etc/runner.crt, client-key-data: Zm9v}",
		"client-key":         "{client-key: /etc/runner.key, client-certificate-data: Zm9v}",
	} {
		kc := head + "clusters: [{name: k, cluster: {server: 'https://evil.example'}}]\nusers: [{name: u, user: " + user + "}]\n"
		err := CheckKubeconfig([]byte(kc))
		var fe *FieldError
		require.ErrorAs(t, err, &fe, field)
		assert.Equal(t, "spec.target.kubeconfigSecretRef", fe.Field)
		assert.Contains(t, err.Error(), `users["u"].user.`+field, field)
	}
	ca := head + "clusters: [{name: k, cluster: {server: 'https://k.example', certificate-authority: /etc/ca.crt}}]\nusers: [{name: u, user: {token: abc}}]\n"
	assert.ErrorContains(t, CheckKubeconfig([]byte(ca)), `clusters["k"].cluster.certificate-authority`)
	assert.ErrorContains(t, CheckKubeconfig([]byte("{{{not yaml")), "is not a kubeconfig")
}

func TestCheckEnvKeys_RefusesTheEnginesVariablesByName(t *testing.T) {
	require.NoError(t, CheckEnvKeys("s", []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"}))
	for _, k := range []string{"PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "SLIPWAY_CACHE_DIR", "pulumi_home",
		"LD_PRELOAD", "PATH", "HOME", "KUBECONFIG", "AWS_SHARED_CREDENTIALS_FILE"} {
		err := CheckEnvKeys("state-credentials", []string{"AWS_REGION", k})
		var fe *FieldError
		require.ErrorAs(t, err, &fe, k)
		assert.Equal(t, "spec.backend.envFromSecret", fe.Field)
		assert.Contains(t, err.Error(), k)
		assert.Contains(t, err.Error(), "state-credentials")
		assert.NotContains(t, err.Error(), "AWS_REGION")
	}
}

func TestCheckTarget_RunnerCredentialsOnlyInAllowedNamespaces(t *testing.T) {
	in := v1alpha1.Inputs{Definition: "web"}
	assert.NoError(t, CheckTarget("platform", in, []string{"platform"}))
	err := CheckTarget("team-a", in, []string{"platform"})
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "spec.target.kubeconfigSecretRef", fe.Field)
	assert.Contains(t, err.Error(), "--allow-runner-credentials=team-a")
	assert.Error(t, CheckTarget("team-a", in, nil), "closed by default")
	in.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "t", Key: "k"}
	assert.NoError(t, CheckTarget("team-a", in, nil))
}

// TestAdmit_OnlyRunsTheEnvironmentAskedFor: every way a Run can differ
// from what its Environment asked for is refused, naming why.
func TestAdmit_OnlyRunsTheEnvironmentAskedFor(t *testing.T) {
	in := v1alpha1.Inputs{Definition: "web", Kind: "dev", Params: &apiextensionsv1.JSON{Raw: []byte(`{"App":{"Replicas":2}}`)},
		Backend: v1alpha1.Backend{URL: "file:///state"}, Policy: v1alpha1.Policy{Packs: []string{"kubernetes"}}}
	env := func() *v1alpha1.Environment {
		return &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team-a", UID: "env-uid"},
			Spec:   v1alpha1.EnvironmentSpec{Inputs: *in.DeepCopy()},
			Status: v1alpha1.EnvironmentStatus{ActiveRun: "shop-3", Revision: Revision(in, "c0ffee"), Stack: "slipway/team-a.shop"}}
	}
	run := func() *v1alpha1.Run {
		return &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: "shop-3", Namespace: "team-a",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "slipway.dev/v1alpha1", Kind: "Environment", Name: "shop", UID: "env-uid", Controller: ptr.To(true)}}},
			Spec: v1alpha1.RunSpec{Environment: "shop", Operation: v1alpha1.OpUp, Stack: "slipway/team-a.shop",
				Revision: Revision(in, "c0ffee"), Commit: "c0ffee", Inputs: *in.DeepCopy()}}
	}
	require.NoError(t, Admit(run(), env()))

	// The operator mixes the program's version into the revision and
	// records it in the Run: admitted whatever version the runner has.
	versioned, venv := run(), env()
	versioned.Spec.DefinitionVersion = "build-2"
	versioned.Spec.Revision = RevisionOf(in, "c0ffee", "build-2")
	venv.Status.Revision = versioned.Spec.Revision
	require.NoError(t, Admit(versioned, venv))
	versioned.Spec.DefinitionVersion = "build-3"
	var rej *RejectedError
	require.ErrorAs(t, Admit(versioned, venv), &rej, "a program version that does not hash to the revision")
	assert.Contains(t, rej.Reason, "the inputs were changed")

	for name, tc := range map[string]struct {
		run  func(*v1alpha1.Run)
		env  func(*v1alpha1.Environment)
		want string
	}{
		"no owner":               {run: func(r *v1alpha1.Run) { r.OwnerReferences = nil }, want: "metadata.ownerReferences"},
		"owner not a controller": {run: func(r *v1alpha1.Run) { r.OwnerReferences[0].Controller = nil }, want: "no controller Environment"},
		"owner of another kind":  {run: func(r *v1alpha1.Run) { r.OwnerReferences[0].Kind = "ConfigMap" }, want: "no controller Environment"},
		"other environment":      {run: func(r *v1alpha1.Run) { r.Spec.Environment = "other" }, want: "spec.environment"},
		"environment gone":       {env: nil, want: "does not exist"},
		"earlier environment":    {env: func(e *v1alpha1.Environment) { e.UID = "new-uid" }, want: "UID"},
		"not the active run":     {env: func(e *v1alpha1.Environment) { e.Status.ActiveRun = "shop-4" }, want: "status.activeRun"},
		"an up under the reserved drift name": {env: func(e *v1alpha1.Environment) { e.Status.ActiveRun, e.Status.NextDriftRun = "", "shop-3" },
			want: "status.nextDriftRun"},
		"a drift check under the reserved name while another run is active": {
			run: func(r *v1alpha1.Run) { r.Spec.Operation = v1alpha1.OpDrift },
			env: func(e *v1alpha1.Environment) { e.Status.ActiveRun, e.Status.NextDriftRun = "shop-2", "shop-3" }, want: "status.activeRun"},
		"policy dropped": {run: func(r *v1alpha1.Run) { r.Spec.Policy.Packs = nil }, want: "the inputs were changed"},
		"policy dropped, revision recomputed": {run: func(r *v1alpha1.Run) {
			r.Spec.Policy.Packs = nil
			r.Spec.Revision = Revision(r.Spec.Inputs, r.Spec.Commit)
		}, want: "current revision"},
		"superseded":           {env: func(e *v1alpha1.Environment) { e.Status.Revision = "0123456789abcdef" }, want: "current revision"},
		"another stack":        {run: func(r *v1alpha1.Run) { r.Spec.Stack = "slipway/team-b.shop" }, want: "spec.stack"},
		"destroy not deleting": {run: func(r *v1alpha1.Run) { r.Spec.Operation = v1alpha1.OpDestroy }, want: "being deleted"},
		"destroy other inputs": {
			run: func(r *v1alpha1.Run) { r.Spec.Operation, r.Spec.Backend.URL = v1alpha1.OpDestroy, "file:///elsewhere" },
			env: func(e *v1alpha1.Environment) { e.DeletionTimestamp = ptr.To(metav1.Now()) }, want: "not Environment shop's spec"},
	} {
		t.Run(name, func(t *testing.T) {
			r, e := run(), env()
			if tc.run != nil {
				tc.run(r)
			}
			if name == "environment gone" {
				e = nil
			} else if tc.env != nil {
				tc.env(e)
			}
			err := Admit(r, e)
			var rej *RejectedError
			require.ErrorAs(t, err, &rej)
			assert.Contains(t, rej.Reason, tc.want)
		})
	}

	// The drift check the operator reserved a name for is admitted while
	// no Run is active.
	drift, denv := run(), env()
	drift.Spec.Operation = v1alpha1.OpDrift
	denv.Status.ActiveRun, denv.Status.NextDriftRun = "", "shop-3"
	assert.NoError(t, Admit(drift, denv))

	// A preview may run beside the active Run (it changes nothing) but only
	// with the Environment's inputs; a destroy of a deleted Environment runs.
	p := run()
	p.Name, p.Spec.Operation = "shop-preview", v1alpha1.OpPreview
	assert.NoError(t, Admit(p, env()))
	d, e := run(), env()
	d.Spec.Operation, e.DeletionTimestamp = v1alpha1.OpDestroy, ptr.To(metav1.Now())
	assert.NoError(t, Admit(d, e))
}
