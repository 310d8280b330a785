// Package automation drives Slipway environments through the Pulumi engine
// in-process, with inline programs and the Automation API
// (github.com/pulumi/pulumi/sdk/v3/go/auto).
//
// An Engine owns a directory: each environment gets a workspace of its own
// under it (no workspace.json shared between stacks), and by default the
// state lives in a file backend there. The pulumi CLI, and the Kubernetes
// provider plugin for programs that list KubernetesPlugin, come from package
// toolchain and are built once when missing.
//
// Each verb takes its own options (packages optpreview, optup, optrefresh,
// optdestroy, optdrift and optdeploy), so an option a verb does not support
// does not compile.
//
// This package is the library's front: its entry points are New, the
// Engine's methods and the Stack's. Behind it the work is layered, and a
// call only walks down:
//
//   - internal/engine: the engine core — tools, workspaces, configuration,
//     the backend's store (opened once per operation), observation
//     (spans, metrics, run records, notifications), policy checks, release
//     history reads;
//   - internal/stack: a stack and its operations — open (with recovery),
//     preview, up (which records the release), refresh, destroy, retries,
//     Each;
//   - lifecycle features, each a package on those two and used by none of
//     them: internal/release (Deploy, Rollback), internal/promote (Promote,
//     on release), internal/ephemeral (CreateEphemeral, GC, ...) and
//     internal/drift (CheckDrift, WatchDrift).
package automation
