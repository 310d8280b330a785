package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// approvalKeys writes a fresh Ed25519 key pair as PEM files, as
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` do.
func approvalKeys(t *testing.T) (private, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	pk, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	dir := t.TempDir()
	private, public = filepath.Join(dir, "approval-key.pem"), filepath.Join(dir, "approval-key.pub")
	require.NoError(t, os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600))
	require.NoError(t, os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644))
	return private, public
}

// tokenFile writes a bearer token into a file and returns its path.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	return p
}

var requestRE = regexp.MustCompile(`waits up to \S+ for approval \(request (\S+)\)`)

// waitingPromotion starts `slipway promote` of one stage that waits for
// approval and returns the request ID it announces and a channel with
// its exit code and stderr.
func waitingPromotion(t *testing.T, dir, stage, pubFile string) (string, <-chan outcome) {
	t.Helper()
	cmd := exec.Command(binary, "--dir", dir, "promote", "--through", stage, "--approve", stage, "--approval-wait", "4m",
		"--approval-public-key-file", pubFile, "--requested-by", "ci-bot", "--kubeconfig", cluster.Kubeconfig, "--set", "GREETING=hi")
	cmd.Env = append(os.Environ(), "SLIPWAY_APPROVE=")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	ids := make(chan string, 1)
	stderr := newSyncBuffer()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(stderr, sc.Text())
			if m := requestRE.FindStringSubmatch(sc.Text()); m != nil {
				ids <- m[1]
			}
		}
	}()
	done := make(chan outcome, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned
		r := outcome{stderr: stderr.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			r.code = -1
		}
		done <- r
	}()
	select {
	case id := <-ids:
		return id, done
	case r := <-done:
		t.Fatalf("promote ended without asking for approval: exit %d\n%s", r.code, r.stderr)
	case <-time.After(8 * time.Minute):
		t.Fatalf("promote asked for no approval in 8 minutes:\n%s", stderr)
	}
	return "", nil
}

// decide posts a decision to a server's approvals API with a token.
func decide(t *testing.T, s *server, id, token, decision string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/api/approvals/"+id, strings.NewReader(`{"decision":"`+decision+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestServe_TwoServersApproveAtOnce_OneWinsAndOnlyItsSignedDecisionCounts:
// a promotion waits for approval; the token that requested it cannot
// approve it (403); two `slipway serve` processes on the same backend
// approve it at the same moment, with tokens named alice and bob: exactly
// one gets 200 and the other 409, the decision is recorded under the
// winner's token name, and the promotion proceeds. A promotion that
// verifies with another public key refuses the same server's approval
// and deploys nothing.
func TestServe_TwoServersApproveAtOnce_OneWinsAndOnlyItsSignedDecisionCounts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile, pubFile := approvalKeys(t)
	const alice, bob, bot = "alice-token-0123456789", "bob-token-0123456789", "ci-bot-token-0123456789"
	destroyAfter(t, dir, "ap-dev", "ap-qa")

	id, done := waitingPromotion(t, dir, "ap-dev", pubFile)
	a := startServe(t, dir, nil, "--addr", "127.0.0.1:0", "--approval-key-file", keyFile,
		"--api-token", "alice=@"+tokenFile(t, alice), "--api-token", "ci-bot=@"+tokenFile(t, bot))
	b := startServe(t, dir, nil, "--addr", "127.0.0.1:0", "--approval-key-file", keyFile, "--api-token", "bob=@"+tokenFile(t, bob))

	code, body := decide(t, a, id, bot, "approve")
	assert.Equal(t, http.StatusForbidden, code, "the requester cannot approve: %s", body)
	assert.Contains(t, body, "ci-bot requested this promotion")

	type answer struct {
		who  string
		code int
		body string
	}
	start := make(chan struct{})
	answers := make(chan answer, 2)
	for _, c := range []struct {
		who, token string
		s          *server
	}{{"alice", alice, a}, {"bob", bob, b}} {
		go func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, c.s.url+"/api/approvals/"+id, strings.NewReader(`{"decision":"approve"}`))
			if err != nil {
				answers <- answer{c.who, -1, err.Error()}
				return
			}
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{c.who, -1, err.Error()}
				return
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{c.who, resp.StatusCode, string(rb)}
		}()
	}
	close(start)
	got := map[int]answer{}
	for range 2 {
		an := <-answers
		got[an.code] = an
	}
	require.Contains(t, got, http.StatusOK, "one server records the approval: %v", got)
	require.Contains(t, got, http.StatusConflict, "the other reports the conflict: %v", got)
	winner, loser := got[http.StatusOK], got[http.StatusConflict]
	assert.Contains(t, loser.body, "was approved by "+winner.who+" via api", "the loser names the decision that stands")
	var rec struct{ Status, By, Via string }
	require.NoError(t, json.Unmarshal([]byte(winner.body), &rec))
	assert.Equal(t, "approved", rec.Status)
	assert.Equal(t, winner.who, rec.By, "the decision is recorded under the token's name")

	var r outcome
	select {
	case r = <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("the promotion did not proceed after the approval")
	}
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, namespaceExists(t, "slipway-ap-dev"), "the approved stage deployed")

	// A gate holding another public key refuses the server's approval.
	_, otherPub := approvalKeys(t)
	id2, done2 := waitingPromotion(t, dir, "ap-qa", otherPub)
	code, body = decide(t, a, id2, alice, "approve")
	require.Equal(t, http.StatusOK, code, body)
	select {
	case r = <-done2:
	case <-time.After(5 * time.Minute):
		t.Fatal("the promotion did not end after the approval")
	}
	assert.Equal(t, ExitError, r.code, r.stderr)
	assert.Contains(t, r.stderr, "refusing the approval of request "+id2)
	assert.Contains(t, r.stderr, "signature does not verify")
	assert.False(t, namespaceExists(t, "slipway-ap-qa"), "nothing deployed")

	for _, s := range []*server{a, b} {
		assert.Equal(t, 0, s.stop(t), "a clean exit on SIGINT:\n%s", s.stderr)
		for _, tok := range []string{alice, bob, bot} {
			assert.NotContains(t, s.stderr.String(), tok, "a token is never logged")
		}
	}
}
