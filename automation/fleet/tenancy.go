package fleet

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// What keeps the tenants of one fleet (the namespaces holding
// Environments) apart, checked by the operator before it creates a Run and
// again by the runner before it executes one (a Run is input the runner
// does not trust):
//
//   - every Environment has its own stack and derived object names
//     (Spec sets the namespace as the stacks.Spec's Tenant);
//   - a target kubeconfig carries its credentials inline (CheckKubeconfig):
//     nothing in it makes the runner run a command or read a file of its own;
//   - a program runs with the runners' own cluster credentials only in the
//     namespaces the operator and the runners were started to allow
//     (CheckTarget, --allow-runner-credentials);
//   - spec.backend.envFromSecret never sets the engine's own variables
//     (CheckEnvKeys).

// AllowRunnerCredentialsFlag is the operator's and runner's flag that lists
// the namespaces whose Environments may omit spec.target.kubeconfigSecretRef
// and so run their programs with the runners' own cluster credentials.
const AllowRunnerCredentialsFlag = "--allow-runner-credentials"

// CheckTarget refuses an Environment of namespace that gives no
// spec.target.kubeconfigSecretRef unless allowed lists namespace: its
// program would otherwise act with the runners' own service account, which
// can read every tenant's Secrets. The error is a *FieldError on
// spec.target.kubeconfigSecretRef naming AllowRunnerCredentialsFlag.
func CheckTarget(namespace string, in v1alpha1.Inputs, allowed []string) error {
	if in.Target.KubeconfigSecretRef != nil || slices.Contains(allowed, namespace) {
		return nil
	}
	return &FieldError{Field: "spec.target.kubeconfigSecretRef", Err: fmt.Errorf(
		"is unset, and namespace %q may not run programs with the runners' own cluster credentials; "+
			"set it to a Secret key holding the target cluster's kubeconfig, or start the operator and the runners with %s=%s",
		namespace, AllowRunnerCredentialsFlag, namespace)}
}

// engineVarsAllowed are the engine variables spec.backend.envFromSecret may
// set, each a credential of the Environment's own backend rather than a
// setting of the engine: the passphrase of the stack's secrets provider (the
// documented way to pass it to the pulumi CLI; the runner hands it to the
// engine as its passphrase, like spec.backend.passphraseSecretRef) and the
// token of a Pulumi Cloud (https://) backend.
var engineVarsAllowed = map[string]bool{"PULUMI_CONFIG_PASSPHRASE": true, "PULUMI_ACCESS_TOKEN": true}

// processVars are variables of the engine's process that no backend needs
// and that would change what the runner executes or which of its files the
// engine reads.
var processVars = map[string]bool{"PATH": true, "HOME": true, "KUBECONFIG": true}

