package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Operation is what a Run does.
// +kubebuilder:validation:Enum=preview;up;refresh;drift;destroy
type Operation string

// The operations a Run can do.
const (
	OpPreview Operation = "preview"
	OpUp      Operation = "up"
	OpRefresh Operation = "refresh"
	OpDrift   Operation = "drift"
	OpDestroy Operation = "destroy"
)

// RunPhase is where a Run is in its life.
// +kubebuilder:validation:Enum=Pending;Claimed;Running;Succeeded;Failed
type RunPhase string

// The phases of a Run.
const (
	// RunPending: created, not yet claimed by a runner.
	RunPending RunPhase = "Pending"
	// RunClaimed: a runner holds it (status.runner, and a Lease).
	RunClaimed RunPhase = "Claimed"
	// RunRunning: the engine runs it.
	RunRunning RunPhase = "Running"
	// RunSucceeded: finished without error.
	RunSucceeded RunPhase = "Succeeded"
	// RunFailed: finished with an error (status.reason and message).
	RunFailed RunPhase = "Failed"
)

// Finished reports whether the phase is final.
func (p RunPhase) Finished() bool { return p == RunSucceeded || p == RunFailed }

// Reasons a Run finishes with (status.reason), also used in the
// Environment's conditions.
const (
	ReasonSucceeded     = "Succeeded"
	ReasonFailed        = "Failed"
	ReasonInvalidSpec   = "InvalidSpec"
	ReasonPolicyBlocked = "PolicyBlocked"
	ReasonLocked        = "StackLocked"
	ReasonDriftDetected = "DriftDetected"
	ReasonRemediated    = "Remediated"
	ReasonNoDrift       = "NoDrift"
	// ReasonRejected: a runner refused to execute the Run (not created by
	// its Environment's operator, or its inputs are not the Environment's
	// current revision); nothing ran, and no runner takes it again.
	ReasonRejected = "Rejected"
	// ReasonTimeout: the Run passed spec.timeout and its engine was killed.
	ReasonTimeout = "Timeout"
)

// RunSpec is one operation on one Environment, with the inputs resolved
// when the operator created it: a Run applies exactly what it says, even
// when the Environment changes meanwhile.
type RunSpec struct {
	// Environment is the Environment's name (same namespace).
	// +kubebuilder:validation:MinLength=1
	Environment string `json:"environment"`
	// Operation is what the Run does.
	Operation Operation `json:"operation"`
	// Stack is the state's project/stack for a destroy whose definition is
	// gone: the stack is then destroyed from its state alone.
	// +optional
	Stack string `json:"stack,omitempty"`
	// Revision is the Environment revision the Run applies.
	// +optional
	Revision string `json:"revision,omitempty"`
	// DefinitionVersion is the definition's version the operator mixed into
	// Revision (fleet.RevisionOf), so that a runner can check that the
	// inputs are the revision's whatever version it runs itself.
	// +optional
	DefinitionVersion string `json:"definitionVersion,omitempty"`
	// Commit is the Git commit the parameters came from.
	// +optional
	Commit string `json:"commit,omitempty"`
	// Remediate corrects drift a drift Run finds.
	// +optional
	Remediate bool `json:"remediate,omitempty"`
	// RemoveStack removes the stack from the backend after a destroy.
	// +optional
	RemoveStack bool `json:"removeStack,omitempty"`
	// TTLSecondsAfterFinished deletes the Run this long after it finished
	// (default 3600).
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// Timeout bounds the Run's execution (the Environment's
	// spec.runTimeout; default 1h): the runner kills the engine when it
	// passes and the Run fails with reason Timeout.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.timeout must be between 1s and 24h"
	// +kubebuilder:validation:Type=string
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	Inputs `json:",inline"`
}

// DriftedResource is one resource whose live state differs from the state.
type DriftedResource struct {
	// URN of the resource.
	URN string `json:"urn"`
	// Type is its type token.
	Type string `json:"type,omitempty"`
	// Properties are the differing property paths.
	// +optional
	Properties []string `json:"properties,omitempty"`
}

// Finding is one policy finding of a Run.
type Finding struct {
	// Pack and Policy name the rule.
	Pack   string `json:"pack,omitempty"`
	Policy string `json:"policy"`
	// Enforcement is advisory, mandatory or remediate.
	Enforcement string `json:"enforcement,omitempty"`
	// URN is the resource it is about.
	// +optional
	URN string `json:"urn,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// RunStatus is where a Run is and what it did.
type RunStatus struct {
	// Phase is where the Run is.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`
	// Runner is the identity of the runner that holds (or held) the Run.
	// +optional
	Runner string `json:"runner,omitempty"`
	// RunnerHost is that runner's hostname, which the backend's locks
	// record: when the Run's Lease expires, its locks are proven dead.
	// +optional
	RunnerHost string `json:"runnerHost,omitempty"`
	// Lease is the coordination.k8s.io Lease the runner renews while it
	// holds the Run.
	// +optional
	Lease string `json:"lease,omitempty"`
	// Attempts counts claims; more than one means a runner died.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// ClaimTime, StartTime and CompletionTime are when the Run was
	// claimed, started by the engine, and finished.
	// +optional
	ClaimTime *metav1.Time `json:"claimTime,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Reason is a CamelCase word for the outcome; Message says it in a
	// sentence (never with a secret).
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Changes counts the resource operations by kind (create, update, ...).
	// +optional
	Changes map[string]int `json:"changes,omitempty"`
	// Drift lists what a drift Run found.
	// +optional
	Drift []DriftedResource `json:"drift,omitempty"`
	// Remediated is true when a drift Run corrected what it found.
	// +optional
	Remediated bool `json:"remediated,omitempty"`
	// Findings are the policy findings.
	// +optional
	Findings []Finding `json:"findings,omitempty"`
	// Outputs are the stack's non-secret outputs after an up.
	// +optional
	Outputs map[string]string `json:"outputs,omitempty"`
	// Recovery says what was recovered before the Run (stale locks,
	// pending operations) after a runner died.
	// +optional
	Recovery string `json:"recovery,omitempty"`
	// Stack is the state's project/stack.
	// +optional
	Stack string `json:"stack,omitempty"`
}

// Run is one operation on one Environment, created by the operator and
// executed by a runner.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=slipway
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.environment`
// +kubebuilder:printcolumn:name="Operation",type=string,JSONPath=`.spec.operation`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Runner",type=string,JSONPath=`.status.runner`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Run struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RunSpec   `json:"spec"`
	Status RunStatus `json:"status,omitempty"`
}

// RunList is a list of Runs.
//
// +kubebuilder:object:root=true
type RunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Run `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Run{}, &RunList{})
}
