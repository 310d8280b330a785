package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
)

// procScan is what scanning /proc saw while one CLI process ran.
type procScan struct {
	names map[string]bool // executable names of the CLI's descendants
	leaks []string        // where a canary was found
}

// scanProcs reads /proc once: every process's cmdline, and the environ of
// each descendant of root (the processes the CLI started; its own
// environment is the caller's), looking for the canaries.
func scanProcs(root int, canaries []string, s *procScan) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	parent := map[int]int{}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[pid] = pp
		pids = append(pids, pid)
	}
	descends := func(pid int) bool {
		for n := 0; pid > 1 && n < 64; n++ {
			if pid = parent[pid]; pid == root {
				return true
			}
		}
		return false
	}
	check := func(pid int, what string, b []byte) {
		for _, c := range canaries {
			if bytes.Contains(b, []byte(c)) {
				exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
				s.leaks = append(s.leaks, what+" of "+exe)
			}
		}
	}
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			check(pid, "cmdline", b)
		}
		if !descends(pid) {
			continue
		}
		exe, err := os.Readlink(filepath.Join(dir, "exe"))
		if err != nil {
			continue // gone
		}
		s.names[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))] = true
		b, err := os.ReadFile(filepath.Join(dir, "environ"))
		// A child forked by the CLI that has not exec'd yet shows the CLI's
		// own environment block (the caller's, which Go's Unsetenv does not
		// rewrite; the CLI itself is not checked): its environ counts only
		// once it runs its own binary, the same before and after the read.
		after, _ := os.Readlink(filepath.Join(dir, "exe"))
		if err == nil && exe == after && exe != binary {
			check(pid, "environ", b)
		}
	}
}

// runScanned runs the binary with stdin and extra environment, scanning
// /proc until it exits.
func runScanned(t *testing.T, dir, stdin string, env []string, canaries []string, args ...string) (outcome, *procScan) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	s := &procScan{names: map[string]bool{}}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
scan:
	for {
		scanProcs(cmd.Process.Pid, canaries, s)
		select {
		case err = <-done:
			break scan
		case <-tick.C:
		}
	}
	r := outcome{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r, s
}

// TestCLI_SecretsStayOutOfProcessArgumentsAndEnvironments gives a canary
// secret each way (--secret KEY=@FILE, --secret KEY=@-, --secret-env,
// --secrets-file with JSON, --secrets-file - with dotenv) to a real up and
// preview, and scans /proc while they run: no process's cmdline (the CLI,
// the pulumi engine and its config writes, the Kubernetes provider, the
// policy analyzer — any process on the machine) and no environ of a
// process the CLI started holds a canary. The scan must have seen the
// engine and the provider. The values reach the cluster's Secret, and no
// output or file of --dir holds them.
func TestCLI_SecretsStayOutOfProcessArgumentsAndEnvironments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := t.TempDir()
	want := map[string]string{
		"FROM_FILE":  "canary-file-5b1e7d20",
		"FROM_STDIN": "canary-stdin-a7f09c41",
		"FROM_ENV":   "canary-env-9c4a2f63",
		"FROM_JSON":  "canary-json-3e8d6185",
	}
	var canaries []string
	for _, v := range want {
		canaries = append(canaries, v)
	}
	file := filepath.Join(in, "token")
	require.NoError(t, os.WriteFile(file, []byte(want["FROM_FILE"]+"\n"), 0o600))
	js := filepath.Join(in, "secrets.json")
	require.NoError(t, os.WriteFile(js, []byte(`{"FROM_JSON": "`+want["FROM_JSON"]+`"}`), 0o600))
	k := []string{"--kubeconfig", cluster.Kubeconfig, "--set", "GREETING=hi"}

	r, s := runScanned(t, dir, want["FROM_STDIN"]+"\n", []string{"SP_CI_TOKEN=" + want["FROM_ENV"]}, canaries,
		append([]string{"-v", "--json", "up", "--env", "sp-dev", "--secret", "FROM_FILE=@" + file, "--secret", "FROM_STDIN=@-",
			"--secret-env", "FROM_ENV=SP_CI_TOKEN", "--secrets-file", js, "--policy", "kubernetes"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAfter(t, dir, "sp-dev")
	outputs := []string{r.stdout, r.stderr}
	assert.Empty(t, s.leaks, "a canary in /proc during up")
	assert.True(t, s.names["pulumi"], "the scan saw the engine: %v", s.names)
	assert.True(t, s.names["pulumi-resource-kubernetes"], "the scan saw the Kubernetes provider: %v", s.names)

	dotenv := "# the same secrets as dotenv on standard input\n"
	for key, v := range want {
		dotenv += "export " + key + "=\"" + v + "\"\n"
	}
	r, s = runScanned(t, dir, dotenv, nil, canaries, append([]string{"-v", "preview", "--env", "sp-dev", "--secrets-file", "-", "--expect-no-changes"}, k...)...)
	assert.Equal(t, 0, r.code, "the same secrets given again change nothing: %s", r.stderr)
	outputs = append(outputs, r.stdout, r.stderr)
	assert.Empty(t, s.leaks, "a canary in /proc during preview")
	assert.True(t, s.names["pulumi"], "the scan saw the engine: %v", s.names)

	sec, err := cluster.Client.CoreV1().Secrets("slipway-sp-dev").Get(context.Background(), "web-secrets", metav1.GetOptions{})
	require.NoError(t, err)
	for key, v := range want {
		assert.Equal(t, v, string(sec.Data[key]), "secret %s reached the cluster", key)
	}
	for i, o := range outputs {
		for _, c := range canaries {
			assert.NotContains(t, o, c, "output %d", i)
		}
	}
	assertNoCanaryIn(t, dir, canaries...)
}

// assertNoCanaryIn walks dir (but the local cluster's) and asserts no file
// holds a canary in any form, and that every file and directory is private.
func assertNoCanaryIn(t *testing.T, dir string, canaries ...string) {
	t.Helper()
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		// dir itself is the test's (t.TempDir); a symbolic link's mode means nothing.
		if p != dir && d.Type()&fs.ModeSymlink == 0 {
			assert.Zero(t, fi.Mode().Perm()&0o077, "%s is %v: only its owner may read it", p, fi.Mode())
		}
		if d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, c := range canaries {
			assert.NotContains(t, string(b), c, "file %s", p)
			assert.NotContains(t, string(b), base64.StdEncoding.EncodeToString([]byte(c)), "file %s (base64)", p)
		}
		return nil
	}))
	assert.Greater(t, files, 5, "the walk saw the state, workspaces and records")
}

