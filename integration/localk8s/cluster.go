// Package localk8s starts a real Kubernetes control plane on 127.0.0.1 —
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok fake
// nodes — built from Go modules by package toolchain. Like controller-runtime's
// envtest, a Cluster owns its binaries' processes, its certificates and its
// state directory: Start hands back a ready client, Stop ends exactly the
// processes it started. Every wait has a deadline.
package localk8s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// NodeName is the name of the fake node every cluster gets.
const NodeName = "kwok-node-0"

// ErrAlreadyRunning is returned by StartCluster when the state directory
// belongs to a cluster whose processes are still alive.
var ErrAlreadyRunning = errors.New("localk8s: a cluster is already running from this state directory")

// ErrNotRunning is returned by Load when no live cluster uses the directory.
var ErrNotRunning = errors.New("localk8s: no cluster is running from this state directory")

// Cluster is a running local control plane.
type Cluster struct {
	// StateDir holds certificates, the kubeconfig, logs, etcd data and
	// state.json; its directories are 0700 and its files 0600.
	StateDir string
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig string
	// Server is the API server URL.
	Server string
	// Config is a client configuration with admin rights.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface

	procs   []*proc
	ownsDir bool
	log     io.Writer
}

type options struct {
	stateDir     string
	resolver     *toolchain.Resolver
	log          io.Writer
	apiPort      int
	startTimeout time.Duration
	detached     bool
}

// Option configures StartCluster.
type Option func(*options)

// WithStateDir keeps the cluster's state in dir (created if needed). By
// default a temporary directory is used and removed by Stop.
func WithStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithResolver sets the toolchain resolver that finds or builds the binaries.
func WithResolver(r *toolchain.Resolver) Option { return func(o *options) { o.resolver = r } }

// WithLog sets where progress is printed (default os.Stderr).
func WithLog(w io.Writer) Option { return func(o *options) { o.log = w } }

// WithAPIPort fixes the API server port (default: a free port).
func WithAPIPort(port int) Option { return func(o *options) { o.apiPort = port } }

// WithStartTimeout bounds the start, from the first process to a Ready node
// (default 2 minutes). Building the binaries has its own deadline.
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// Detached starts the processes in their own session so they outlive the
// calling process (for `slipway cluster up`); stop them with Load + Stop.
func Detached() Option { return func(o *options) { o.detached = true } }

// proc is one control plane process.
type proc struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	Binary string `json:"binary"`
	cmd    *exec.Cmd
	done   chan struct{}
	args   []string
	detach bool
}

// state is what state.json records, so another process can find the cluster.
type state struct {
	Server     string    `json:"server"`
	Kubeconfig string    `json:"kubeconfig"`
	Started    time.Time `json:"started"`
	Procs      []*proc   `json:"procs"`
}

// StartCluster builds (when needed) and starts a control plane and returns it
// once the API server is ready and the fake node is Ready.
func StartCluster(ctx context.Context, opts ...Option) (c *Cluster, err error) {
	o := options{log: os.Stderr, startTimeout: 2 * time.Minute}
	for _, f := range opts {
		f(&o)
	}
	if o.resolver == nil {
		o.resolver = toolchain.New(toolchain.WithLog(o.log))
	}
	if o.apiPort < 0 || o.apiPort > 65535 {
		return nil, fmt.Errorf("localk8s: API port %d is out of range; use 1-65535 or 0 for a free port", o.apiPort)
	}
	if o.apiPort != 0 {
		if err := portFree(o.apiPort); err != nil {
			return nil, fmt.Errorf("localk8s: API port %d on 127.0.0.1 is in use (%v); choose another port or stop what holds it", o.apiPort, err)
		}
	}
	bins, err := o.resolver.ControlPlane(ctx)
	if err != nil {
		return nil, err
	}
	c = &Cluster{StateDir: o.stateDir, log: o.log}
	if c.StateDir == "" {
		if c.StateDir, err = os.MkdirTemp("", "slipway-localk8s-"); err != nil {
			return nil, err
		}
		c.ownsDir = true
	} else {
		if c.StateDir, err = filepath.Abs(c.StateDir); err != nil {
			return nil, err
		}
		if err := prepareStateDir(c.StateDir, o.log); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err = c.start(ctx, bins, o)
		if err == nil || o.apiPort != 0 || attempt == 3 || !errors.Is(err, errPortTaken) {
			break
		}
		fmt.Fprintf(o.log, "localk8s: %v; retrying with other ports\n", err)
		c.stopProcs()
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.log, "localk8s: cluster ready at %s in %s (kubeconfig %s)\n", c.Server, time.Since(start).Round(10*time.Millisecond), c.Kubeconfig)
	return c, nil
}

