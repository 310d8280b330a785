package fleet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	tree "github.com/slipwayhq/slipway/automation/proctree"
	"github.com/slipwayhq/slipway/integration/internal/proctree"
)

// The fencing tests run two runner processes of their own per test, each
// in a UTS namespace of its own with a distinct host name (as on two
// nodes) and its own S3 access key, which the engine inherits (the
// Environment's backend Secret sets none): the S3 server's write log then
// tells which runner's engine wrote what, and in which order.
const (
	fenceLease = 6 * time.Second
	fenceRenew = 3 * time.Second
	// fenceLabel marks the tests' namespaces; a ValidatingAdmissionPolicy
	// keeps the package's shared runners out of them.
	fenceLabel = "slipway.dev/fence-test"
)

// s3Write is one PUT, POST or DELETE the S3 server served. begin and end
// are positions in the log's sequence: end is taken after the store
// answered.
type s3Write struct {
	key, method, path string
	status            int
	begin, end        int64
}

// writeLog records every write to the S3 server with the access key that
// signed it; hooks (by access key) see a write before the store does.
type writeLog struct {
	mu     sync.Mutex
	seq    int64
	writes []s3Write
	hooks  map[string]func(r *http.Request, body []byte)
}

var (
	fenceLog     = &writeLog{hooks: map[string]func(*http.Request, []byte){}}
	fenceLogOnce sync.Once
	fencePolicy  sync.Once
)

// accessKey is the access key of a SigV4 Authorization header.
func accessKey(r *http.Request) string {
	a := r.Header.Get("Authorization")
	i := strings.Index(a, "Credential=")
	if i < 0 {
		return ""
	}
	c := a[i+len("Credential="):]
	if j := strings.IndexByte(c, '/'); j >= 0 {
		return c[:j]
	}
	return c
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (l *writeLog) serve(w http.ResponseWriter, r *http.Request, store http.Handler) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost && r.Method != http.MethodDelete {
		store.ServeHTTP(w, r)
		return
	}
	key := accessKey(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	l.mu.Lock()
	hook := l.hooks[key]
	l.mu.Unlock()
	if hook != nil {
		hook(r, body)
	}
	l.mu.Lock()
	l.seq++
	begin := l.seq
	l.mu.Unlock()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	store.ServeHTTP(rec, r)
	l.mu.Lock()
	l.seq++
	l.writes = append(l.writes, s3Write{key: key, method: r.Method, path: r.URL.Path, status: rec.status, begin: begin, end: l.seq})
	l.mu.Unlock()
}

// mark is the log's position now.
func (l *writeLog) mark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// by returns the successful writes signed with key.
func (l *writeLog) by(key string) []s3Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []s3Write
	for _, w := range l.writes {
		if w.key == key && w.status < 300 {
			out = append(out, w)
		}
	}
	return out
}

// checkpoints returns the successful PUTs of an environment's checkpoint
// (.pulumi/stacks/<project>/<stack>.json), in the order they ended.
func (l *writeLog) checkpoints(env string) []s3Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []s3Write
	for _, w := range l.writes {
		if isCheckpoint(w.path, env) && w.method == http.MethodPut && w.status < 300 {
			out = append(out, w)
		}
	}
	return out
}

func (l *writeLog) hook(key string, h func(*http.Request, []byte)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hooks[key] = h
}

func isCheckpoint(path, env string) bool {
	return strings.Contains(path, "/.pulumi/stacks/") && strings.HasSuffix(path, ".json") && strings.Contains(path, env)
}

