package localk8s

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestStart_DeploymentBecomesReady(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := c.Health(ctx)
	require.True(t, h.Ready, "readyz: %+v", h)
	for name, alive := range h.Processes {
		assert.True(t, alive, name)
	}

	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "smoke"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	labels := map[string]string{"app": "web"}
	_, err = c.Client.AppsV1().Deployments("smoke").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err := c.Client.AppsV1().Deployments("smoke").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2
	}, time.Minute, 100*time.Millisecond, "Deployment never became Ready (kwok should run its pods)")
	pods, err := c.Client.CoreV1().Pods("smoke").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, p := range pods.Items {
		assert.Equal(t, corev1.PodRunning, p.Status.Phase)
		assert.Equal(t, NodeName, p.Spec.NodeName)
	}
}

func TestStop_EndsExactlyItsProcesses(t *testing.T) {
	var log bytes.Buffer
	c, err := StartCluster(context.Background(), WithLog(&log))
	require.NoError(t, err)
	pids := map[string]int{}
	for _, p := range c.procs {
		pids[p.Name] = p.PID
	}
	require.Len(t, pids, 5)
	require.NoError(t, c.Stop())
	for name, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "%s (pid %d) still runs", name, pid)
	}
	assert.NoDirExists(t, c.StateDir, "a temporary state directory is removed")
	require.NoError(t, c.Stop(), "Stop twice is fine")
}

func TestStart_PortInUseIsAClearError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = StartCluster(context.Background(), WithAPIPort(port), WithLog(&bytes.Buffer{}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is in use")
	assert.Contains(t, err.Error(), "choose another port")
}

func TestStart_StaleStateIsCleanedAndLiveClusterIsRefused(t *testing.T) {
	dir := t.TempDir()
	// State left by a run that was killed: a dead PID and leftover data.
	stale := state{Server: "https://127.0.0.1:1", Procs: []*proc{{Name: "kube-apiserver", PID: 1 << 22, Binary: "/nonexistent"}}}
	b, _ := json.Marshal(stale)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), b, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etcd", "member"), 0o755))

	var log bytes.Buffer
	c, err := StartCluster(context.Background(), WithStateDir(dir), WithLog(&log))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	assert.Contains(t, log.String(), "removing stale state")

	_, err = StartCluster(context.Background(), WithStateDir(dir), WithLog(&log))
	require.ErrorIs(t, err, ErrAlreadyRunning)

	loaded, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, c.Server, loaded.Server)
	assert.True(t, loaded.Health(context.Background()).Ready)

	require.NoError(t, os.Remove(c.Kubeconfig))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kubeconfig")

	require.NoError(t, c.Stop())
	_, err = Load(dir)
	require.ErrorIs(t, err, ErrNotRunning)
}

// TestStart_ControlPlaneIsPrivate: etcd serves TLS and refuses clients
// without a certificate of the cluster's CA (the API server's is
// accepted), the API server refuses anonymous requests (its health is still
// checked, with the admin certificate), and every file and directory of the
// state directory is its owner's only.
func TestStart_ControlPlaneIsPrivate(t *testing.T) {
	c := Start(t)
	p := pkiIn(filepath.Join(c.StateDir, "pki"))
	var etcdURL string
	for _, pr := range c.procs {
		for _, a := range pr.args {
			if u, ok := strings.CutPrefix(a, "--listen-client-urls="); ok && pr.Name == "etcd" {
				etcdURL = u
			}
		}
	}
	require.NotEmpty(t, etcdURL, "etcd's client URL is among its arguments")
	ca, err := os.ReadFile(p.CACert)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	get := func(url string, certs ...tls.Certificate) (int, error) {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	client, err := tls.LoadX509KeyPair(p.EtcdClientCert, p.EtcdClientKey)
	require.NoError(t, err)
	code, err := get(etcdURL+"/version", client)
	require.NoError(t, err, "the API server's etcd client certificate is accepted")
	assert.Equal(t, http.StatusOK, code)
	_, err = get(etcdURL + "/version")
	assert.Error(t, err, "etcd refuses a client without a certificate")
	_, err = get(strings.Replace(etcdURL, "https://", "http://", 1) + "/version")
	assert.Error(t, err, "etcd does not serve plain HTTP")

	code, err = get(c.Server + "/readyz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, code, "anonymous requests are refused")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	assert.True(t, c.Health(ctx).Ready, "health checks authenticate")

	seen := 0
	require.NoError(t, filepath.WalkDir(c.StateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		seen++
		assert.Zero(t, fi.Mode().Perm()&0o077, "%s is %v: group and others must have no access", path, fi.Mode().Perm())
		return nil
	}))
	for _, f := range []string{"state.json", "kubeconfig", "logs/etcd.log", "logs/kube-apiserver.log", "pki/etcd.key"} {
		assert.FileExists(t, filepath.Join(c.StateDir, f))
	}
	assert.Greater(t, seen, 15, "the walk saw the logs, the certificates and etcd's data")
}
