package automation

import (
	"context"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/drift"
	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/ephemeral"
	"github.com/slipwayhq/slipway/automation/internal/promote"
	"github.com/slipwayhq/slipway/automation/internal/release"
	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/optdeploy"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/policypacks"
)

// Engine runs programs against one backend. It is safe for concurrent use by
// several environments.
type Engine struct{ e *engine.Engine }

// New resolves the pulumi CLI (building it when missing) and returns an
// Engine. The Kubernetes provider plugin is resolved later, by the first
// program that lists KubernetesPlugin.
func New(ctx context.Context, opts ...EngineOption) (*Engine, error) {
	e, err := engine.New(ctx, func(c *engine.Config) {
		for _, o := range opts {
			o(c)
		}
	})
	if err != nil {
		return nil, err
	}
	return &Engine{e: e}, nil
}

// Pulumi returns the pulumi CLI the engine runs: where it is, its version,
// and whether it is Slipway's patched build.
func (e *Engine) Pulumi() toolchain.Pulumi { return e.e.Pulumi() }

// Backend returns the backend URL the engine uses.
func (e *Engine) Backend() string { return e.e.Backend() }

// Dir returns the engine's working directory.
func (e *Engine) Dir() string { return e.e.Dir() }

// Analyzer returns the binary the engine runs as the policy analyzer
// plugin (see WithAnalyzer).
func (e *Engine) Analyzer() string { return e.e.Analyzer() }

// PolicyDir writes a policy pack directory for packs under the engine's
// directory (a PulumiPolicy.yaml and the analyzer entry point that serves
// them with settings s) and returns it, for Program.Policies or
// optup.Policies.
func (e *Engine) PolicyDir(name string, s policypacks.Settings, packs ...*policypacks.Pack) (string, error) {
	return e.e.PolicyDir(name, s, packs...)
}

// UpsertStack opens the program's stack in its own workspace, creating it
// when the backend does not hold it yet, and writes its configuration. Only
// operations that may create an environment (preview, up, deploy,
// ephemeral create) use it; every other operation uses SelectStack.
func (e *Engine) UpsertStack(ctx context.Context, p Program) (*Stack, error) {
	return wrap(stack.Upsert(ctx, e.e, p))
}

// SelectStack opens the program's stack, which must already exist: an
// unknown stack is refused with an *UnknownStackError listing the stacks the
// backend holds, and nothing is created.
func (e *Engine) SelectStack(ctx context.Context, p Program) (*Stack, error) {
	return wrap(stack.Select(ctx, e.e, p))
}

// Stacks lists the stacks of project that the backend holds.
func (e *Engine) Stacks(ctx context.Context, project string) ([]string, error) {
	return e.e.Stacks(ctx, project)
}

// Store opens where the engine keeps Slipway's records — release history,
// run history (package runs), approval requests: the backend itself when it
// has a driver (file, S3), else the engine's directory. The caller closes it.
func (e *Engine) Store(ctx context.Context) (*statestore.Store, error) { return e.e.Store(ctx) }

// Releases returns the release history of a stack, oldest first.
func (e *Engine) Releases(ctx context.Context, project, stack string) ([]releases.Record, error) {
	return e.e.Releases(ctx, project, stack)
}

// LastKnownGood returns the newest good release of a stack, or nil when
// it has none.
func (e *Engine) LastKnownGood(ctx context.Context, project, stack string) (*releases.Record, error) {
	return e.e.LastKnownGood(ctx, project, stack)
}

// Each runs op on every program's stack, at most concurrency at a time
// (all at once when concurrency < 1), and returns one result per program in
// the programs' order. One environment's failure does not stop the others.
func (e *Engine) Each(ctx context.Context, progs []Program, op Op, concurrency int) []EnvResult {
	run := func(ctx context.Context, s *stack.Stack) (*outcome.Result, error) { return op.Run(ctx, &Stack{s: s}) }
	return stack.Each(ctx, e.e, progs, stack.Op{Name: op.Name, Creates: op.Creates, Run: run}, concurrency)
}

// Deploy applies a release: Up, then the smoke check. When both pass the
// release is recorded as verified, the stack's last-known-good. When either
// fails, the attempt is recorded as failed and Deploy re-applies the newest
// good release of another version (rebuilt by lookup from its version)
// unless optdeploy.NoRollback is given, and returns a *ReleaseError saying
// what was restored. The options of optdeploy.Up apply to the release's up
// and to the rollback's.
func (e *Engine) Deploy(ctx context.Context, rel Release, lookup func(version string) (Program, error), opts ...optdeploy.Option) (*Deployment, error) {
	return release.Deploy(ctx, e.e, rel, lookup, opts...)
}