// fenceNamespace creates a namespace for one fencing test with the
// Secrets its Environment names (the backend's carries no AWS keys), and
// keeps the package's shared runners out of it.
func fenceNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	fenceLogOnce.Do(func() {
		tap := fenceLog.serve
		fx.s3Tap.Store(&tap)
	})
	fencePolicy.Do(func() { require.NoError(t, keepSharedRunnersOut(ctx)) })
	require.NoError(t, fx.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{fenceLabel: "true"}}}))
	for _, name := range []string{"state-passphrase", "target", "app"} {
		var s corev1.Secret
		require.NoError(t, fx.c.Get(ctx, client.ObjectKey{Namespace: envNS, Name: name}, &s))
		require.NoError(t, fx.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: s.Data}))
	}
	// The policy is in force once the shared runners' identity is denied.
	sa := rest.CopyConfig(fx.cluster.Config)
	sa.Impersonate.UserName = "system:serviceaccount:" + systemNS + ":slipway-runner"
	asRunner, err := client.New(sa, client.Options{Scheme: fx.c.Scheme()})
	require.NoError(t, err)
	eventually(t, time.Minute, "the shared runners are kept out of "+ns, func(ctx context.Context) (bool, string, error) {
		err := asRunner.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}}, client.DryRunAll)
		// Denied by the policy, or by RBAC where the runners may not
		// write Leases there at all.
		return err != nil && (strings.Contains(err.Error(), "fencing tests") || apierrors.IsForbidden(err)), fmt.Sprint(err), nil
	})
}