// TestCLI_SecretInAFailingOperationsErrorIsMasked runs a program that fails
// with its secret inside the error — as given, base64-encoded and
// JSON-quoted — and asserts every output (stderr, --json, verbose logs)
// shows the failure with the secret masked, and no file of --dir (run and
// release records, state) holds it in any form.
func TestCLI_SecretInAFailingOperationsErrorIsMasked(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "leaky")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/leaky").CombinedOutput()
	require.NoError(t, err, "building testdata/leaky: %s", out)
	dir := t.TempDir()
	const canary = `leak"y<7f3c>\e91`
	q, err := json.Marshal(canary)
	require.NoError(t, err)
	forms := []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)), string(q[1 : len(q)-1]), `leak\"y\u003c7f3c`}
	secrets := filepath.Join(t.TempDir(), "secrets.json")
	require.NoError(t, os.WriteFile(secrets, []byte(`{"DB_PASSWORD": `+string(q)+`}`), 0o600))

	for _, args := range [][]string{
		{"-v", "--json", "up", "--env", "dev"},
		{"-v", "up", "--env", "dev"},
		{"-v", "--log-format", "json", "preview", "--env", "dev"},
	} {
		r := runBinary(t, bin, dir, append(args, "--secrets-file", secrets, "--kubeconfig", cluster.Kubeconfig)...)
		assert.Equal(t, ExitError, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "connecting to the database failed", "%v: the error is reported", args)
		assert.Contains(t, r.stderr+r.stdout, "[secret]", "%v: where the secret was", args)
		for _, f := range forms {
			assert.NotContains(t, r.stdout, f, "%v: stdout", args)
			assert.NotContains(t, r.stderr, f, "%v: stderr", args)
		}
		if args[1] == "--json" {
			var env map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &env), "the masked envelope is still JSON: %s", r.stdout)
			assert.Contains(t, env["error"].(map[string]any)["message"], "[secret]")
		}
	}
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, f := range forms {
			assert.NotContains(t, string(b), f, "file %s", p)
		}
		return nil
	}))
	assert.Greater(t, files, 2, "the walk saw the workspace and the records")
}

