package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// server is a running `slipway serve`.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

// syncBuffer collects a process's output for the test's messages.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

var servingRE = regexp.MustCompile(`serving on (http://\S+)`)

// startServe starts `slipway --dir dir serve args...` and waits for its
// "serving on" line.
func startServe(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--dir", dir, "serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	s := &server{cmd: cmd, stderr: newSyncBuffer(), done: make(chan error, 1)}
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.stderr, line)
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case s.url = <-found:
	case err := <-s.done:
		t.Fatalf("serve exited before serving: %v\n%s", err, s.stderr)
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve printed no \"serving on\" line in 2 minutes:\n%s", s.stderr)
	}
	return s
}

// stop interrupts the server (as Ctrl-C does) and returns its exit code.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		t.Fatalf("serve did not stop within 30s of SIGINT:\n%s", s.stderr)
		return -1
	}
}

// artifactDir is where tests save files for people to look at:
// $SLIPWAY_ARTIFACT_DIR, else <tmp>/slipway-artifacts.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SLIPWAY_ARTIFACT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "slipway-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// browser returns Chromium's path; the test fails without it (the README's
// test command, .ci/test, installs Debian's package when it is missing).
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: the dashboard test needs a real headless browser. Run the tests with " +
		".ci/test (it installs Debian's package), or apt-get install -y chromium")
	return ""
}

// chromium runs headless Chromium at a laptop's window size.
func chromium(t *testing.T, path string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(), "--window-size=1440,900"}
	cmd := exec.CommandContext(ctx, path, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "chromium %s:\n%s", strings.Join(args, " "), errb.String())
	return out.Bytes()
}

// page loads a dashboard page: its DOM through Chromium.
func page(t *testing.T, chrome, url string) string {
	t.Helper()
	return string(chromium(t, chrome, "--dump-dom", url))
}

