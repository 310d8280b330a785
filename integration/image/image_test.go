// Package image_test builds the fleet's image end to end: the real
// slipway binary, the toolchain's pulumi CLI and Kubernetes provider,
// pushed to an in-memory registry on loopback and pulled back by digest,
// extracted, and run from the extracted file tree alone (a chroot as the
// image's non-root user, so nothing of the host's toolchain cache or Go is
// reachable): an operator and a runner from the image complete a Run on
// the local control plane.
package image_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/image"
	"github.com/slipwayhq/slipway/automation/fleet/install"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

const (
	systemNS = "slipway-system"
	envNS    = "image"
	// workDir is the Deployments' HOME and --dir, inside the image.
	workDir = "/var/lib/slipway"
)

func TestImage_BuiltPushedPulledAndRunFromTheExtractedTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("running the extracted image in a chroot needs root: run the tests as root (CI does), as the fleet's fence tests need too (UTS namespaces)")
	}
	for _, tool := range []string{"unshare", "chroot", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (util-linux, coreutils) to run the extracted image: %v", tool, err)
		}
	}
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// The control plane starts while the image builds.
	type started struct {
		c   *localk8s.Cluster
		err error
	}
	clusterCh := make(chan started, 1)
	clusterLog, err := os.Create(filepath.Join(t.TempDir(), "cluster.log"))
	require.NoError(t, err)
	go func() {
		c, err := localk8s.StartCluster(ctx, localk8s.WithLog(clusterLog))
		clusterCh <- started{c, err}
	}()
	var cluster *localk8s.Cluster
	t.Cleanup(func() {
		if cluster == nil {
			if s := <-clusterCh; s.c != nil {
				cluster = s.c
			}
		}
		if cluster != nil {
			assert.NoError(t, cluster.Stop())
		}
	})

	// 1. Build into an in-memory registry on loopback.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	start := time.Now()
	res, err := image.Build(ctx, image.Options{Main: "./cmd/slipway", ModuleDir: root,
		Source: "https://github.com/slipwayhq/slipway", Revision: "test-revision", Version: "v0.0.0-test", Log: testLog{t}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, res.Close()) })
	ref, err := res.Push(ctx, strings.TrimPrefix(reg.URL, "http://")+"/team/slipway:test")
	require.NoError(t, err)
	built := time.Since(start)
	want, err := res.Digest()
	require.NoError(t, err)
	require.Equal(t, want.String(), ref.DigestStr(), "Push names the image by its digest")

	// 2. Pull it back by digest and check its configuration.
	img, err := remote.Image(ref, remote.WithContext(ctx))
	require.NoError(t, err)
	got, err := img.Digest()
	require.NoError(t, err)
	require.Equal(t, want, got)
	size := int64(0)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3, "base, toolchain, binary")
	for _, l := range layers {
		n, err := l.Size()
		require.NoError(t, err)
		size += n
	}
	t.Logf("image %s: built and pushed in %s, %d MB compressed in %d layers", ref, built.Round(time.Second), size>>20, len(layers))
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, "amd64", cf.Architecture)
	assert.Equal(t, "65532:65532", cf.Config.User, "runs as the non-root user")
	assert.Equal(t, []string{"/usr/local/bin/slipway"}, cf.Config.Entrypoint)
	assert.Contains(t, cf.Config.Env, "SLIPWAY_CACHE_DIR="+image.ToolchainDir)
	assert.Contains(t, cf.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin")
	assert.Equal(t, "https://github.com/slipwayhq/slipway", cf.Config.Labels[image.LabelSource])
	assert.Equal(t, "test-revision", cf.Config.Labels[image.LabelRevision])
	assert.Equal(t, "v0.0.0-test", cf.Config.Labels[image.LabelVersion])

	// 3. Extract it and run it from the tree alone.
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	require.NoError(t, extract(img, rootfs))
	// What a container runtime provides: mount points for /proc and /dev.
	for _, d := range []string{"proc", "dev"} {
		require.NoError(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	out, err := inImage(ctx, rootfs, "toolchain", "status", "--json").Output()
	require.NoError(t, err, "the extracted binary runs as 65532 in the chroot")
	var status struct {
		Results []struct {
			Tools []toolchain.Status `json:"tools"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(out, &status), "%s", out)
	require.Len(t, status.Results, 1)
	ready := map[string]bool{}
	for _, s := range status.Results[0].Tools {
		ready[s.Tool] = s.Ready
		if s.Ready {
			assert.True(t, strings.HasPrefix(s.Dir, image.ToolchainDir+"/"), "%s from the image's toolchain: %s", s.Tool, s.Dir)
		}
	}
	assert.True(t, ready["pulumi"], "the image's pulumi CLI is found and vouched for: %s", out)
	assert.True(t, ready["pulumi-resource-kubernetes"], "the image's Kubernetes provider is found and vouched for: %s", out)

	// 4. The control plane, the CRDs and RBAC, the Environment's Secrets.
	s := <-clusterCh
	require.NoError(t, s.err)
	cluster = s.c
	scheme, err := fleet.Scheme()
	require.NoError(t, err)
	c, err := client.New(cluster.Config, client.Options{Scheme: scheme})
	require.NoError(t, err)
	crds, err := install.CRDs()
	require.NoError(t, err)
	rbac, err := install.RBAC(install.Options{Namespace: systemNS, ClusterWide: true})
	require.NoError(t, err)
	require.NoError(t, install.Apply(ctx, cluster.Config, append(crds, rbac...)))
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: envNS}}))
	// The programs' target, self-contained: the engine in the image cannot
	// read the host's certificate files.
	target, err := cluster.InlineKubeconfig("")
	require.NoError(t, err)
	for name, data := range map[string]map[string]string{
		"target":           {"kubeconfig": string(target)},
		"state-passphrase": {"passphrase": "image-test-passphrase"},
		"app":              {"token": "image-test-token"},
	} {
		require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: envNS}, StringData: data}))
	}

	// 5. An operator and a runner from the image, as their service accounts.
	home := filepath.Join(rootfs, strings.TrimPrefix(workDir, "/"))
	for _, role := range []string{"operator", "runner"} {
		kc := filepath.Join(home, role+".kubeconfig")
		require.NoError(t, impersonating(cluster, "system:serviceaccount:"+systemNS+":slipway-"+role, kc))
		args := []string{role, "--kubeconfig", workDir + "/" + role + ".kubeconfig", "--identity", "image-" + role,
			"--dir", workDir + "/" + role, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}
		if role == "operator" {
			args = append(args, "--leader-elect=false", "--backoff", "1s", "--max-failures", "2")
		} else {
			args = append(args, "--watch-namespaces", envNS, "--lease-duration", "6s")
		}
		startInImage(ctx, t, rootfs, role, args...)
	}

	// 6. An Environment whose Run only the image's runner can execute.
	env := &v1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: "from-image", Namespace: envNS},
		Spec: v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{
			Definition: "web",
			Kind:       "dev",
			Params:     &apiextensionsv1.JSON{Raw: []byte(`{}`)},
			Secrets:    []v1alpha1.SecretValue{{Name: "TOKEN", ValueFrom: v1alpha1.SecretKeyRef{Name: "app", Key: "token"}}},
			Target:     v1alpha1.Target{KubeconfigSecretRef: &v1alpha1.SecretKeyRef{Name: "target", Key: "kubeconfig"}},
			Backend: v1alpha1.Backend{URL: "file://" + workDir + "/state",
				PassphraseSecretRef: &v1alpha1.SecretKeyRef{Name: "state-passphrase", Key: "passphrase"}},
		}},
	}
	require.NoError(t, c.Create(ctx, env))
	deadline := time.Now().Add(8 * time.Minute)
	for {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(env), env))
		cond := meta.FindStatusCondition(env.Status.Conditions, "Ready")
		if cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == env.Generation {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Environment is not Ready after 8m: %+v\nrunner log:\n%s", env.Status.Conditions, logTail(t, "runner"))
		}
		for role, done := range exited {
			select {
			case <-done:
				t.Fatalf("the image's %s exited before the Environment was Ready; its log:\n%s", role, logTail(t, role))
			default:
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	var runs v1alpha1.RunList
	require.NoError(t, c.List(ctx, &runs, client.InNamespace(envNS)))
	require.NotEmpty(t, runs.Items)
	for _, r := range runs.Items {
		assert.Equal(t, "image-runner", r.Status.Runner, "run %s executed by the image's runner", r.Name)
	}
	// The engine ran the image's provider: installed from the image's
	// toolchain into the runner's PULUMI_HOME inside the tree.
	plugin := toolchain.PluginPath(filepath.Join(home, ".pulumi"), "resource", "kubernetes", toolchain.KubernetesProviderVersion)
	_, err = os.Stat(plugin)
	assert.NoError(t, err, "the Kubernetes provider is installed in the image's HOME")
	// The state is in the tree: the backend the chrooted engine wrote.
	entries, err := os.ReadDir(filepath.Join(home, "state", ".pulumi", "stacks"))
	require.NoError(t, err, "the checkpoint is written inside the extracted tree")
	assert.NotEmpty(t, entries)
}

// testLog writes progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// extract writes the image's file system into dir with each file's mode,
// owner and time, as a container runtime does.
func extract(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		mode := os.FileMode(h.Mode & 0o777)
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%s: unexpected tar entry type %c", h.Name, h.Typeflag)
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
		if err := os.Chtimes(target, h.ModTime, h.ModTime); err != nil {
			return err
		}
	}
}

// inImage is the extracted binary run as the image runs it: chrooted into
// rootfs as 65532:65532 with the image's environment, in a mount namespace
// of its own with /proc and /dev mounted (what a container runtime adds).
func inImage(ctx context.Context, rootfs string, args ...string) *exec.Cmd {
	script := fmt.Sprintf(`set -e; %[1]s -t proc proc "$1/proc"; %[1]s --rbind /dev "$1/dev"; root=$1; shift; `+
		`exec %[2]s --userspec=65532:65532 "$root" /usr/local/bin/slipway "$@"`, hostTool("mount"), hostTool("chroot"))
	cmd := exec.CommandContext(ctx, hostTool("unshare"), append([]string{"--mount", "--propagation", "private", "--fork", "--kill-child",
		"sh", "-c", script, "sh", rootfs}, args...)...)
	// The image's environment only: nothing of the host's HOME, PATH or
	// toolchain cache.
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + workDir, "TMPDIR=/tmp",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "SLIPWAY_CACHE_DIR=" + image.ToolchainDir, "PULUMI_SKIP_UPDATE_CHECK=true"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// hostTool is the absolute path of a host command (the image's PATH is
// the child's).
func hostTool(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return name
	}
	return p
}

// logs are the fleet processes' log files, by role; exited are closed
// when the process of that role has exited.
var (
	logs   = map[string]string{}
	exited = map[string]chan struct{}{}
)

// startInImage starts a fleet process from the extracted image and stops
// it (SIGTERM to its group, then SIGKILL) when the test ends.
func startInImage(ctx context.Context, t *testing.T, rootfs, role string, args ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), role+".log")
	f, err := os.Create(path)
	require.NoError(t, err)
	logs[role] = path
	cmd := inImage(context.WithoutCancel(ctx), rootfs, args...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	exited[role] = done
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", role, logTail(t, role))
		}
	})
}

// logTail is the end of a fleet process's log.
func logTail(t *testing.T, role string) string {
	b, err := os.ReadFile(logs[role])
	if err != nil {
		return err.Error()
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// impersonating writes to path a self-contained copy of the admin
// kubeconfig that acts as user, readable by the image's user.
func impersonating(cluster *localk8s.Cluster, user, path string) error {
	b, err := cluster.InlineKubeconfig(user)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	return os.Chown(path, image.UID, image.UID)
}
