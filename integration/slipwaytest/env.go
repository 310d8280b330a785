package slipwaytest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/policypacks"
)

// DefaultProject is the project of programs that name none.
const DefaultProject = "slipwaytest"

// KubeconfigKey is the stack configuration key New sets to the cluster's
// kubeconfig, so a program's default Kubernetes provider targets it.
const KubeconfigKey = "kubernetes:kubeconfig"

// Timeouts of the harness's own engine runs.
const (
	opTimeout      = 30 * time.Minute
	cleanupTimeout = 15 * time.Minute
)

// Env is one environment under test: a stack of its own, on the shared
// cluster (or the one WithKubeconfig names), destroyed when the test ends.
type Env struct {
	// Name is the unique stack name; programs name what they create after
	// it (ctx.Stack()).
	Name string
	// Project is the program's Pulumi project.
	Project string
	// Program is the program as run: unique stack name, kubeconfig in its
	// configuration, policy directories.
	Program automation.Program
	// Engine runs the stack.
	Engine *automation.Engine
	// Stack is the opened stack, for operations the harness does not wrap.
	Stack *automation.Stack
	// Kubeconfig is the path of the target cluster's kubeconfig.
	Kubeconfig string
	// Client is a client-go clientset for the target cluster.
	Client kubernetes.Interface

	t      testing.TB
	rest   *rest.Config
	dir    string // the engine directory New created ("" with WithEngine)
	mu     sync.Mutex
	owned  map[Object]bool // every Kubernetes object seen in the state after an up
	closed bool
}

// Option configures New.
type Option func(*config)

type config struct {
	backend    string
	engine     *automation.Engine
	kubeconfig string
	policies   []policySpec
	noUp       bool
}

type policySpec struct {
	settings policypacks.Settings
	packs    []*policypacks.Pack
}

// WithBackend keeps the state in the given backend (s3://, file://, ...)
// instead of a file backend in a temporary directory.
func WithBackend(url string) Option { return func(c *config) { c.backend = url } }

// WithEngine runs the environment with e (its backend, PULUMI_HOME and
// plugins) instead of a new engine in a temporary directory. Use it for
// programs that need plugins besides Kubernetes, or backend credentials.
func WithEngine(e *automation.Engine) Option { return func(c *config) { c.engine = e } }

// WithKubeconfig targets the cluster of the given kubeconfig instead of the
// package's shared cluster.
func WithKubeconfig(path string) Option { return func(c *config) { c.kubeconfig = path } }

// WithPolicies enforces packs under settings on every preview and up of the
// environment (a pack directory written with Engine.PolicyDir). Packs other
// than Slipway's must also be given to Main, which serves them.
func WithPolicies(s policypacks.Settings, packs ...*policypacks.Pack) Option {
	return func(c *config) { c.policies = append(c.policies, policySpec{s, packs}) }
}

// WithoutUp opens the stack without bringing it up, for tests that start
// with a Preview or call Up with options.
func WithoutUp() Option { return func(c *config) { c.noUp = true } }