// keepSharedRunnersOut denies the package's shared runners every write of
// Runs and Leases in the fencing tests' namespaces: only the tests' own
// runners execute their Runs.
func keepSharedRunnersOut(ctx context.Context) error {
	rules := []admissionv1.NamedRuleWithOperations{
		{RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.OperationAll},
			Rule: admissionv1.Rule{APIGroups: []string{v1alpha1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{"runs", "runs/status"}}}},
		{RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.OperationAll},
			Rule: admissionv1.Rule{APIGroups: []string{"coordination.k8s.io"}, APIVersions: []string{"*"}, Resources: []string{"leases"}}}},
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{fenceLabel: "true"}}
	policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "slipway-fence-tests"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{NamespaceSelector: sel, ResourceRules: rules},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf("request.userInfo.username != 'system:serviceaccount:%s:slipway-runner'", systemNS),
				Message:    "the fencing tests' namespaces are for their own runners",
			}},
		}}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "slipway-fence-tests"},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}}}
	for _, o := range []client.Object{policy, binding} {
		if err := fx.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// startFenceRunner starts a runner of namespace ns in a UTS namespace of
// its own with host name host, signing its engine's S3 requests with
// access key key, and waits until it is ready.
func startFenceRunner(ctx context.Context, t *testing.T, name, host, key, ns, kubeconfig string) *proc {
	t.Helper()
	metrics, err := freePort()
	require.NoError(t, err)
	probe, err := freePort()
	require.NoError(t, err)
	args := []string{"-u", "sh", "-c", `hostname "$0" && exec "$@"`, host, fx.bin, "runner",
		"--kubeconfig", kubeconfig, "--identity", name, "--dir", filepath.Join(fx.dir, name),
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probe, "--watch-namespaces", ns,
		"--lease-duration", fenceLease.String(), "--renew-deadline", fenceRenew.String(), "--concurrency", "1",
		"--work-dir", filepath.Join(fx.dir, "work-"+ns)}
	logPath := filepath.Join(fx.dir, name+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	cmd := exec.Command("unshare", args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY=secret-of-"+key,
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	p := &proc{name: name, role: "runner", cmd: cmd, log: logPath, metrics: metrics, probe: probe, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
	fx.mu.Lock()
	fx.procs[name] = p
	fx.mu.Unlock()
	t.Cleanup(func() {
		if err := fx.kill9Tree(name); err != nil && !errors.Is(err, errNoProc) {
			t.Errorf("stopping %s: %v", name, err)
		}
	})
	eventually(t, 2*time.Minute, name+" ready", func(ctx context.Context) (bool, string, error) {
		select {
		case <-p.done:
			return false, "", fmt.Errorf("%s exited; its log:\n%s", name, tail(logPath, 40))
		default:
		}
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return false, "", nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
	return p
}

var errNoProc = errors.New("no such process")

// kill9Tree kills a process and everything below it (its engine is in a
// process group of its own) and waits for it.
func (f *fixture) kill9Tree(name string) error {
	f.mu.Lock()
	p := f.procs[name]
	delete(f.procs, name)
	f.mu.Unlock()
	if p == nil {
		return errNoProc
	}
	if _, err := proctree.KillNine(p.cmd.Process.Pid, 30*time.Second); err != nil {
		return err
	}
	<-p.done
	return nil
}

// stopTree stops pid and every process below it (SIGSTOP, pass after pass
// until no new process appears) and returns them.
func stopTree(t *testing.T, pid int) []int {
	t.Helper()
	procs, err := proctree.Stop(pid)
	require.NoError(t, err)
	return procs
}

// fenceEnv is a web Environment in ns whose backend Secret sets no AWS
// keys: the engine signs with its runner's.
func fenceEnv(name, ns string) *v1alpha1.Environment {
	return &v1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{
			Definition: "web",
			Kind:       "dev",
			Params:     &apiextensionsv1.JSON{Raw: []byte(`{"App":{"Replicas":2}}`)},
			Secrets:    []v1alpha1.SecretValue{{Name: "TOKEN", ValueFrom: v1alpha1.SecretKeyRef{Name: "app", Key: "token"}}},
			Target:     v1alpha1.Target{KubeconfigSecretRef: &v1alpha1.SecretKeyRef{Name: "target", Key: "kubeconfig"}},
			Backend: v1alpha1.Backend{URL: fx.backendURL,
				PassphraseSecretRef: &v1alpha1.SecretKeyRef{Name: "state-passphrase", Key: "passphrase"}},
		}},
	}
}

// upRun waits for the Environment's first Run and returns it once cond holds.
func upRun(t *testing.T, ns, env, what string, cond func(*v1alpha1.Run) bool) *v1alpha1.Run {
	t.Helper()
	var run *v1alpha1.Run
	eventually(t, 5*time.Minute, what, func(ctx context.Context) (bool, string, error) {
		var l v1alpha1.RunList
		if err := fx.c.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{"slipway.dev/environment": env}); err != nil {
			return false, "", err
		}
		for i := range l.Items {
			if r := &l.Items[i]; r.Spec.Operation == v1alpha1.OpUp {
				run = r
				return cond(r), fmt.Sprintf("%s: phase %s runner %s attempts %d: %.200s", r.Name, r.Status.Phase, r.Status.Runner, r.Status.Attempts, r.Status.Message), nil
			}
		}
		return false, "no up Run yet", nil
	})
	return run
}

// awaitLoss waits until runner p has logged that it killed its engine and
// no process runs below it any more.
func awaitLoss(t *testing.T, p *proc) {
	t.Helper()
	eventually(t, 2*time.Minute, p.name+" killed its engine", func(context.Context) (bool, string, error) {
		b, err := os.ReadFile(p.log)
		if err != nil {
			return false, "", err
		}
		below := tree.Below(p.cmd.Process.Pid)
		return bytes.Contains(b, []byte("killing the engine")) && len(below) == 0, fmt.Sprintf("processes below: %v", below), nil
	})
}

// assertFenced checks the write log of one test: runner a wrote before
// the take-over (the log can show its writes) and nothing after it, and
// the environment's last checkpoint is b's; then the next preview is clean.
// The take-over is the earlier of mark (where the test saw it) and the
// start of b's first write: b writes nothing before it owns the Run, so a
// write of a's that ends after b's first began overlaps b's engine even
// when the test was slow to see the take-over.
func assertFenced(ctx context.Context, t *testing.T, ns, env, a, b string, mark int64, run *v1alpha1.Run) {
	t.Helper()
	bw := fenceLog.by(b)
	require.NotEmpty(t, bw, "runner %s wrote", b)
	for _, w := range bw {
		mark = min(mark, w.begin)
	}
	before, after := 0, []s3Write{}
	for _, w := range fenceLog.by(a) {
		if w.end > mark || w.begin > mark {
			after = append(after, w)
		} else {
			before++
		}
	}
	assert.Positive(t, before, "runner %s's engine wrote to the backend before the take-over", a)
	assert.Empty(t, after, "runner %s wrote after the take-over", a)
	cps := fenceLog.checkpoints(env)
	require.NotEmpty(t, cps, "the log holds checkpoint writes of %s", env)
	assert.Equal(t, b, cps[len(cps)-1].key, "the last checkpoint write of %s", env)

	// A preview of the Environment's current revision, owned by it (runners
	// reject any other Run).
	preview := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: env + "-preview", Namespace: ns,
		Labels: map[string]string{"slipway.dev/environment": env}, OwnerReferences: run.OwnerReferences}, Spec: *run.Spec.DeepCopy()}
	preview.Spec.Operation = v1alpha1.OpPreview
	require.NoError(t, fx.c.Create(ctx, preview))
	eventually(t, 3*time.Minute, "the preview finished", func(ctx context.Context) (bool, string, error) {
		err := fx.c.Get(ctx, client.ObjectKeyFromObject(preview), preview)
		return err == nil && preview.Status.Phase.Finished(), string(preview.Status.Phase), err
	})
	require.Equal(t, v1alpha1.RunSucceeded, preview.Status.Phase, preview.Status.Message)
	assert.Empty(t, preview.Status.Changes, "the preview after the take-over is clean: %s", preview.Status.Message)
}

// TestFence_PausedRunnerWritesNothingAfterTakeOver: runner A's whole
// process tree (runner, engine, plugins) is stopped in the middle of an
// up, right after its engine recorded a pending operation; runner B, on
// another host, takes the Run over after the Lease duration and completes
// it; A is then resumed. A's engine writes nothing to the backend after
// the take-over (its fence deadline passed; its runner kills it), the last
// checkpoint is B's and the next preview is clean.
func TestFence_PausedRunnerWritesNothingAfterTakeOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ns, env, keyA, keyB = "fence-pause", "fence-pause", "fence-pause-a", "fence-pause-b"
	fenceNamespace(ctx, t, ns)
	pending := make(chan struct{})
	stopped := make(chan struct{})
	var once sync.Once
	var lockBody atomic.Value
	fenceLog.hook(keyA, func(r *http.Request, body []byte) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/.pulumi/locks/") {
			lockBody.Store(string(body))
		}
		if r.Method != http.MethodPut || !isCheckpoint(r.URL.Path, env) || !bytes.Contains(body, []byte("pending_operations")) {
			return
		}
		first := false
		once.Do(func() { first = true })
		if first {
			close(pending)
			<-stopped // held until A's tree is stopped; then it lands, before any take-over
		}
	})
	a := startFenceRunner(ctx, t, keyA, "host-"+keyA, keyA, ns, fx.cluster.Kubeconfig)
	require.NoError(t, fx.c.Create(ctx, fenceEnv(env, ns)))
	first := upRun(t, ns, env, "runner A runs the up", func(r *v1alpha1.Run) bool { return r.Status.Runner == keyA })
	startFenceRunner(ctx, t, keyB, "host-"+keyB, keyB, ns, fx.cluster.Kubeconfig)
	select {
	case <-pending:
	case <-time.After(5 * time.Minute):
		t.Fatalf("runner A's engine never recorded a pending operation; its log:\n%s", tail(a.log, 40))
	}
	lock, _ := lockBody.Load().(string)
	assert.Contains(t, lock, `"slipwayFence":"`+ns+"/"+first.Name+`#1"`, "A's engine's lock carries its fencing token")
	paused := stopTree(t, a.cmd.Process.Pid)
	require.Greater(t, len(paused), 1, "the engine runs below runner A")
	close(stopped)

	run := upRun(t, ns, env, "runner B took the run over", func(r *v1alpha1.Run) bool {
		return r.Status.Runner == keyB && r.Status.Attempts >= 2
	})
	mark := fenceLog.mark()
	eventually(t, time.Minute, "a TookOver Event", func(ctx context.Context) (bool, string, error) {
		reasons := fenceEventReasons(ctx, t, ns, run.Name)
		return slices.Contains(reasons, "TookOver"), strings.Join(reasons, ","), nil
	})
	run = upRun(t, ns, env, "the run succeeded", func(r *v1alpha1.Run) bool { return r.Status.Phase.Finished() })
	require.Equal(t, v1alpha1.RunSucceeded, run.Status.Phase, run.Status.Message)
	assert.Equal(t, keyB, run.Status.Runner)
	assert.Contains(t, run.Status.Recovery, "host-"+keyA, "B proved A's host dead for its lock")

	for _, p := range paused {
		_ = syscall.Kill(p, syscall.SIGCONT)
	}
	awaitLoss(t, a)
	require.NoError(t, fx.kill9Tree(keyA))
	assertFenced(ctx, t, ns, env, keyA, keyB, mark, run)
}

