package automation

import (
	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/ephemeral"
	"github.com/slipwayhq/slipway/automation/internal/promote"
	"github.com/slipwayhq/slipway/automation/internal/release"
	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/releases"
)

// The types below are defined by the layer that makes them (see the
// package documentation) and named here, once, for the library's users.

// Program is one environment's inline program and its stack configuration.
type Program = engine.Program

// ConfigValue is one stack configuration value.
type ConfigValue = engine.ConfigValue

// Plugin names a resource provider plugin and its version.
type Plugin = engine.Plugin

// KubernetesPlugin is the Kubernetes provider plugin that Slipway builds;
// a Program listing it has the engine resolve it before its first run.
var KubernetesPlugin = engine.KubernetesPlugin

// EnvResult is one environment's outcome in a run of Each.
type EnvResult = stack.EnvResult

// Release is one version of an environment: its program and the smoke
// check that must pass after it is applied.
type Release = release.Release

// Deployment is the outcome of Deploy.
type Deployment = release.Deployment

// Stage is one step of a promotion (dev, then staging, then prod): the same
// program with the stage's parameters, and the gates it must pass.
type Stage = promote.Stage

// StageResult is what happened at one stage. Err is the stage's failure as
// it happened, a *PromotionError naming the gate (classify it with the
// predicates, e.g. IsPolicyBlocked); Error is its message, for JSON.
type StageResult = promote.StageResult

// Ephemeral describes an ephemeral environment's lifetime.
type Ephemeral = ephemeral.Ephemeral

// GCResult reports what GC did with one expired environment. Err is the
// failure as it happened (classify it with the predicates, e.g.
// IsStackLocked); Error is its message, for JSON.
type GCResult = ephemeral.GCResult

// Gates of a promotion stage (PromotionError.Gate).
const (
	GatePreview  = promote.GatePreview
	GatePolicy   = promote.GatePolicy
	GateApproval = promote.GateApproval
	GateDeploy   = promote.GateDeploy
)

// Stack tags that mark an ephemeral environment in the backend.
const (
	TagEphemeral = ephemeral.TagEphemeral
	TagExpires   = ephemeral.TagExpires
	TagKey       = ephemeral.TagKey
)

// WeakSecretsWarning is logged, once per engine, when secrets are encrypted
// with an empty passphrase (a local file backend without
// PULUMI_CONFIG_PASSPHRASE).
const WeakSecretsWarning = engine.WeakSecretsWarning

// Release statuses (see package releases). Applied, Verified and Restored
// releases are good: Rollback and Deploy's rollback may restore them.
const (
	// ReleaseApplied: a successful up (no smoke check ran).
	ReleaseApplied = releases.Applied
	// ReleaseVerified: Deploy applied it and its smoke check passed.
	ReleaseVerified = releases.Verified
	// ReleaseRestored: a rollback applied it again.
	ReleaseRestored = releases.Restored
	// ReleaseFailed: Deploy's up or smoke check failed, or a rollback to it failed.
	ReleaseFailed = releases.Failed
	// ReleaseRolledBack: it was good until a rollback replaced it.
	ReleaseRolledBack = releases.RolledBack
)