// New brings prog up as a new environment and registers its teardown in
// t.Cleanup: destroy, stack removal, then the leak check, which fails the
// test (t.Errorf) listing what remains: the stack in the backend, a lock of
// it, a Kubernetes object the stack owned (still there and not
// terminating), a namespace whose name contains Name. With
// SLIPWAY_TEST_KEEP=1 a failed test's environment is kept instead.
//
// The stack name is prog.Stack (or one derived from t.Name()) plus a random
// suffix, a DNS label of at most 40 characters. The project defaults to
// DefaultProject. New sets KubeconfigKey in the stack configuration unless
// prog sets it, and adds automation.KubernetesPlugin to prog.Plugins.
func New(t testing.TB, prog automation.Program, opts ...Option) *Env {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if prog.Run == nil {
		t.Fatalf("slipwaytest: New: Program.Run is nil; pass the inline pulumi.RunFunc to deploy")
	}
	if prog.Project == "" {
		prog.Project = DefaultProject
	}
	base := prog.Stack
	if base == "" {
		base = t.Name()
	}
	env := &Env{t: t, Name: uniqueName(base), Project: prog.Project, owned: map[Object]bool{}}
	prog.Stack = env.Name
	env.Kubeconfig = c.kubeconfig
	if env.Kubeconfig == "" {
		env.Kubeconfig = Kubeconfig(t)
	}
	var err error
	if env.rest, err = clientcmd.BuildConfigFromFlags("", env.Kubeconfig); err != nil {
		t.Fatalf("slipwaytest: kubeconfig %s: %v", env.Kubeconfig, err)
	}
	if env.Client, err = kubernetes.NewForConfig(env.rest); err != nil {
		t.Fatalf("slipwaytest: client for %s: %v", env.Kubeconfig, err)
	}
	if _, ok := prog.Config[KubeconfigKey]; !ok {
		prog.Config = maps.Clone(prog.Config)
		if prog.Config == nil {
			prog.Config = map[string]automation.ConfigValue{}
		}
		prog.Config[KubeconfigKey] = automation.ConfigValue{Value: env.Kubeconfig}
	}
	if !slices.ContainsFunc(prog.Plugins, func(p automation.Plugin) bool { return p.Name == automation.KubernetesPlugin.Name }) {
		prog.Plugins = append(slices.Clone(prog.Plugins), automation.KubernetesPlugin)
	}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	env.Engine = c.engine
	if env.Engine == nil {
		if env.dir, err = os.MkdirTemp("", "slipwaytest-"+env.Name+"-"); err != nil {
			t.Fatalf("slipwaytest: %v", err)
		}
		eo := []automation.EngineOption{automation.WithDir(env.dir), automation.WithPulumiHome(filepath.Join(env.dir, "pulumi-home"))}
		if c.backend != "" {
			eo = append(eo, automation.WithBackend(c.backend))
		}
		if env.Engine, err = automation.New(ctx, eo...); err != nil {
			_ = os.RemoveAll(env.dir)
			t.Fatalf("slipwaytest: engine: %v", err)
		}
	}
	t.Cleanup(env.cleanup)

	prog.Policies = slices.Clone(prog.Policies)
	for i, p := range c.policies {
		dir, err := env.Engine.PolicyDir(fmt.Sprintf("%s-%d", env.Name, i), p.settings, p.packs...)
		if err != nil {
			t.Fatalf("slipwaytest: WithPolicies: %v", err)
		}
		prog.Policies = append(prog.Policies, dir)
	}
	env.Program = prog
	if env.Stack, err = env.Engine.UpsertStack(ctx, prog); err != nil {
		t.Fatalf("slipwaytest: opening stack %s: %v", env.Name, err)
	}
	if !c.noUp {
		env.Up()
	}
	return env
}