// TestFence_RunnerCutOffFromTheAPIServerWritesNothingAfterTakeOver: runner
// A reaches the API server through a loopback proxy that the test stops in
// the middle of an up, while A can still reach the backend (whose answers
// to A are slowed down from then on, so its engine is still busy at its
// deadline). A's watchdog kills its engine at the renew deadline; runner B
// takes the Run over and completes it; A writes nothing after the
// take-over, the last checkpoint is B's and the next preview is clean.
func TestFence_RunnerCutOffFromTheAPIServerWritesNothingAfterTakeOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ns, env, keyA, keyB = "fence-cut", "fence-cut", "fence-cut-a", "fence-cut-b"
	fenceNamespace(ctx, t, ns)
	proxy := startProxy(t)
	kubeconfig := proxiedKubeconfig(t, proxy.addr())
	var once sync.Once
	cut := make(chan struct{})
	fenceLog.hook(keyA, func(r *http.Request, body []byte) {
		select {
		case <-cut:
			time.Sleep(700 * time.Millisecond) // a slow backend: the engine is still writing at its deadline
			return
		default:
		}
		if r.Method == http.MethodPut && isCheckpoint(r.URL.Path, env) && bytes.Contains(body, []byte("pending_operations")) {
			once.Do(func() {
				proxy.stop()
				close(cut)
			})
		}
	})
	a := startFenceRunner(ctx, t, keyA, "host-"+keyA, keyA, ns, kubeconfig)
	require.NoError(t, fx.c.Create(ctx, fenceEnv(env, ns)))
	upRun(t, ns, env, "runner A runs the up", func(r *v1alpha1.Run) bool { return r.Status.Runner == keyA })
	startFenceRunner(ctx, t, keyB, "host-"+keyB, keyB, ns, fx.cluster.Kubeconfig)
	select {
	case <-cut:
	case <-time.After(5 * time.Minute):
		t.Fatalf("runner A's engine never recorded a pending operation; its log:\n%s", tail(a.log, 40))
	}
	run := upRun(t, ns, env, "runner B took the run over", func(r *v1alpha1.Run) bool {
		return r.Status.Runner == keyB && r.Status.Attempts >= 2
	})
	mark := fenceLog.mark()
	run = upRun(t, ns, env, "the run succeeded", func(r *v1alpha1.Run) bool { return r.Status.Phase.Finished() })
	require.Equal(t, v1alpha1.RunSucceeded, run.Status.Phase, run.Status.Message)
	assert.Equal(t, keyB, run.Status.Runner)
	awaitLoss(t, a)
	b, err := os.ReadFile(a.log)
	require.NoError(t, err)
	assert.Contains(t, string(b), "not renewed within the renew deadline", "A's watchdog, not a renewal, stopped its engine")
	require.NoError(t, fx.kill9Tree(keyA))
	assertFenced(ctx, t, ns, env, keyA, keyB, mark, run)
}

// fenceEventReasons lists the reasons of the Events about a Run in ns.
func fenceEventReasons(ctx context.Context, t *testing.T, ns, name string) []string {
	t.Helper()
	var l corev1.EventList
	require.NoError(t, fx.c.List(ctx, &l, client.InNamespace(ns)))
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == "Run" && e.InvolvedObject.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// tcpProxy forwards loopback connections to the API server until stopped.
type tcpProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  bool
}

func startProxy(t *testing.T) *tcpProxy {
	t.Helper()
	u, err := url.Parse(fx.cluster.Config.Host)
	require.NoError(t, err)
	target := u.Host
	host, _, err := net.SplitHostPort(target)
	require.NoError(t, err)
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	p := &tcpProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.done {
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

// stop closes the listener and every connection: the runner behind it
// is cut off from the API server.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	_ = p.l.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// proxiedKubeconfig is the admin kubeconfig with the API server at addr.
func proxiedKubeconfig(t *testing.T, addr string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(fx.cluster.Kubeconfig)
	require.NoError(t, err)
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		require.NoError(t, err)
		u.Host = addr
		c.Server = u.String()
	}
	path := filepath.Join(t.TempDir(), "proxied.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}
