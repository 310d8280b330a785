package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	slipway "github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

// The package's tests share one built binary and one local cluster; each
// test has its own --dir (backend, workspaces) and its own environment
// names, so they run in parallel.
var (
	binary  string
	cluster *localk8s.Cluster
)

// The exit codes of the command line.
const (
	ExitError   = slipway.ExitError
	ExitChanges = slipway.ExitChanges
	ExitPolicy  = slipway.ExitPolicy
	ExitLocked  = slipway.ExitLocked
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "slipway-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// controller-runtime's client (the fleet test's) logs through a global
	// logger; this process sets it as the binary does.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	// The tests name their backend and cluster; the runner's own must not leak in.
	for _, v := range []string{"KUBECONFIG", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_SECRETS_PROVIDER"} {
		os.Unsetenv(v)
	}
	binary = filepath.Join(tmp, "slipway")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building slipway: %v\n%s", err, out)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	cluster, err = localk8s.StartCluster(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster:", err)
		return 1
	}
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		code = 1
	}
	return code
}

type outcome struct {
	code           int
	stdout, stderr string
}

// exe runs the binary with --dir dir and extra environment variables
// (KEY=VALUE sets one, -KEY removes it).
func exe(t *testing.T, dir string, env []string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--dir", dir}, args...)...)
	cmd.Env = os.Environ()
	for _, e := range env {
		if name, ok := strings.CutPrefix(e, "-"); ok {
			cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
			continue
		}
		cmd.Env = append(cmd.Env, e)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := exited(t, err, out.String(), errb.String())
	assert.NotContains(t, r.stderr, "was never called", "every process sets controller-runtime's logger")
	return r
}

// exited is the outcome of a process that ended with err (an exit code,
// or a failure to run it, which fails the test).
func exited(t *testing.T, err error, stdout, stderr string) outcome {
	t.Helper()
	r := outcome{stdout: stdout, stderr: stderr}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

var schema = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(slipway.Schema()))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("envelope.v1.json", doc); err != nil {
		panic(err)
	}
	return c.MustCompile("envelope.v1.json")
}()

// envelopeOf validates stdout against the schema and decodes it.
func envelopeOf(t *testing.T, r outcome) map[string]any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(r.stdout))
	require.NoError(t, err, "stdout is not one JSON document:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.NoError(t, schema.Validate(inst), "stdout does not match schema/envelope.v1.json:\n%s", r.stdout)
	var env map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &env))
	return env
}

// results returns the envelope's results.
func results(t *testing.T, env map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range env["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// world is what a command could have touched: the namespaces of the
// cluster and every file of the backend (by content).
type world struct {
	namespaces []string
	files      map[string]string
}

func snapshot(t *testing.T, dir string) world {
	t.Helper()
	nss, err := cluster.Client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	w := world{files: map[string]string{}}
	for _, n := range nss.Items {
		w.namespaces = append(w.namespaces, n.Name)
	}
	slices.Sort(w.namespaces)
	state := filepath.Join(dir, "state")
	err = filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(state, p)
		w.files[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	require.NoError(t, err)
	return w
}

// namespaceExists reports whether the cluster has the namespace.
func namespaceExists(t *testing.T, ns string) bool {
	t.Helper()
	_, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	return err == nil
}

// image returns the image of the Deployment web (or web-blue) in ns.
func image(t *testing.T, ns string) string {
	t.Helper()
	ds, err := cluster.Client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, ds.Items, 1, "one Deployment in %s", ns)
	return ds.Items[0].Spec.Template.Spec.Containers[0].Image
}

// destroyAfter destroys and removes the named environments when the test ends.
func destroyAfter(t *testing.T, dir string, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			r := exe(t, dir, nil, "destroy", "--yes", "--env", n, "--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--remove")
			if r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
				t.Errorf("cleanup of %s: exit %d: %s", n, r.code, r.stderr)
			}
		}
	})
}