// uniqueName makes a DNS label of at most 40 characters from base and a
// random suffix.
func uniqueName(base string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 34 {
		s = strings.TrimRight(s[:34], "-")
	}
	if s == "" {
		s = "env"
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffix := make([]byte, 5)
	_, _ = rand.Read(suffix)
	for i, c := range suffix {
		suffix[i] = alphabet[int(c)%len(alphabet)]
	}
	return s + "-" + string(suffix)
}

// Up runs an up and returns its result; it fails the test on error.
func (e *Env) Up(opts ...optup.Option) *outcome.Result {
	e.t.Helper()
	res, err := e.UpE(opts...)
	if err != nil {
		e.t.Fatalf("slipwaytest: up of %s: %v", e.Name, err)
	}
	return res
}

// UpE runs an up and returns its result and error. It records the
// Kubernetes objects the stack owns afterwards, for the leak check.
func (e *Env) UpE(opts ...optup.Option) (*outcome.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := e.Stack.Up(ctx, opts...)
	if objs, oerr := ownedObjects(ctx, e.Stack); oerr == nil {
		e.remember(objs)
	} else if err == nil {
		err = fmt.Errorf("slipwaytest: reading the state of %s after up: %w", e.Name, oerr)
	}
	return res, err
}

// Preview runs a preview and returns its result; it fails the test on error.
func (e *Env) Preview(opts ...optpreview.Option) *outcome.Result {
	e.t.Helper()
	res, err := e.PreviewE(opts...)
	if err != nil {
		e.t.Fatalf("slipwaytest: preview of %s: %v", e.Name, err)
	}
	return res
}

// PreviewE runs a preview and returns its result and error.
func (e *Env) PreviewE(opts ...optpreview.Option) (*outcome.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return e.Stack.Preview(ctx, opts...)
}

// Outputs returns the stack's outputs (secret values read mask.Text); it
// fails the test on error.
func (e *Env) Outputs() map[string]any {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := e.Stack.Outputs(ctx)
	if err != nil {
		e.t.Fatalf("slipwaytest: outputs of %s: %v", e.Name, err)
	}
	return out
}

// Output returns the stack output key as a T. A value of another type is
// converted through JSON when it represents a T (a number as an int, an
// object as a struct or map, a list as a slice); otherwise the test fails
// naming the key, the value's type and T. A missing key fails the test,
// listing the outputs there are.
func Output[T any](e *Env, key string) T {
	e.t.Helper()
	var zero T
	want := reflect.TypeFor[T]()
	outs := e.Outputs()
	v, ok := outs[key]
	if !ok {
		keys := slices.Sorted(maps.Keys(outs))
		e.t.Fatalf("slipwaytest: stack %s has no output %q (it has: %s)", e.Name, key, strings.Join(keys, ", "))
		return zero
	}
	if tv, ok := v.(T); ok {
		return tv
	}
	if v == nil {
		switch want.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
			return zero
		}
		e.t.Fatalf("slipwaytest: output %q of %s is null, not %s", key, e.Name, want)
		return zero
	}
	var out T
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		hint := ""
		if v == mask.Text {
			hint = " (a secret output: the harness reads it masked)"
		}
		e.t.Fatalf("slipwaytest: output %q of %s is %T (%s)%s, not %s", key, e.Name, v, clip(fmt.Sprint(v), 80), hint, want)
		return zero
	}
	return out
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// remember adds objects to those the leak check looks for.
func (e *Env) remember(objs []Object) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range objs {
		e.owned[o] = true
	}
}

