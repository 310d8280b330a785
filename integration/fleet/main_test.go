// Package fleet_test runs the fleet end to end: the real slipway binary as
// 2 operator and 3 runner OS processes, on the local control plane, with
// state in an S3-compatible server and parameters from a Git server, both
// on loopback. The processes reach the API server as their service
// accounts (impersonation), so the generated least-privilege RBAC is what
// they run with.
package fleet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/install"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

// Timings of the fleet under test: short, so a dead process is noticed in
// seconds (the defaults are 15 s).
const (
	leaseDuration = 6 * time.Second
	renewDeadline = 4 * time.Second
	retryPeriod   = time.Second
	runnerLease   = 6 * time.Second

	systemNS = "slipway-system"
	envNS    = "fleet"
	bucket   = "fleet-state"

	// Secret values that must never appear in status, Events or logs.
	passphrase  = "fleet-passphrase-7f3a9c"
	s3SecretKey = "fleet-s3-secret-key-b81e04"
	appSecret   = "fleet-app-token-55d2e1"
)

// fx is the package's one fleet: a cluster, a backend and the processes.
var fx *fixture

type fixture struct {
	dir        string
	bin        string
	cluster    *localk8s.Cluster
	c          client.Client
	kube       kubernetes.Interface
	s3         *s3mem.Backend
	s3srv      *http.Server
	backendURL string
	s3Env      map[string]string
	kubeconfig map[string]string // role -> kubeconfig path (impersonating its service account)
	// targetKubeconfig is the admin kubeconfig the Environments' programs use.
	targetKubeconfig string

	mu    sync.Mutex
	procs map[string]*proc // identity -> process

	// s3Tap, when set, serves every request to the S3 server in place of
	// the store and passes it on itself (fence_test.go's write log).
	s3Tap atomic.Pointer[func(w http.ResponseWriter, r *http.Request, store http.Handler)]
}

// proc is one operator or runner OS process, in its own process group so
// a kill takes its engine and plugins with it, as a pod's death does.
type proc struct {
	name, role     string
	cmd            *exec.Cmd
	log            string
	metrics, probe string
	done           chan struct{}
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Minute)
	defer cancel()
	f, err := setup(ctx)
	if f != nil {
		defer f.teardown()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet setup:", err)
		return 1
	}
	fx = f
	code := m.Run()
	if code != 0 {
		f.dumpLogs()
	}
	return code
}

func setup(ctx context.Context) (*fixture, error) {
	dir, err := os.MkdirTemp("", "slipway-fleet-")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, procs: map[string]*proc{}, kubeconfig: map[string]string{}}
	// The binary under test, built from this module: Slipway's command
	// line with the web program and a test program (testdata/fleetbin).
	f.bin = filepath.Join(dir, "slipway")
	build := exec.CommandContext(ctx, "go", "build", "-o", f.bin, "github.com/slipwayhq/slipway/integration/fleet/testdata/fleetbin")
	if out, err := build.CombinedOutput(); err != nil {
		return f, fmt.Errorf("building slipway: %v\n%s", err, out)
	}
	clusterLog, err := os.Create(filepath.Join(dir, "cluster.log"))
	if err != nil {
		return f, err
	}
	if f.cluster, err = localk8s.StartCluster(ctx, localk8s.WithLog(clusterLog)); err != nil {
		return f, err
	}
	scheme, err := fleet.Scheme()
	if err != nil {
		return f, err
	}
	if f.c, err = client.New(f.cluster.Config, client.Options{Scheme: scheme}); err != nil {
		return f, err
	}
	f.kube = f.cluster.Client
	if err := f.startS3(); err != nil {
		return f, err
	}
	crds, err := install.CRDs()
	if err != nil {
		return f, err
	}
	rbac, err := install.RBAC(install.Options{Namespace: systemNS, ClusterWide: true})
	if err != nil {
		return f, err
	}
	if err := install.Apply(ctx, f.cluster.Config, append(crds, rbac...)); err != nil {
		return f, fmt.Errorf("installing the CRDs and RBAC: %w", err)
	}
	for _, role := range []string{"operator", "runner"} {
		if f.kubeconfig[role], err = f.impersonating("system:serviceaccount:" + systemNS + ":slipway-" + role); err != nil {
			return f, err
		}
	}
	if err := f.secrets(ctx); err != nil {
		return f, err
	}
	for i := range 2 {
		if err := f.start(ctx, "operator", fmt.Sprintf("operator-%d", i)); err != nil {
			return f, err
		}
	}
	for i := range 3 {
		if err := f.start(ctx, "runner", fmt.Sprintf("runner-%d", i)); err != nil {
			return f, err
		}
	}
	return f, nil
}

// startS3 serves an in-memory S3-compatible store on loopback.
func (f *fixture) startS3() error {
	f.s3 = s3mem.New()
	if err := f.s3.CreateBucket(bucket); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	store := gofakes3.New(f.s3, gofakes3.WithTimeSkewLimit(0)).Server()
	tapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tap := f.s3Tap.Load(); tap != nil {
			(*tap)(w, r, store)
			return
		}
		store.ServeHTTP(w, r)
	})
	f.s3srv = &http.Server{Handler: tapped, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.s3srv.Serve(l) }()
	f.backendURL = "s3://" + bucket + "?endpoint=http://" + l.Addr().String() + "&use_path_style=true&disable_https=true&region=us-east-1"
	f.s3Env = map[string]string{"AWS_ACCESS_KEY_ID": "fleet", "AWS_SECRET_ACCESS_KEY": s3SecretKey,
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
	return nil
}