// TestCLI_SecretInputIsCheckedAndNeverEchoed: each bad way of giving a
// secret is refused (exit 1) naming the flag and the fix, before anything
// is touched, and the value is never echoed.
func TestCLI_SecretInputIsCheckedAndNeverEchoed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := t.TempDir()
	const value = "hidden-value-4e1a"
	write := func(name, body string) string {
		p := filepath.Join(in, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	badDotenv := write("bad.env", "# ok\nTOKEN "+value+"\n")
	badJSON := write("bad.json", `{"TOKEN": 12345}`)
	short := write("short", "abc\n")
	empty := write("empty.env", "# nothing\n")
	good := write("good.env", "TOKEN="+value+"\n")
	k := []string{"--kubeconfig", cluster.Kubeconfig}
	cases := []struct {
		name  string
		args  []string
		env   []string
		stdin string
		want  string
	}{
		{"file missing", []string{"--secret", "TOKEN=@/nonexistent/token"}, nil, "", "--secret TOKEN=@/nonexistent/token: cannot read the file"},
		{"file not named", []string{"--secret", "TOKEN=@"}, nil, "", "names no file"},
		{"no key", []string{"--secret", value}, nil, "", "--secret: use KEY=@FILE"},
		{"short value", []string{"--secret", "PIN=@" + short}, nil, "", "secret PIN: the value is shorter than 4 characters"},
		{"short literal", []string{"--secret", "PIN=abc"}, nil, "", "shorter than 4 characters"},
		{"env unset", []string{"--secret-env", "TOKEN=SP_UNSET_VAR"}, []string{"-SP_UNSET_VAR"}, "", "$SP_UNSET_VAR is not set or empty"},
		{"env bad name", []string{"--secret-env", "TOKEN=1BAD"}, nil, "", "use KEY=VAR"},
		{"stdin twice", []string{"--secret", "A=@-", "--secrets-file", "-"}, nil, value, "both read standard input"},
		{"dotenv malformed", []string{"--secrets-file", badDotenv}, nil, "", "line 2 is not KEY=VALUE"},
		{"json not strings", []string{"--secrets-file", badJSON}, nil, "", "the value of TOKEN is not a JSON string"},
		{"file without secrets", []string{"--secrets-file", empty}, nil, "", "holds no secret"},
		{"key twice", []string{"--secrets-file", good, "--secret-env", "TOKEN=SP_TOKEN_TWICE"}, []string{"SP_TOKEN_TWICE=" + value}, "", "secret TOKEN is given twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(binary, append(append([]string{"--dir", dir, "up", "--env", "si-dev"}, c.args...), k...)...)
			cmd.Env = os.Environ()
			for _, e := range c.env {
				if name, ok := strings.CutPrefix(e, "-"); ok {
					cmd.Env = append(cmd.Env, name+"=")
					continue
				}
				cmd.Env = append(cmd.Env, e)
			}
			cmd.Stdin = strings.NewReader(c.stdin)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, errb.String())
			assert.Equal(t, ExitError, ee.ExitCode())
			assert.Contains(t, errb.String(), c.want)
			assert.NotContains(t, errb.String(), value, "the value is never echoed")
			assert.NotContains(t, errb.String(), "abc", "nor a short one")
		})
	}
	assert.Empty(t, snapshot(t, dir).files, "nothing was written to the backend")
	assert.False(t, namespaceExists(t, "slipway-si-dev"), "nothing was created")
}

// TestCLI_EmptyPassphraseWarnsWhenSecretsGoToAFileBackend: secrets in the
// file backend under an empty passphrase get a warning; with a passphrase
// they do not.
func TestCLI_EmptyPassphraseWarnsWhenSecretsGoToAFileBackend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig, "--secret-env", "TOKEN=SP_WARN_TOKEN"}
	r := exe(t, dir, []string{"PULUMI_CONFIG_PASSPHRASE=", "SP_WARN_TOKEN=warn-token-2f81"}, append([]string{"preview", "--env", "pw-dev"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, automation.WeakSecretsWarning)
	assert.Contains(t, r.stderr, "PULUMI_CONFIG_PASSPHRASE")

	r = exe(t, t.TempDir(), []string{"PULUMI_CONFIG_PASSPHRASE=a-real-passphrase", "SP_WARN_TOKEN=warn-token-2f81"}, append([]string{"preview", "--env", "pw-dev"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, automation.WeakSecretsWarning)
}