var errPortTaken = errors.New("port taken")

// prepareStateDir makes dir usable: state left by a killed run is removed, a
// live cluster is an error.
func prepareStateDir(dir string, log io.Writer) error {
	st, err := readState(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		fmt.Fprintf(log, "localk8s: removing unreadable state in %s (%v)\n", dir, err)
	default:
		var alive []string
		for _, p := range st.Procs {
			if p.alive() {
				alive = append(alive, fmt.Sprintf("%s=%d", p.Name, p.PID))
			}
		}
		if len(alive) > 0 {
			return fmt.Errorf("%w: %s (%s); stop it first (`slipway cluster down`)", ErrAlreadyRunning, dir, strings.Join(alive, " "))
		}
		fmt.Fprintf(log, "localk8s: removing stale state of a cluster that was killed (%s)\n", dir)
	}
	for _, sub := range []string{"etcd", "pki", "logs", "state.json", "kubeconfig", "kwok.yaml"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("localk8s: clearing %s: %w", dir, err)
		}
	}
	return os.MkdirAll(dir, 0o700)
}

func (c *Cluster) start(ctx context.Context, bins *toolchain.ControlPlane, o options) error {
	for _, sub := range []string{"etcd", "pki", "logs"} {
		_ = os.RemoveAll(filepath.Join(c.StateDir, sub))
	}
	p, err := newPKI(filepath.Join(c.StateDir, "pki"))
	if err != nil {
		return fmt.Errorf("localk8s: certificates: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(c.StateDir, "logs"), 0o700); err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	if o.apiPort != 0 {
		apiPort = o.apiPort
	}
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.Kubeconfig = filepath.Join(c.StateDir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.Server, p); err != nil {
		return err
	}
	// etcd holds every Secret in plain text: TLS, and only clients (and
	// peers) with a certificate of the cluster's CA.
	etcdURL := fmt.Sprintf("https://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("https://127.0.0.1:%d", peerPort)
	if err := c.spawn("etcd", bins.Etcd, o.detached, "--name=default", "--data-dir="+filepath.Join(c.StateDir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--cert-file="+p.EtcdCert, "--key-file="+p.EtcdKey, "--client-cert-auth=true", "--trusted-ca-file="+p.CACert,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--peer-cert-file="+p.EtcdCert, "--peer-key-file="+p.EtcdKey, "--peer-client-cert-auth=true", "--peer-trusted-ca-file="+p.CACert,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return err
	}
	if err := c.spawn("kube-apiserver", bins.APIServer, o.detached,
		"--etcd-servers="+etcdURL, "--etcd-cafile="+p.CACert, "--etcd-certfile="+p.EtcdClientCert, "--etcd-keyfile="+p.EtcdClientKey,
		// Every request is authenticated (client certificates, service
		// account tokens); health checks use the admin certificate.
		"--anonymous-auth=false",
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort), "--tls-cert-file="+p.APIServerCert, "--tls-private-key-file="+p.APIServerKey,
		"--client-ca-file="+p.CACert, "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.SAPub, "--service-account-signing-key-file="+p.SAKey,
		"--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
		"--endpoint-reconciler-type=none", "--profiling=false",
		// Like managed clusters: privileged pods are allowed by the server and
		// refused (or not) by Pod Security Admission per namespace.
		"--allow-privileged=true"); err != nil {
		return err
	}
	if err := c.waitReady(ctx, p); err != nil {
		return err
	}
	kc := c.Kubeconfig
	if err := c.spawn("kube-controller-manager", bins.ControllerManager, o.detached, "--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0", "--service-account-private-key-file="+p.SAKey,
		"--root-ca-file="+p.CACert, "--use-service-account-credentials=false", "--controllers=*"); err != nil {
		return err
	}
	if err := c.spawn("kube-scheduler", bins.Scheduler, o.detached, "--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0"); err != nil {
		return err
	}
	if err := c.spawn("kwok", bins.Kwok, o.detached, "--kubeconfig="+kc, "--config="+bins.KwokStages,
		"--manage-all-nodes=true", "--node-lease-duration-seconds=40", "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1",
		"--server-address="); err != nil {
		return err
	}
	if err := c.writeState(); err != nil {
		return err
	}
	if err := c.connect(); err != nil {
		return err
	}
	return c.addNode(ctx)
}

func (c *Cluster) spawn(name, bin string, detached bool, args ...string) error {
	logf, err := os.OpenFile(filepath.Join(c.StateDir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.StateDir
	if detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Die with the process that started us, so a killed test leaks nothing.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localk8s: starting %s: %w", name, err)
	}
	p := &proc{Name: name, PID: cmd.Process.Pid, Binary: bin, cmd: cmd, done: make(chan struct{}), args: args, detach: detached}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return c.writeState()
}

// waitReady polls /readyz until it answers ok, the API server exits or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, p *pki) error {
	ca, err := os.ReadFile(p.CACert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	defer hc.CloseIdleConnections()
	for {
		for _, pr := range c.procs {
			select {
			case <-pr.done:
				log := tail(filepath.Join(c.StateDir, "logs", pr.Name+".log"), 15)
				if strings.Contains(log, "address already in use") {
					return fmt.Errorf("localk8s: %s could not bind its port: %w", pr.Name, errPortTaken)
				}
				return fmt.Errorf("localk8s: %s exited during start; last log lines:\n%s", pr.Name, log)
			default:
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localk8s: API server not ready at %s/readyz: %w; see %s", c.Server, ctx.Err(),
				filepath.Join(c.StateDir, "logs", "kube-apiserver.log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("localk8s: kubeconfig %s: %w", c.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Config, c.Client = cfg, cs
	return nil
}

// addNode registers the fake node that kwok manages and waits until it is Ready.
func (c *Cluster) addNode(ctx context.Context) error {
	q := resource.MustParse
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "type": "kwok"},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{"cpu": q("32"), "memory": q("256Gi"), "pods": q("110")},
			Capacity:    corev1.ResourceList{"cpu": q("32"), "memory": q("256Gi"), "pods": q("110")},
		},
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("localk8s: creating node: %w", err)
	}
	for {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localk8s: node %s not Ready (is kwok running? see %s): %w", NodeName,
				filepath.Join(c.StateDir, "logs", "kwok.log"), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the cluster's processes (SIGTERM, then SIGKILL after 5 s) and,
// when the state directory was temporary, removes it. It is safe to call more
// than once.
func (c *Cluster) Stop() error {
	if c == nil {
		return nil
	}
	c.stopProcs()
	if c.ownsDir {
		return os.RemoveAll(c.StateDir)
	}
	return os.Remove(filepath.Join(c.StateDir, "state.json"))
}

func (c *Cluster) stopProcs() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(5 * time.Second)
	}
	c.procs = nil
	_ = c.writeState()
}

func (p *proc) stop(grace time.Duration) {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL) // kube-apiserver may linger in graceful shutdown
	for i := 0; i < 100 && p.alive(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether the process still runs the recorded binary, so a
// recycled PID is never mistaken for ours.
func (p *proc) alive() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	return exe == p.Binary
}

func (c *Cluster) writeState() error {
	st := state{Server: c.Server, Kubeconfig: c.Kubeconfig, Started: time.Now().UTC(), Procs: c.procs}
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := filepath.Join(c.StateDir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.StateDir, "state.json"))
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Load attaches to a cluster started (Detached) from dir by another process.
// It returns ErrNotRunning when no process of it is alive.
func Load(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (start one with `slipway cluster up`)", ErrNotRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("localk8s: reading state in %s: %w", dir, err)
	}
	c := &Cluster{StateDir: dir, Server: st.Server, Kubeconfig: st.Kubeconfig, procs: st.Procs, log: os.Stderr}
	anyAlive := false
	for _, p := range st.Procs {
		anyAlive = anyAlive || p.alive()
	}
	if !anyAlive {
		return c, fmt.Errorf("%w: %s (its processes are gone; `slipway cluster up` cleans up and starts again)", ErrNotRunning, dir)
	}
	if _, err := os.Stat(c.Kubeconfig); err != nil {
		return c, fmt.Errorf("localk8s: kubeconfig of the cluster in %s is missing (%v); run `slipway cluster down` then `slipway cluster up`", dir, err)
	}
	return c, c.connect()
}

// Health describes the processes of a cluster and whether its API is ready.
type Health struct {
	Server    string          `json:"server"`
	Ready     bool            `json:"ready"`
	Processes map[string]bool `json:"processes,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// Health checks each process and the API server's /readyz (bounded by ctx).
func (c *Cluster) Health(ctx context.Context) Health {
	h := Health{Server: c.Server, Processes: map[string]bool{}}
	for _, p := range c.procs {
		h.Processes[p.Name] = p.alive()
	}
	if c.Client == nil {
		h.Error = "not connected"
		return h
	}
	body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	h.Ready = err == nil && strings.TrimSpace(string(body)) == "ok"
	if err != nil {
		h.Error = err.Error()
	}
	return h
}

func writeKubeconfig(path, server string, p *pki) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: slipway-local
  cluster: {server: %q, certificate-authority: %q}
users:
- name: admin
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: slipway-local
  context: {cluster: slipway-local, user: admin}
current-context: slipway-local
`, server, p.CACert, p.AdminCert, p.AdminKey)
	return os.WriteFile(path, []byte(kc), 0o600)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localk8s: finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	return l.Close()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RestartAPIServer stops the API server, keeps it down for down, starts it
// again with the same flags (etcd keeps the data) and waits until it is
// ready: for tests of what an outage does to an update in flight.
func (c *Cluster) RestartAPIServer(ctx context.Context, down time.Duration) error {
	i := slices.IndexFunc(c.procs, func(p *proc) bool { return p.Name == "kube-apiserver" && p.cmd != nil })
	if i < 0 {
		return errors.New("localk8s: RestartAPIServer needs a cluster started by this process")
	}
	old := c.procs[i]
	old.stop(5 * time.Second)
	c.procs = slices.Delete(c.procs, i, i+1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	if err := c.spawn(old.Name, old.Binary, old.detach, old.args...); err != nil {
		return err
	}
	return c.waitReady(ctx, pkiIn(filepath.Join(c.StateDir, "pki")))
}

// InlineKubeconfig is the cluster's admin kubeconfig with its files
// (client certificate, key, CA) inlined, acting as user when user is not
// empty: what a fleet Environment's target Secret may hold (a target
// kubeconfig may refer to no file of the runner's), or what a process
// that cannot read the cluster's state directory needs.
func (c *Cluster) InlineKubeconfig(user string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("localk8s: kubeconfig %s: %w", c.Kubeconfig, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, fmt.Errorf("localk8s: kubeconfig %s: %w", c.Kubeconfig, err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	return clientcmd.Write(*cfg)
}