// impersonating writes a copy of the admin kubeconfig that acts as user.
func (f *fixture) impersonating(user string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(f.cluster.Kubeconfig)
	if err != nil {
		return "", err
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	path := filepath.Join(f.dir, strings.ReplaceAll(user, ":", "_")+".kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// secrets creates the Environments' namespace and the Secrets they name:
// backend credentials and passphrase, the target cluster, an app secret.
func (f *fixture) secrets(ctx context.Context) error {
	if err := f.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: envNS}}); err != nil {
		return err
	}
	target, err := f.cluster.InlineKubeconfig("")
	if err != nil {
		return err
	}
	f.targetKubeconfig = string(target)
	for name, data := range map[string]map[string]string{
		"state-credentials": f.s3Env,
		"state-passphrase":  {"passphrase": passphrase},
		"target":            {"kubeconfig": string(target)},
		"app":               {"token": appSecret},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: envNS}, StringData: data}
		if err := f.c.Create(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns a free loopback address.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts an operator or runner process named name, with the extra
// flags, and waits for its readiness probe.
func (f *fixture) start(ctx context.Context, role, name string, extra ...string) error {
	metrics, err := freePort()
	if err != nil {
		return err
	}
	probe, err := freePort()
	if err != nil {
		return err
	}
	args := []string{role, "--kubeconfig", f.kubeconfig[role], "--identity", name, "--dir", filepath.Join(f.dir, name),
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probe}
	if role == "operator" {
		args = append(args, "--leader-election-namespace", systemNS, "--lease-duration", leaseDuration.String(),
			"--renew-deadline", renewDeadline.String(), "--retry-period", retryPeriod.String(),
			"--backoff", "1s", "--max-backoff", "4s", "--max-failures", "3",
			// The runners' work directory: the operator destroys there an
			// Environment whose namespace is being deleted.
			"--work-dir", filepath.Join(f.dir, "runner-work"))
	} else {
		// Every runner uses the same work directory, as every pod of the
		// runners' Deployment does: a target kubeconfig's path is recorded
		// in the stack's provider.
		args = append(args, "--lease-duration", runnerLease.String(), "--concurrency", "2",
			"--work-dir", filepath.Join(f.dir, "runner-work"))
	}
	args = append(args, extra...)
	logPath := filepath.Join(f.dir, name+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary that dies (a timeout) takes its fleet with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	p := &proc{name: name, role: role, cmd: cmd, log: logPath, metrics: metrics, probe: probe, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
	f.mu.Lock()
	f.procs[name] = p
	f.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + probe + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready; its log:\n%s", name, tail(logPath, 40))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 2m; its log:\n%s", name, tail(logPath, 40))
		}
	}
}

// take removes the process name from the fixture and returns it.
func (f *fixture) take(name string) (*proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.procs[name]
	if p == nil {
		return nil, fmt.Errorf("no process %s", name)
	}
	delete(f.procs, name)
	return p, nil
}

// kill9 kills a process's whole group with SIGKILL and waits for it.
func (f *fixture) kill9(name string) error {
	p, err := f.take(name)
	if err != nil {
		return err
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// stop stops a process as a rollout does (SIGTERM to its group) and waits
// for it, killing it after 30 s.
func (f *fixture) stop(name string) error {
	p, err := f.take(name)
	if err != nil {
		return err
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within 30s of SIGTERM", name)
	}
}

// teardown stops every process (SIGTERM, then SIGKILL), the S3 server and
// the cluster.
func (f *fixture) teardown() {
	f.mu.Lock()
	procs := f.procs
	f.procs = map[string]*proc{}
	f.mu.Unlock()
	for _, p := range procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if f.s3srv != nil {
		_ = f.s3srv.Close()
	}
	if f.cluster != nil {
		if err := f.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the cluster:", err)
		}
	}
	if os.Getenv("SLIPWAY_TEST_KEEP") == "" {
		_ = os.RemoveAll(f.dir)
	} else {
		fmt.Fprintln(os.Stderr, "fleet: kept", f.dir)
	}
}

// dumpLogs prints the tail of every process's log after a failure.
func (f *fixture) dumpLogs() {
	entries, _ := filepath.Glob(filepath.Join(f.dir, "*.log"))
	for _, e := range entries {
		fmt.Fprintf(os.Stderr, "==== %s\n%s\n", filepath.Base(e), tail(e, 60))
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// locks returns the backend locks of a stack.
func (f *fixture) locks(ctx context.Context, project, stack string) ([]statestore.Lock, error) {
	s, err := statestore.Open(ctx, f.backendURL, f.s3Env)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Locks(ctx, project, stack)
}

// hasCheckpoint reports whether the backend holds a checkpoint of the stack.
func (f *fixture) hasCheckpoint(ctx context.Context, project, stack string) (bool, error) {
	s, err := statestore.Open(ctx, f.backendURL, f.s3Env)
	if err != nil {
		return false, err
	}
	defer s.Close()
	_, err = s.ReadCheckpoint(ctx, project, stack)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