// CheckEnvKeys refuses keys of the Secret spec.backend.envFromSecret names
// that would set the engine's own variables: PULUMI_* (except
// PULUMI_CONFIG_PASSPHRASE and PULUMI_ACCESS_TOKEN, the backend's
// credentials), SLIPWAY_*, the dynamic loader's LD_*, PATH, HOME,
// KUBECONFIG, and any *_FILE (a path the engine would read on the runner).
// The error is a *FieldError on spec.backend.envFromSecret naming every
// refused key (keys, never values).
func CheckEnvKeys(secret string, keys []string) error {
	var bad []string
	for _, k := range keys {
		u := strings.ToUpper(k)
		switch {
		case engineVarsAllowed[u] && u == k:
		case strings.HasPrefix(u, "PULUMI_"), strings.HasPrefix(u, "SLIPWAY_"), strings.HasPrefix(u, "LD_"),
			processVars[u], strings.HasSuffix(u, "_FILE"), engineVarsAllowed[u]:
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return &FieldError{Field: "spec.backend.envFromSecret", Err: fmt.Errorf(
		"Secret %s sets %s, which the engine sets itself; remove them from the Secret (only PULUMI_CONFIG_PASSPHRASE and PULUMI_ACCESS_TOKEN "+
			"of the engine's variables may be given, and no *_FILE, LD_*, PATH, HOME or KUBECONFIG)", secret, strings.Join(bad, ", "))}
}

// CheckKubeconfig accepts a target kubeconfig (the content of
// spec.target.kubeconfigSecretRef) only when its credentials are inline:
// it refuses, naming the entry and the field, every user with exec,
// auth-provider, tokenFile, client-certificate or client-key, and every
// cluster with certificate-authority (files). Those would run a command in
// the runner or read a file of the runner's (such as its service account's
// token) and send it to a server the tenant chose. The error is a
// *FieldError on spec.target.kubeconfigSecretRef.
func CheckKubeconfig(b []byte) error {
	c, err := clientcmd.Load(b)
	if err != nil {
		return &FieldError{Field: "spec.target.kubeconfigSecretRef", Err: errors.New("is not a kubeconfig; give one with inline credentials (token, client-certificate-data, ...)")}
	}
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(c.AuthInfos)) {
		a := c.AuthInfos[name]
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"exec", a.Exec != nil}, {"auth-provider", a.AuthProvider != nil}, {"tokenFile", a.TokenFile != ""},
			{"client-certificate", a.ClientCertificate != ""}, {"client-key", a.ClientKey != ""},
		} {
			if f.set {
				bad = append(bad, fmt.Sprintf("users[%q].user.%s", name, f.field))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Clusters)) {
		if c.Clusters[name].CertificateAuthority != "" {
			bad = append(bad, fmt.Sprintf("clusters[%q].cluster.certificate-authority", name))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &FieldError{Field: "spec.target.kubeconfigSecretRef", Err: fmt.Errorf(
		"the kubeconfig sets %s; only inline credentials are accepted (token, username/password, client-certificate-data, client-key-data, "+
			"certificate-authority-data): a command or a file would run or be read on the runner", strings.Join(bad, ", "))}
}

// RejectedError is why a runner refuses to execute a Run (see Admit).
// Get it with errors.As.
type RejectedError struct {
	// Reason says why, in a sentence naming the field.
	Reason string
}

// Error implements error.
func (e *RejectedError) Error() string { return "run rejected: " + e.Reason }

func reject(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

// Admit reports whether run is one its Environment asked for, with env the
// Environment named by the Run's controller ownerReference as the API
// server holds it now (nil when it does not exist): a runner executes a
// Run only then, so a Run made by hand can bring neither its own inputs
// nor its own policy, nor break the Environment's one-Run rule. It refuses
// (a *RejectedError naming the field) a Run
//
//   - without a controller ownerReference to an Environment, or whose
//     Environment does not exist, has another UID (an earlier Environment
//     of that name), or is not spec.environment;
//   - that changes the stack (any operation but preview) and is not the
//     Environment's status.activeRun — or, a drift check while no Run is
//     active, its status.nextDriftRun;
//   - whose spec.stack is not the Environment's status.stack;
//   - up, drift, refresh or preview: whose inputs and commit do not hash to
//     its spec.revision (RevisionOf with spec.definitionVersion), or whose spec.revision is not the
//     Environment's status.revision;
//   - destroy: of an Environment that is not being deleted, or whose inputs
//     are not the Environment's spec.
func Admit(run *v1alpha1.Run, env *v1alpha1.Environment) error {
	owner := metav1.GetControllerOf(run)
	if owner == nil || owner.Kind != "Environment" || !strings.HasPrefix(owner.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		return reject("metadata.ownerReferences: the run has no controller Environment; runners execute only Runs an Environment's operator created")
	}
	if owner.Name != run.Spec.Environment {
		return reject("spec.environment %q is not the run's controller Environment %q", run.Spec.Environment, owner.Name)
	}
	if env == nil {
		return reject("metadata.ownerReferences: Environment %s/%s does not exist", run.Namespace, owner.Name)
	}
	if env.UID != owner.UID {
		return reject("metadata.ownerReferences: Environment %s/%s has UID %s, not the run's %s (an earlier Environment of that name)", run.Namespace, owner.Name, env.UID, owner.UID)
	}
	op := run.Spec.Operation
	reserved := op == v1alpha1.OpDrift && env.Status.ActiveRun == "" && env.Status.NextDriftRun == run.Name
	if op != v1alpha1.OpPreview && env.Status.ActiveRun != run.Name && !reserved {
		return reject("the run is not Environment %s's active run (status.activeRun %q) nor, as a drift check, its status.nextDriftRun %q; only the operator starts runs that change its stack",
			env.Name, env.Status.ActiveRun, env.Status.NextDriftRun)
	}
	if env.Status.Stack != "" && run.Spec.Stack != env.Status.Stack {
		return reject("spec.stack %q is not Environment %s's stack %q", run.Spec.Stack, env.Name, env.Status.Stack)
	}
	if op == v1alpha1.OpDestroy {
		if env.DeletionTimestamp.IsZero() {
			return reject("spec.operation: a destroy runs only when Environment %s is being deleted", env.Name)
		}
		if !equality.Semantic.DeepEqual(run.Spec.Inputs, env.Spec.Inputs) {
			return reject("the destroy's inputs (spec.definition, params, secrets, target, backend, policy) are not Environment %s's spec", env.Name)
		}
		return nil
	}
	if got := RevisionOf(run.Spec.Inputs, run.Spec.Commit, run.Spec.DefinitionVersion); got != run.Spec.Revision {
		return reject("spec.revision %q is not the revision of the run's inputs and commit (%s): the inputs were changed", run.Spec.Revision, got)
	}
	if run.Spec.Revision != env.Status.Revision {
		return reject("spec.revision %q is not Environment %s's current revision %q", run.Spec.Revision, env.Name, env.Status.Revision)
	}
	return nil
}