// cleanup destroys and removes the stack, then runs the leak check; with
// SLIPWAY_TEST_KEEP=1 a failed test's environment is kept and described.
func (e *Env) cleanup() {
	t := e.t
	e.mu.Lock()
	done := e.closed
	e.closed = true
	e.mu.Unlock()
	if done {
		return
	}
	if os.Getenv(KeepEnv) == "1" && t.Failed() {
		t.Logf("%s", e.keptMessage())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := e.destroy(ctx); err != nil {
		t.Errorf("slipwaytest: destroying %s: %v", e.Name, err)
	}
	if leaks := e.leaks(ctx); len(leaks) > 0 {
		t.Errorf("slipwaytest: environment %s left %d thing(s) behind:\n  - %s", e.Name, len(leaks), strings.Join(leaks, "\n  - "))
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// keptMessage says where a kept environment is and how to destroy it.
func (e *Env) keptMessage() string {
	ws := filepath.Join(e.Engine.Dir(), "workspaces", e.Project, e.Name)
	env := "PULUMI_BACKEND_URL=" + e.Engine.Backend() + ` PULUMI_CONFIG_PASSPHRASE="$PULUMI_CONFIG_PASSPHRASE"`
	var b strings.Builder
	fmt.Fprintf(&b, "slipwaytest: %s=1 and the test failed, so environment %s is kept:\n", KeepEnv, e.Name)
	fmt.Fprintf(&b, "  stack:       %s/%s\n", e.Project, e.Name)
	fmt.Fprintf(&b, "  backend:     %s\n", e.Engine.Backend())
	fmt.Fprintf(&b, "  workspace:   %s\n", ws)
	if e.dir != "" {
		home := filepath.Join(e.dir, "pulumi-home")
		fmt.Fprintf(&b, "  PULUMI_HOME: %s\n", home)
		env = "PULUMI_HOME=" + home + " " + env
	}
	fmt.Fprintf(&b, "  kubeconfig:  %s\n", e.Kubeconfig)
	fmt.Fprintf(&b, "  destroy it:  cd %s && %s pulumi destroy --remove --yes --stack %s\n", ws, env, e.Name)
	fmt.Fprintf(&b, "  (the package's local cluster stops when its tests end; to inspect the objects, run the tests against "+
		"a cluster of yours with %s)", KubeconfigEnv)
	return b.String()
}

// destroy destroys and removes the stack when the backend still holds it,
// recording what it owned first.
func (e *Env) destroy(ctx context.Context) error {
	if e.Stack == nil {
		return nil
	}
	names, err := e.Engine.Stacks(ctx, e.Project)
	if err != nil {
		return err
	}
	if !slices.Contains(names, e.Name) {
		return nil // removed by the test itself
	}
	if objs, err := ownedObjects(ctx, e.Stack); err == nil {
		e.remember(objs)
	}
	_, err = e.Stack.Destroy(ctx, optdestroy.RemoveStack())
	return err
}

// leaks lists what the environment left behind.
func (e *Env) leaks(ctx context.Context) []string {
	var out []string
	names, err := e.Engine.Stacks(ctx, e.Project)
	switch {
	case err != nil:
		out = append(out, fmt.Sprintf("the stacks of backend %s could not be listed: %v", e.Engine.Backend(), err))
	case slices.Contains(names, e.Name):
		out = append(out, fmt.Sprintf("stack %s/%s is still in backend %s", e.Project, e.Name, e.Engine.Backend()))
	}
	store, err := statestore.Open(ctx, e.Engine.Backend(), nil)
	switch {
	case errors.Is(err, statestore.ErrUnsupported):
		// The service manages locks itself.
	case err != nil:
		out = append(out, fmt.Sprintf("the locks of backend %s could not be read: %v", e.Engine.Backend(), err))
	default:
		locks, err := store.Locks(ctx, e.Project, e.Name)
		if err != nil {
			out = append(out, fmt.Sprintf("the locks of stack %s could not be listed: %v", e.Name, err))
		}
		for _, l := range locks {
			out = append(out, fmt.Sprintf("lock %s of stack %s remains (held by %s)", store.Location(l.Key), e.Name, l.Owner()))
		}
		_ = store.Close()
	}
	e.mu.Lock()
	owned := slices.SortedFunc(maps.Keys(e.owned), func(a, b Object) int { return strings.Compare(a.String(), b.String()) })
	e.mu.Unlock()
	k, err := e.kube()
	if err != nil {
		return append(out, fmt.Sprintf("the cluster of %s could not be checked: %v", e.Kubeconfig, err))
	}
	for _, o := range owned {
		live, err := k.live(ctx, o)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s could not be checked: %v", o, err))
		case live:
			out = append(out, fmt.Sprintf("%s, owned by the stack, still exists", o))
		}
	}
	nss, err := k.namespaces(ctx, e.Name)
	if err != nil {
		out = append(out, fmt.Sprintf("the namespaces could not be listed: %v", err))
	}
	for _, ns := range nss {
		o := Object{APIVersion: "v1", Kind: "Namespace", Name: ns}
		if !slices.Contains(owned, o) { // already reported above
			out = append(out, fmt.Sprintf("namespace %s (its name contains %s) still exists", ns, e.Name))
		}
	}
	sort.Strings(out)
	return out
}