// screenshot saves a PNG of url into the artifact directory and checks it.
func screenshot(t *testing.T, chrome, url, name string) string {
	t.Helper()
	path := filepath.Join(artifactDir(t), name)
	_ = os.Remove(path)
	chromium(t, chrome, "--screenshot="+path, url)
	b, err := os.ReadFile(path)
	require.NoError(t, err, "chromium wrote no screenshot")
	require.True(t, bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")), "the screenshot is a PNG")
	assert.Greater(t, len(b), 20<<10, "a rendered page, not a blank one (%d bytes)", len(b))
	t.Logf("screenshot of %s: %s", url, path)
	return path
}

var envRowRE = regexp.MustCompile(`(?s)<tr data-env="([^"]+)">(.*?)</tr>`)
var tagsRE = regexp.MustCompile(`<[^>]+>`)

// plain strips tags and collapses spaces.
func plain(s string) string {
	return strings.Join(strings.Fields(tagsRE.ReplaceAllString(s, " ")), " ")
}

// TestServe_DashboardShowsTheEnvironmentsOfAScriptedRunInABrowser: two web
// environments are brought up and one drifts; `slipway serve` on a free
// loopback port, loaded in headless Chromium at 1440×900, lists both with
// their last results, shows the drifted property, and is saved as a
// screenshot; SIGINT stops it with exit code 0.
func TestServe_DashboardShowsTheEnvironmentsOfAScriptedRunInABrowser(t *testing.T) {
	t.Parallel()
	chrome := browser(t)
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig, "--set", "GREETING=hi"}
	r := exe(t, dir, nil, append([]string{"up", "--env", "sv-dev,sv-qa"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAfter(t, dir, "sv-dev", "sv-qa")
	editConfigMap(t, "slipway-sv-dev", "GREETING", "edited by hand")
	r = exe(t, dir, nil, append([]string{"drift", "--env", "sv-dev"}, k...)...)
	require.Equal(t, ExitChanges, r.code, r.stderr)

	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "serve-test-token-0f1e2d3c4b5a"
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	keyFile, _ := approvalKeys(t)
	s := startServe(t, dir, nil, "--addr", "127.0.0.1:0", "--api-token", "ci=@"+tokenFile, "--approval-key-file", keyFile)
	assert.Regexp(t, `^http://127\.0\.0\.1:[0-9]+$`, s.url)

	dom := page(t, chrome, s.url+"/")
	rows := map[string]string{}
	for _, m := range envRowRE.FindAllStringSubmatch(dom, -1) {
		rows[m[1]] = plain(m[2])
	}
	require.Contains(t, rows, "slipway/sv-dev", "the dashboard lists sv-dev:\n%s", dom)
	require.Contains(t, rows, "slipway/sv-qa", "the dashboard lists sv-qa:\n%s", dom)
	assert.Contains(t, rows["slipway/sv-dev"], "drifted drift changes", "sv-dev's last run is the drift check that found changes")
	assert.Contains(t, rows["slipway/sv-qa"], "healthy up succeeded", "sv-qa's last run is its up")
	assert.Contains(t, rows["slipway/sv-qa"], "applied", "sv-qa's last release")

	details := page(t, chrome, s.url+"/env/slipway/sv-dev")
	assert.Contains(t, details, "GREETING", "the drifted property's path")
	assert.NotContains(t, details, "edited by hand", "never a property's value")
	assert.Contains(t, details, "<svg", "the DORA charts")

	screenshot(t, chrome, s.url+"/", "dashboard.png")
	screenshot(t, chrome, s.url+"/env/slipway/sv-dev", "dashboard-env.png")

	// The server's other endpoints and its guards.
	get := func(path string, hdr ...string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		if len(hdr)%2 == 1 {
			req.Host = hdr[len(hdr)-1]
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusOK, get("/healthz").StatusCode)
	assert.Equal(t, http.StatusMisdirectedRequest, get("/", "rebound.example.com").StatusCode, "a page of another host cannot reach a loopback server")
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(metrics), `slipway_dora_deployments{environment="sv-qa",project="slipway"} 1`)
	assert.Contains(t, string(metrics), "go_goroutines")
	post := func(auth string) int {
		req, err := http.NewRequest(http.MethodPost, s.url+"/api/approvals/20300101T000000.000000000Z-00000000", strings.NewReader(`{"decision":"approve"}`))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, post(""), "no token")
	assert.Equal(t, http.StatusUnauthorized, post("Bearer wrong"), "wrong token")
	assert.Equal(t, http.StatusNotFound, post("Bearer "+token), "the token from --api-token passes (no such request)")
	pr, err := http.Post(s.url+"/", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	pr.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, pr.StatusCode)

	assert.Equal(t, 0, s.stop(t), "a clean exit on SIGINT:\n%s", s.stderr)
	assert.NotContains(t, s.stderr.String(), token, "the token is never logged")
}

// TestServe_BadInputIsRefusedNamingTheFlag: serve refuses bad flags with
// exit code 1 and a message naming the flag, before it listens.
func TestServe_BadInputIsRefusedNamingTheFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("a-secret-of-some-length-0123\n"), 0o600))
	keyFile, pubFile := approvalKeys(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"addr without port", []string{"--addr", "127.0.0.1"}, `--addr "127.0.0.1" is not HOST:PORT`},
		{"addr bad port", []string{"--addr", "127.0.0.1:http-alt"}, `--addr "127.0.0.1:http-alt": port "http-alt" is not a number`},
		{"addr port out of range", []string{"--addr", "127.0.0.1:70000"}, "is not a number from 0 to 65535"},
		{"addr bad host", []string{"--addr", "not a host:80"}, `host "not a host" is not an IP address`},
		{"the shared token file", []string{"--token-file", secret}, "give each caller a named token with --api-token NAME=@PATH"},
		{"api token on the command line", []string{"--api-token", "ci=a-secret-of-some-length-0123"}, `--api-token "ci=…" is not NAME=@PATH`},
		{"api token file missing", []string{"--api-token", "ci=@/nonexistent/token", "--approval-key-file", keyFile}, `--api-token ci "/nonexistent/token" is not a readable file`},
		{"api token file empty", []string{"--api-token", "ci=@" + empty, "--approval-key-file", keyFile}, `--api-token ci "` + empty + `" is empty`},
		{"api token without the key", []string{"--api-token", "ci=@" + secret}, "--approval-key-file is required"},
		{"approval key is the public key", []string{"--api-token", "ci=@" + secret, "--approval-key-file", pubFile}, "--approval-key-file"},
		{"slack secret empty", []string{"--slack-signing-secret-file", empty}, "--slack-signing-secret-file"},
		{"slack without workspace", []string{"--slack-signing-secret-file", secret, "--slack-approvers", "U123", "--approval-key-file", keyFile}, "--slack-team-id"},
		{"slack without approvers", []string{"--slack-signing-secret-file", secret, "--slack-team-id", "T123", "--approval-key-file", keyFile}, "--slack-approvers"},
		{"since unparsable", []string{"--since", "a month"}, `--since "a month" is not a window`},
		{"since zero", []string{"--since", "0d"}, "--since"},
		{"rate zero", []string{"--rate", "0"}, "--rate 0 must be positive"},
		{"burst zero", []string{"--burst", "0"}, "--burst 0 must be at least 1"},
		{"definition unknown", []string{"--definition", "nosuch"}, `--definition "nosuch" is not a definition of slipway`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := exe(t, dir, nil, append([]string{"serve"}, c.args...)...)
			assert.Equal(t, ExitError, r.code, r.stderr)
			assert.Contains(t, r.stderr, c.want)
			assert.NotContains(t, r.stderr, "serving on")
			assert.NotContains(t, r.stderr, "a-secret-of-some-length-0123", "a secret is never echoed")
		})
	}
}