// Rollback restores the stack's previous good release from the release
// history in the backend, so it works from any engine on that backend.
// When the newest release is what the stack runs, Rollback re-applies the
// newest good release before it with another version and marks the newest
// one rolled back; when the newest update failed (or was not recorded), it
// re-applies the newest good release. It returns the release it restored.
func (e *Engine) Rollback(ctx context.Context, project, stack string, lookup func(version string) (Program, error), opts ...optup.Option) (*outcome.Result, *releases.Record, error) {
	return release.Rollback(ctx, e.e, project, stack, lookup, opts...)
}

// Promote runs the stages in order. Each stage must preview cleanly (with its
// policies), be approved when an approval is configured, and deploy with a
// passing smoke check (rolling back on failure, see Deploy); the first stage
// that fails a gate stops the chain, and later stages are not touched. The
// options apply to every stage's preview and up (with the stage's policies
// added, and the up applying exactly the approved plan).
func (e *Engine) Promote(ctx context.Context, stages []Stage, lookup func(version string) (Program, error), opts ...optup.Option) ([]StageResult, error) {
	return promote.Promote(ctx, e.e, stages, lookup, opts...)
}

// CreateEphemeral brings up prog as an ephemeral environment for key (for
// example a pull-request number) that expires after ttl. The expiry is
// recorded as stack tags in the backend, so any process can collect it.
// Calling it again for a live environment updates it and extends the TTL;
// an existing stack without the ephemeral tag is refused with a
// *NotEphemeralError.
func (e *Engine) CreateEphemeral(ctx context.Context, prog Program, key string, ttl time.Duration, opts ...optup.Option) (*outcome.Result, *Ephemeral, error) {
	return ephemeral.Create(ctx, e.e, prog, key, ttl, opts...)
}

// Ephemerals lists the ephemeral environments of project in the backend.
func (e *Engine) Ephemerals(ctx context.Context, project string) ([]Ephemeral, error) {
	return ephemeral.List(ctx, e.e, project)
}

// GC destroys and removes every ephemeral environment of project that
// expired before now, with everything the backend kept of it, at most
// concurrency environments at a time (all at once when concurrency < 1).
// Destroying needs only the state in the backend, not the environment's
// program.
func (e *Engine) GC(ctx context.Context, project string, now time.Time, concurrency int) ([]GCResult, error) {
	return ephemeral.GC(ctx, e.e, project, now, concurrency)
}

// DestroyEphemeral destroys and removes one ephemeral environment, with
// everything the backend kept of it (Pulumi's backups and history,
// Slipway's release and run records, its workspace). A stack the backend
// does not hold is refused with an *UnknownStackError, and one without the
// ephemeral tag with a *NotEphemeralError; neither is touched.
func (e *Engine) DestroyEphemeral(ctx context.Context, project, stack string) (*outcome.Result, error) {
	return ephemeral.Destroy(ctx, e.e, project, stack)
}

// Op is an operation that Each runs on each environment's stack.
type Op struct {
	// Name is the verb: preview, up, refresh or destroy.
	Name string
	// Creates says whether the operation may create a missing stack.
	Creates bool
	// Run runs the operation on one stack.
	Run func(context.Context, *Stack) (*outcome.Result, error)
}

// Up is an Op for Each that runs Stack.Up (creating missing stacks).
func Up(opts ...optup.Option) Op {
	return Op{Name: "up", Creates: true, Run: func(ctx context.Context, s *Stack) (*outcome.Result, error) { return s.Up(ctx, opts...) }}
}

// Preview is an Op for Each that runs Stack.Preview (creating missing stacks).
func Preview(opts ...optpreview.Option) Op {
	return Op{Name: "preview", Creates: true, Run: func(ctx context.Context, s *Stack) (*outcome.Result, error) { return s.Preview(ctx, opts...) }}
}

// Refresh is an Op for Each that runs Stack.Refresh on existing stacks.
func Refresh(opts ...optrefresh.Option) Op {
	return Op{Name: "refresh", Run: func(ctx context.Context, s *Stack) (*outcome.Result, error) { return s.Refresh(ctx, opts...) }}
}

// Destroy is an Op for Each that runs Stack.Destroy on existing stacks.
func Destroy(opts ...optdestroy.Option) Op {
	return Op{Name: "destroy", Run: func(ctx context.Context, s *Stack) (*outcome.Result, error) { return s.Destroy(ctx, opts...) }}
}

// CheckDrift compares live state with the stack's state in preview mode (the
// state is not written), reports every resource whose live properties differ
// from what the engine had recorded, and, with optdrift.Remediate, re-applies the
// program (an up that refreshes first, with the options of optdrift.Up)
// so the engine corrects the live objects.
func (s *Stack) CheckDrift(ctx context.Context, opts ...optdrift.Option) (*outcome.Drift, error) {
	return drift.Check(ctx, s.s, opts...)
}

// WatchDrift runs CheckDrift every interval until ctx ends, handing each
// outcome to fn. A failing check is reported to fn and the loop goes on.
func (s *Stack) WatchDrift(ctx context.Context, interval time.Duration, fn func(*outcome.Drift, error), opts ...optdrift.Option) error {
	return drift.Watch(ctx, s.s, interval, fn, opts...)
}
