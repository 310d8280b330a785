package v1alpha1

import (
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of an Environment.
const (
	// ConditionReady is True when the last up applied the current revision.
	ConditionReady = "Ready"
	// ConditionReconciling is True while a Run of the Environment is
	// pending or running.
	ConditionReconciling = "Reconciling"
	// ConditionDrifted is True when the last drift check found live
	// objects that differ from the state and did not correct them.
	ConditionDrifted = "Drifted"
	// ConditionPolicyBlocked is True when policy blocked the last run.
	ConditionPolicyBlocked = "PolicyBlocked"
	// ConditionStalled is True when the operator stopped trying: the spec
	// is invalid, policy blocks it, or runs failed Retry.MaxFailures times
	// in a row. A spec change, the retry annotation or a new revision (a
	// new Git commit, or a new version of the definition in the operator's
	// binary) clears it.
	ConditionStalled = "Stalled"
)

// Finalizer is the finalizer the operator puts on every Environment so its
// stack is destroyed (or, by spec.deletionPolicy, orphaned) before the
// object goes.
const Finalizer = "slipway.dev/destroy"

// SecretFinalizerPrefix, followed by an Environment's name, is the
// finalizer the operator puts on the Secrets that Environment's destroy
// reads (backend credentials, passphrase, kubeconfig, program secrets);
// it is removed once the stack is destroyed or orphaned.
const SecretFinalizerPrefix = "slipway.dev/env-"

// RetryAnnotation asks the operator to try a Stalled Environment again:
// set it to any new value (e.g. a timestamp).
const RetryAnnotation = "slipway.dev/retry"

// SecretKeyRef selects one key of a Secret in the object's namespace.
type SecretKeyRef struct {
	// Name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key is the key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// SecretValue is one secret the program receives (stacks.Env.Secrets),
// read from a Secret when a Run starts. Its value never reaches status,
// Events or logs.
type SecretValue struct {
	// Name is the secret's name as the program reads it.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// ValueFrom is the Secret key holding the value.
	ValueFrom SecretKeyRef `json:"valueFrom"`
}

// Target is the cluster a program's Kubernetes objects go to.
type Target struct {
	// KubeconfigSecretRef is a Secret key holding the target cluster's
	// kubeconfig, with inline credentials only (token, username/password,
	// client-certificate-data, client-key-data, certificate-authority-data):
	// exec, auth-provider, tokenFile and every file (client-certificate,
	// client-key, certificate-authority) are refused, naming the entry.
	// Without it, the runners' own cluster credentials are used, only in
	// namespaces the operator and runners allow (--allow-runner-credentials);
	// elsewhere the Environment is refused.
	// +optional
	KubeconfigSecretRef *SecretKeyRef `json:"kubeconfigSecretRef,omitempty"`
}

// Backend is where the environment's state lives.
type Backend struct {
	// URL is the Pulumi state backend: s3://bucket?endpoint=... or
	// file:///path (on a volume every runner shares). Only these two: a
	// runner that takes over the Run of a dead runner must be able to
	// prove the dead runner's stack lock stale and remove it, which the
	// fleet does for file:// and s3:// only (gs://, azblob:// and
	// https:// are refused).
	// +kubebuilder:validation:Pattern=`^(s3|file)://`
	URL string `json:"url"`
	// PassphraseSecretRef is the Secret key holding the passphrase of the
	// stack's secrets provider.
	// +optional
	PassphraseSecretRef *SecretKeyRef `json:"passphraseSecretRef,omitempty"`
	// EnvFromSecret names a Secret whose keys become environment variables
	// of the engine (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// PULUMI_ACCESS_TOKEN). The engine's own variables are refused by name:
	// PULUMI_* (but PULUMI_ACCESS_TOKEN and PULUMI_CONFIG_PASSPHRASE),
	// SLIPWAY_*, LD_*, PATH, HOME, KUBECONFIG and any *_FILE.
	// +optional
	EnvFromSecret string `json:"envFromSecret,omitempty"`
}

// Policy is the policy packs every run that can change the environment
// must pass.
type Policy struct {
	// Packs are names of policy packs compiled into the binary.
	// +optional
	Packs []string `json:"packs,omitempty"`
	// Settings are the packs' settings (policypacks.Settings, as JSON):
	// levels per kind and per-policy overrides.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	Settings *apiextensionsv1.JSON `json:"settings,omitempty"`
}

// Inputs is what a run of an environment is built from; an Environment
// holds them as the user wrote them, and each Run a resolved copy (the
// parameters merged with its Git source's file).
type Inputs struct {
	// Definition is the name of an environment definition (a
	// stacks.Builder) compiled into the operator's and runners' binary,
	// e.g. "web".
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Definition string `json:"definition"`
	// Kind selects the parameters' defaults and guards (default: the
	// Environment's name when it is a kind, or the definition's own mapping;
	// any other name without a kind is refused, never given dev's guards).
	// +kubebuilder:validation:Enum=dev;qa;staging;prod;ephemeral
	// +optional
	Kind string `json:"kind,omitempty"`
	// Params are the definition's parameters as a JSON object; unset fields
	// take the kind's defaults. Unknown fields are refused with a
	// condition naming them.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	Params *apiextensionsv1.JSON `json:"params,omitempty"`
	// Secrets are the program's secrets, read from Secrets.
	// +listType=map
	// +listMapKey=name
	// +optional
	Secrets []SecretValue `json:"secrets,omitempty"`
	// Target is the cluster the program's Kubernetes objects go to.
	// +optional
	Target Target `json:"target,omitempty"`
	// Backend is where the state lives.
	Backend Backend `json:"backend"`
	// Policy is what every change must pass.
	// +optional
	Policy Policy `json:"policy,omitempty"`
}

// DriftCheck schedules drift detection.
type DriftCheck struct {
	// Interval between checks, e.g. "10m". The checks of a fleet are
	// spread over the interval: each Environment checks at its own slot
	// in it (from a hash of its namespace and name), the first time ½ to
	// 1½ intervals after an up.
	Interval metav1.Duration `json:"interval"`
	// Remediate re-applies the program when drift is found (under its
	// policies); otherwise drift is only reported (condition Drifted).
	// +optional
	Remediate bool `json:"remediate,omitempty"`
}

// GitRef is a branch, tag or commit; exactly one is set.
// +kubebuilder:validation:XValidation:rule="[has(self.branch), has(self.tag), has(self.commit)].filter(x, x).size() == 1",message="set exactly one of branch, tag or commit"
type GitRef struct {
	// Branch follows a branch's head.
	// +optional
	Branch string `json:"branch,omitempty"`
	// Tag pins a tag.
	// +optional
	Tag string `json:"tag,omitempty"`
	// Commit pins a commit (a full 40-character SHA-1).
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{40}$`
	// +optional
	Commit string `json:"commit,omitempty"`
}

// GitSource takes the parameters from a file in a Git repository.
type GitSource struct {
	// URL is the repository (https://, http:// or ssh://).
	// +kubebuilder:validation:Pattern=`^(https?|ssh)://`
	URL string `json:"url"`
	// Ref is what to follow.
	Ref GitRef `json:"ref"`
	// Path is the parameters file (JSON or YAML) in the repository; its
	// object is merged over spec.params.
	// +kubebuilder:validation:MinLength=1
	Path string `json:"path"`
	// Interval between polls (default 1m).
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// SecretRef names a Secret with the credentials: username and
	// password (or a token as password) for HTTP(S), identity (a private
	// key) and known_hosts for SSH.
	// +optional
	SecretRef string `json:"secretRef,omitempty"`
}

// RetryPolicy is the back-off after failed runs.
type RetryPolicy struct {
	// Backoff is the wait after the first failure; it doubles after each
	// further one (default 10s).
	// +optional
	Backoff *metav1.Duration `json:"backoff,omitempty"`
	// MaxBackoff caps the wait (default 5m).
	// +optional
	MaxBackoff *metav1.Duration `json:"maxBackoff,omitempty"`
	// MaxFailures in a row make the Environment Stalled (default 5).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxFailures *int32 `json:"maxFailures,omitempty"`
}

// EnvironmentSpec is the desired state of an Environment.
type EnvironmentSpec struct {
	Inputs `json:",inline"`
	// Drift schedules drift checks.
	// +optional
	Drift *DriftCheck `json:"drift,omitempty"`
	// TTL deletes the Environment (destroying its resources) this long
	// after its creation.
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
	// Source takes the parameters from Git; a new commit triggers an up.
	// +optional
	Source *GitSource `json:"source,omitempty"`
	// Retry is the back-off after failures.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
	// Suspend stops new runs (a running one finishes); deletion still
	// follows spec.deletionPolicy.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Lifecycle (issue 18 section 4): what deletion does, and how long one
	// Run may take.

	// DeletionPolicy is what deleting the Environment does to its stack:
	// destroy (a destroy Run, then the finalizer goes) or orphan (the
	// finalizer goes at once; the stack and its resources are kept, and an
	// Event says where). Unset: destroy, except for a prod-kind
	// Environment (or one whose kind cannot be resolved), which is
	// orphaned unless this says destroy.
	// +kubebuilder:validation:Enum=destroy;orphan
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// RunTimeout bounds each Run: when it passes, the runner kills the
	// engine and the Run fails with reason Timeout (then back-off applies).
	// Between 1s and 24h (default 1h).
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.runTimeout must be between 1s and 24h, e.g. 1h"
	// +kubebuilder:validation:Type=string
	// +optional
	RunTimeout *metav1.Duration `json:"runTimeout,omitempty"`
}

// DeletionPolicy is what deleting an Environment does to its stack.
type DeletionPolicy string

// Deletion policies.
const (
	// DeletionDestroy destroys the stack before the Environment goes.
	DeletionDestroy DeletionPolicy = "destroy"
	// DeletionOrphan keeps the stack and its resources.
	DeletionOrphan DeletionPolicy = "orphan"
)

// DefaultRunTimeout bounds a Run whose spec.timeout (an Environment's
// spec.runTimeout) is unset.
const DefaultRunTimeout = time.Hour

// RunRef is a short record of a Run.
type RunRef struct {
	// Name of the Run.
	Name string `json:"name"`
	// Operation it ran.
	Operation Operation `json:"operation"`
	// Phase it reached.
	Phase RunPhase `json:"phase,omitempty"`
	// Reason and Message are the Run's.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// CompletionTime is when it finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// EnvironmentStatus is the observed state of an Environment.
type EnvironmentStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are Ready, Reconciling, Drifted, PolicyBlocked, Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Stack is the state's project/stack, recorded at the first run, so
	// the stack can be destroyed even when its definition is gone.
	// +optional
	Stack string `json:"stack,omitempty"`
	// Revision is the revision the spec and source ask for.
	// +optional
	Revision string `json:"revision,omitempty"`
	// LastAppliedRevision is the revision the last successful up applied.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// SourceRevision is the last Git commit fetched.
	// +optional
	SourceRevision string `json:"sourceRevision,omitempty"`
	// LastAppliedCommit is the Git commit the last successful up applied.
	// +optional
	LastAppliedCommit string `json:"lastAppliedCommit,omitempty"`
	// ActiveRun is the Run in flight (at most one per Environment).
	// +optional
	ActiveRun string `json:"activeRun,omitempty"`
	// NextDriftRun is the name reserved for the next drift check, set when
	// the last Run is folded: at its slot the operator creates that Run
	// without writing the status first (runners admit a drift Run of this
	// name as they admit the active run), so a routine check costs three
	// writes. While it runs, activeRun stays empty; the Environment waits
	// for it like for the active run.
	// +optional
	NextDriftRun string `json:"nextDriftRun,omitempty"`
	// RunCount numbers the Environment's Runs (their names end with it).
	// +optional
	RunCount int64 `json:"runCount,omitempty"`
	// LastRun is the last finished Run.
	// +optional
	LastRun *RunRef `json:"lastRun,omitempty"`
	// Failures counts failed runs in a row.
	// +optional
	Failures int32 `json:"failures,omitempty"`
	// NextAttempt is when the next run may start after a failure.
	// +optional
	NextAttempt *metav1.Time `json:"nextAttempt,omitempty"`
	// LastDriftCheck is when the last drift check finished.
	// +optional
	LastDriftCheck *metav1.Time `json:"lastDriftCheck,omitempty"`
	// ExpiresAt is when the TTL deletes the Environment.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// RetryToken is the last value of the retry annotation acted on.
	// +optional
	RetryToken string `json:"retryToken,omitempty"`
	// Outputs are the stack's non-secret outputs after the last up.
	// +optional
	Outputs map[string]string `json:"outputs,omitempty"`
	// ProtectedSecrets are the Secrets the Environment's destroy needs
	// that carry its finalizer (SecretFinalizerPrefix + name), so deleting
	// the namespace cannot take them before the destroy ran.
	// +optional
	ProtectedSecrets []string `json:"protectedSecrets,omitempty"`
}

// Environment is one environment Slipway keeps reconciled: a registered
// definition with parameters, applied by Runs.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=senv,categories=slipway
// +kubebuilder:printcolumn:name="Definition",type=string,JSONPath=`.spec.definition`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Run",type=string,JSONPath=`.status.activeRun`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 40",message="metadata.name names the stack: use a DNS label of at most 40 characters"
type Environment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EnvironmentSpec   `json:"spec"`
	Status EnvironmentStatus `json:"status,omitempty"`
}

// EnvironmentList is a list of Environments.
//
// +kubebuilder:object:root=true
type EnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Environment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Environment{}, &EnvironmentList{})
}
