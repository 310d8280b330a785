// Package promtest starts a real Prometheus and a Pushgateway for tests,
// the way controller-runtime's envtest starts a control plane: Start runs
// both on free loopback ports, waits until they are ready and stops them
// when the test ends. Prometheus scrapes the Pushgateway every second
// (honor_labels, so a pushed job label is kept), so a test pushes a value
// with Push, waits with WaitFor until Prometheus has scraped it, and then
// queries Prometheus at URL.
//
// The binaries come from Debian (prometheus 2.42, prometheus-pushgateway);
// when one is missing the test fails with the command that installs it.
// Every wait has a deadline.
package promtest

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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// ScrapeInterval is how often Prometheus scrapes the Pushgateway.
const ScrapeInterval = time.Second

// ReadyTimeout bounds how long Start waits for each server to be ready.
const ReadyTimeout = 60 * time.Second

// WaitTimeout bounds how long WaitFor waits for a value to be scraped.
const WaitTimeout = 30 * time.Second

// Servers are a running Prometheus and Pushgateway.
type Servers struct {
	// URL is Prometheus' base URL ("http://127.0.0.1:PORT"), for its
	// query API.
	URL string
	// PushgatewayURL is the Pushgateway's base URL.
	PushgatewayURL string

	api promv1.API
}

// binary finds a Debian tool on PATH, or says which package installs it.
func binary(name, pkg string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("promtest: %s is not on PATH; it comes from the Debian package %s: install it with apt-get install -y %s (.ci/test installs it when missing)", name, pkg, pkg)
	}
	return path, nil
}

// Start starts a Pushgateway and a Prometheus that scrapes it, waits until
// both are ready and stops them in t.Cleanup. The test fails (it never
// skips) when a binary is missing or a server does not become ready.
func Start(t testing.TB) *Servers {
	t.Helper()
	promBin, err := binary("prometheus", "prometheus")
	if err != nil {
		t.Fatal(err)
	}
	pushBin, err := binary("prometheus-pushgateway", "prometheus-pushgateway")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	pushAddr := freeAddr(t)
	startProcess(t, dir, "pushgateway", pushBin,
		"--web.listen-address="+pushAddr,
		"--persistence.file=", // the Debian default is a file under /var/lib
		"--log.level=warn")

	promAddr := freeAddr(t)
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: [%[2]q]
`, model.Duration(ScrapeInterval), pushAddr)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatalf("promtest: writing the Prometheus configuration: %v", err)
	}
	startProcess(t, dir, "prometheus", promBin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr,
		"--log.level=warn")

	s := &Servers{URL: "http://" + promAddr, PushgatewayURL: "http://" + pushAddr}
	client, err := api.NewClient(api.Config{Address: s.URL})
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	s.api = promv1.NewAPI(client)
	return s
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("promtest: finding a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	return addr
}

// startProcess starts a server, waits until /-/ready at its
// --web.listen-address answers 200, and stops it (SIGTERM, then SIGKILL
// after 30s) in t.Cleanup, failing the test if it does not exit cleanly.
func startProcess(t testing.TB, dir, name, bin string, args ...string) {
	t.Helper()
	var addr string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			addr = v
		}
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logFile, logFile, dir
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("promtest: starting %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var stopped bool
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		defer func() { _ = logFile.Close() }()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("promtest: stopping %s: %w", name, err)
		}
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("promtest: %s exited with %v on SIGTERM; its log:\n%s", name, err, tail(logPath))
			}
			return nil
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("promtest: %s did not stop within 30s of SIGTERM and was killed; its log:\n%s", name, tail(logPath))
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})

	ready := "http://" + addr + "/-/ready"
	deadline := time.Now().Add(ReadyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(ready)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			stopped = true
			_ = logFile.Close()
			t.Fatalf("promtest: %s exited before it was ready (%v); its log:\n%s", name, err, tail(logPath))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: %s was not ready at %s within %s; its log:\n%s", name, ready, ReadyTimeout, tail(logPath))
		}
	}
}

// tail returns the end of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Push sets metric to value in the Pushgateway's group for job (replacing
// the metric's earlier value there). The sample carries the label
// job=<job> once scraped.
func (s *Servers) Push(t testing.TB, job, metric string, value float64) {
	t.Helper()
	if err := s.push(context.Background(), job, metric, value); err != nil {
		t.Fatal(err)
	}
}

// push is Push returning its error.
func (s *Servers) push(ctx context.Context, job, metric string, value float64) error {
	body := metric + " " + strconv.FormatFloat(value, 'g', -1, 64) + "\n"
	u := s.PushgatewayURL + "/metrics/job/" + url.PathEscape(job)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewBufferString(body))
	if err != nil {
		return fmt.Errorf("promtest: pushing %s=%v for job %q: %w", metric, value, job, err)
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("promtest: pushing %s=%v for job %q: %w", metric, value, job, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("promtest: pushing %s=%v for job %q: %s: %s", metric, value, job, resp.Status, msg)
	}
	return nil
}

// WaitFor polls Prometheus until query returns want — as a scalar or a
// one-element vector — and fails the test after WaitTimeout with the last
// answer.
func (s *Servers) WaitFor(t testing.TB, query string, want float64) {
	t.Helper()
	if err := s.waitFor(context.Background(), query, want); err != nil {
		t.Fatal(err)
	}
}

// waitFor is WaitFor returning its error; it also ends with ctx.
func (s *Servers) waitFor(ctx context.Context, query string, want float64) error {
	ctx, cancel := context.WithTimeout(ctx, WaitTimeout)
	defer cancel()
	last := "no answer yet"
	for {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		v, _, _, err := s.api.Query(qctx, query, time.Time{})
		qcancel()
		switch {
		case err != nil:
			last = err.Error()
		default:
			last = v.String()
			if got, ok := single(v); ok && got == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promtest: %q did not return %v within %s (%v); last answer: %s", query, want, WaitTimeout, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Set pushes metric=value for job (as Push) and waits until Prometheus
// returns it for metric{job="<job>"} (as WaitFor, ending with ctx too), so
// a query made afterwards sees the new value. It returns an error instead
// of failing a test, for fault injectors (slipwaytest.SetMetric).
func (s *Servers) Set(ctx context.Context, job, metric string, value float64) error {
	if err := s.push(ctx, job, metric, value); err != nil {
		return err
	}
	return s.waitFor(ctx, fmt.Sprintf("%s{job=%q}", metric, job), value)
}

// single returns the value of a scalar or one-element vector.
func single(v model.Value) (float64, bool) {
	switch v := v.(type) {
	case *model.Scalar:
		return float64(v.Value), true
	case model.Vector:
		if len(v) == 1 {
			return float64(v[0].Value), true
		}
	}
	return 0, false
}
