package gitsource_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/slipwayhq/slipway/automation/fleet/gitsource"
)

const (
	testUser     = "fleet-bot"
	testPassword = "s3cret-Pa55word"
	paramsFile   = "envs/prod/params.yaml"
)

// server is a Git smart-HTTP server on loopback (gittestserver, which runs
// the system's git upload-pack/receive-pack) with basic auth on.
type server struct {
	srv *gittestserver.GitServer
	// infoRefs counts GET .../info/refs?service=git-upload-pack requests
	// (one per fetch session).
	infoRefs atomic.Int32
}

func newServer(t *testing.T) *server {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, os.RemoveAll(srv.Root())) })
	s := &server{srv: srv}
	srv.Auth(testUser, testPassword)
	srv.AddHTTPMiddlewares(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") &&
				r.URL.Query().Get("service") == "git-upload-pack" {
				s.infoRefs.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	require.NoError(t, srv.StartHTTP())
	t.Cleanup(srv.StopHTTP)
	return s
}

// repo is a bare repository on the server and a local in-memory clone
// that commits and pushes to it.
type repo struct {
	t     *testing.T
	url   string // without credentials
	bare  string // the bare repository's directory
	local *git.Repository
	auth  *githttp.BasicAuth
	when  time.Time
}

func (s *server) newRepo(t *testing.T, name string) *repo {
	t.Helper()
	main := plumbing.NewBranchReferenceName("main")
	bare := filepath.Join(s.srv.Root(), name+".git")
	_, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: main}})
	require.NoError(t, err)
	local, err := git.InitWithOptions(memory.NewStorage(), memfs.New(), git.InitOptions{DefaultBranch: main})
	require.NoError(t, err)
	u := s.srv.HTTPAddress() + "/" + name + ".git"
	_, err = local.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{u}})
	require.NoError(t, err)
	return &repo{t: t, url: u, bare: bare, local: local,
		auth: &githttp.BasicAuth{Username: testUser, Password: testPassword},
		when: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// commit writes files (path → content) on the checked-out branch, commits
// and pushes every branch and tag.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	wt, err := r.local.Worktree()
	require.NoError(r.t, err)
	for p, content := range files {
		f, err := wt.Filesystem.Create(p)
		require.NoError(r.t, err)
		_, err = f.Write([]byte(content))
		require.NoError(r.t, err)
		require.NoError(r.t, f.Close())
		_, err = wt.Add(p)
		require.NoError(r.t, err)
	}
	r.when = r.when.Add(time.Minute)
	h, err := wt.Commit("update params", &git.CommitOptions{Author: &object.Signature{Name: "Test", Email: "test@example.com", When: r.when}})
	require.NoError(r.t, err)
	r.push()
	return h.String()
}

func (r *repo) push() {
	r.t.Helper()
	err := r.local.PushContext(context.Background(), &git.PushOptions{
		RemoteName: git.DefaultRemoteName,
		RefSpecs:   []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Auth:       r.auth,
	})
	if !errors.Is(err, git.NoErrAlreadyUpToDate) {
		require.NoError(r.t, err)
	}
}

// tag tags commit and pushes.
func (r *repo) tag(name, commit string, annotated bool) {
	r.t.Helper()
	var opts *git.CreateTagOptions
	if annotated {
		opts = &git.CreateTagOptions{Message: "release " + name, Tagger: &object.Signature{Name: "Test", Email: "test@example.com", When: r.when}}
	}
	_, err := r.local.CreateTag(name, plumbing.NewHash(commit), opts)
	require.NoError(r.t, err)
	r.push()
}

// checkout switches the local clone to branch, creating it at HEAD.
func (r *repo) checkout(branch string, create bool) {
	r.t.Helper()
	wt, err := r.local.Worktree()
	require.NoError(r.t, err)
	require.NoError(r.t, wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}))
}

// source is a Source for the repository's params file with good credentials.
func (r *repo) source() gitsource.Source {
	return gitsource.Source{URL: r.url, Path: paramsFile, Auth: r.auth}
}

func fetch(t *testing.T, s gitsource.Source) gitsource.Result {
	t.Helper()
	res, err := gitsource.Fetch(context.Background(), s)
	require.NoError(t, err)
	return res
}

func resolve(t *testing.T, s gitsource.Source) string {
	t.Helper()
	c, err := gitsource.Resolve(context.Background(), s)
	require.NoError(t, err)
	return c
}

func TestFetchBranchFollowsNewCommits(t *testing.T) {
	r := newServer(t).newRepo(t, "params")
	c1 := r.commit(map[string]string{paramsFile: "replicas: 1\n", "README.md": "hi\n"})
	r.checkout("staging", true)
	cStaging := r.commit(map[string]string{paramsFile: "replicas: 9\n"})
	r.checkout("main", false)

	s := r.source()
	s.Branch = "main"
	assert.Equal(t, c1, resolve(t, s))
	res := fetch(t, s)
	assert.Equal(t, c1, res.Commit)
	assert.Equal(t, "replicas: 1\n", string(res.Content))

	c2 := r.commit(map[string]string{paramsFile: "replicas: 2\n"})
	require.NotEqual(t, c1, c2)
	assert.Equal(t, c2, resolve(t, s))
	res = fetch(t, s)
	assert.Equal(t, c2, res.Commit)
	assert.Equal(t, "replicas: 2\n", string(res.Content))

	// Another branch, and the path spelled with a leading "./".
	s.Branch = "staging"
	s.Path = "./" + paramsFile
	assert.Equal(t, cStaging, resolve(t, s))
	res = fetch(t, s)
	assert.Equal(t, cStaging, res.Commit)
	assert.Equal(t, "replicas: 9\n", string(res.Content))
}

func TestFetchDefaultBranch(t *testing.T) {
	r := newServer(t).newRepo(t, "params")
	r.commit(map[string]string{paramsFile: "a: 1\n"})
	c2 := r.commit(map[string]string{paramsFile: "a: 2\n"})

	s := r.source() // no branch, tag or commit: the remote's HEAD (main)
	assert.Equal(t, c2, resolve(t, s))
	res := fetch(t, s)
	assert.Equal(t, c2, res.Commit)
	assert.Equal(t, "a: 2\n", string(res.Content))
}

func TestFetchTag(t *testing.T) {
	r := newServer(t).newRepo(t, "params")
	c1 := r.commit(map[string]string{paramsFile: "v: 1\n"})
	r.tag("v1.0.0", c1, false)
	c2 := r.commit(map[string]string{paramsFile: "v: 2\n"})
	r.tag("v2.0.0", c2, true)
	r.commit(map[string]string{paramsFile: "v: 3\n"})

	for _, tc := range []struct {
		tag, commit, content string
	}{
		{"v1.0.0", c1, "v: 1\n"}, // lightweight
		{"v2.0.0", c2, "v: 2\n"}, // annotated: resolves to the commit, not the tag object
	} {
		t.Run(tc.tag, func(t *testing.T) {
			s := r.source()
			s.Tag = tc.tag
			assert.Equal(t, tc.commit, resolve(t, s))
			res := fetch(t, s)
			assert.Equal(t, tc.commit, res.Commit)
			assert.Equal(t, tc.content, string(res.Content))
		})
	}
}

func TestFetchPinnedCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		// allowSHA1 sets uploadpack.allowReachableSHA1InWant on the server,
		// so the commit is fetched alone (one session) rather than with
		// every branch (a first session that finds the server cannot, then
		// a full fetch).
		allowSHA1 bool
		sessions  int32
	}{
		{"full fetch", false, 2},
		{"fetch by SHA-1", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			r := srv.newRepo(t, "params")
			if tc.allowSHA1 {
				bare, err := git.PlainOpen(r.bare)
				require.NoError(t, err)
				cfg, err := bare.Config()
				require.NoError(t, err)
				cfg.Raw.Section("uploadpack").SetOption("allowReachableSHA1InWant", "true")
				require.NoError(t, bare.SetConfig(cfg))
			}
			c1 := r.commit(map[string]string{paramsFile: "pinned: 1\n"})
			r.commit(map[string]string{paramsFile: "pinned: 2\n"})
			r.commit(map[string]string{paramsFile: "pinned: 3\n"})

			s := r.source()
			s.Commit = strings.ToUpper(c1) // any case
			c, err := gitsource.Resolve(context.Background(), s)
			require.NoError(t, err)
			assert.Equal(t, c1, c)
			assert.Equal(t, int32(0), srv.infoRefs.Load(), "Resolve of a pinned commit contacts no one")

			res := fetch(t, s)
			assert.Equal(t, c1, res.Commit)
			assert.Equal(t, "pinned: 1\n", string(res.Content))
			assert.Equal(t, tc.sessions, srv.infoRefs.Load())

			s.Commit = strings.Repeat("ab", 20)
			_, err = gitsource.Fetch(context.Background(), s)
			require.Error(t, err)
			assert.ErrorIs(t, err, gitsource.ErrRefNotFound)
			assert.Contains(t, err.Error(), "commit "+s.Commit+" not found")
			assert.Contains(t, err.Error(), r.url)
		})
	}
}

func TestFetchMissingPath(t *testing.T) {
	r := newServer(t).newRepo(t, "params")
	c1 := r.commit(map[string]string{paramsFile: "a: 1\n"})

	s := r.source()
	s.Branch = "main"
	s.Path = "envs/dev/params.yaml"
	_, err := gitsource.Fetch(context.Background(), s)
	require.Error(t, err)
	assert.ErrorIs(t, err, gitsource.ErrPathNotFound)
	assert.Contains(t, err.Error(), "envs/dev/params.yaml not found at commit "+c1)

	s.Path = "envs/prod"
	_, err = gitsource.Fetch(context.Background(), s)
	require.Error(t, err)
	assert.ErrorIs(t, err, gitsource.ErrPathNotFound)
	assert.Contains(t, err.Error(), "envs/prod at commit "+c1)
	assert.Contains(t, err.Error(), "is a directory")
}

func TestFetchMissingRef(t *testing.T) {
	srv := newServer(t)
	r := srv.newRepo(t, "params")
	r.commit(map[string]string{paramsFile: "a: 1\n"})

	for _, tc := range []struct {
		name string
		set  func(*gitsource.Source)
		want string
	}{
		{"branch", func(s *gitsource.Source) { s.Branch = "nope" }, `branch "nope" not found in ` + r.url},
		{"tag", func(s *gitsource.Source) { s.Tag = "v9" }, `tag "v9" not found in ` + r.url},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := r.source()
			tc.set(&s)
			_, err := gitsource.Fetch(context.Background(), s)
			require.Error(t, err)
			assert.ErrorIs(t, err, gitsource.ErrRefNotFound)
			assert.Contains(t, err.Error(), tc.want)

			_, err = gitsource.Resolve(context.Background(), s)
			require.Error(t, err)
			assert.ErrorIs(t, err, gitsource.ErrRefNotFound)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	t.Run("empty repository", func(t *testing.T) {
		empty := srv.newRepo(t, "empty")
		_, err := gitsource.Fetch(context.Background(), empty.source())
		require.Error(t, err)
		assert.ErrorIs(t, err, gitsource.ErrRefNotFound)
		assert.Contains(t, err.Error(), empty.url)
	})

	t.Run("no repository", func(t *testing.T) {
		s := r.source()
		s.URL = srv.srv.HTTPAddress() + "/missing.git"
		_, err := gitsource.Fetch(context.Background(), s)
		require.Error(t, err)
		assert.Contains(t, err.Error(), s.URL)
	})
}

func TestFetchAuthFailure(t *testing.T) {
	r := newServer(t).newRepo(t, "params")
	r.commit(map[string]string{paramsFile: "a: 1\n"})
	const wrong = "wr0ng-Pa55word-xyz"

	for _, tc := range []struct {
		name string
		auth transport.AuthMethod
		want string
	}{
		{"wrong password", &githttp.BasicAuth{Username: testUser, Password: wrong}, "authentication to " + r.url + " failed"},
		{"bearer token", &githttp.TokenAuth{Token: wrong}, "authentication to " + r.url + " failed"},
		{"no credentials", nil, r.url + " requires authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []gitsource.Source{
				{URL: r.url, Branch: "main", Path: paramsFile, Auth: tc.auth},
				{URL: r.url, Commit: strings.Repeat("0", 40), Path: paramsFile, Auth: tc.auth},
			} {
				_, err := gitsource.Fetch(context.Background(), s)
				require.Error(t, err)
				assert.ErrorIs(t, err, gitsource.ErrAuth)
				assert.Contains(t, err.Error(), tc.want)
				assert.NotContains(t, err.Error(), wrong)
				assert.NotContains(t, err.Error(), testPassword)
			}
			_, err := gitsource.Resolve(context.Background(), gitsource.Source{URL: r.url, Path: paramsFile, Auth: tc.auth})
			require.Error(t, err)
			assert.ErrorIs(t, err, gitsource.ErrAuth)
			assert.NotContains(t, err.Error(), wrong)
		})
	}
}

func TestFetchCanceled(t *testing.T) {
	r := newServer(t).newRepo(t, "params")
	r.commit(map[string]string{paramsFile: "a: 1\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := gitsource.Fetch(ctx, r.source())
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = gitsource.Resolve(ctx, r.source())
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestInvalidSource(t *testing.T) {
	basic := &githttp.BasicAuth{Username: "u", Password: "p"}
	sshAuth := sshSecretAuth(t, "127.0.0.1:22")
	for _, tc := range []struct {
		name string
		src  gitsource.Source
		want string
	}{
		{"no URL", gitsource.Source{Path: "p"}, "has no URL"},
		{"bad scheme", gitsource.Source{URL: "ftp://h/r.git", Path: "p"}, `scheme "ftp"`},
		{"password in URL", gitsource.Source{URL: "https://me:hunter2@h/r.git", Path: "p"}, "carries a password"},
		{"two refs", gitsource.Source{URL: "https://h/r.git", Branch: "main", Tag: "v1", Path: "p"}, "more than one"},
		{"short commit", gitsource.Source{URL: "https://h/r.git", Commit: "abc123", Path: "p"}, "not a full SHA-1"},
		{"full ref name", gitsource.Source{URL: "https://h/r.git", Branch: "refs/heads/main", Path: "p"}, "short name"},
		{"no path", gitsource.Source{URL: "https://h/r.git", Path: "/"}, "has no path"},
		{"path outside", gitsource.Source{URL: "https://h/r.git", Path: "a/../../etc/passwd"}, "leaves the repository"},
		{"HTTP credentials for SSH", gitsource.Source{URL: "ssh://git@h/r.git", Path: "p", Auth: basic}, "credentials are for HTTP"},
		{"SSH credentials for HTTPS", gitsource.Source{URL: "https://h/r.git", Path: "p", Auth: sshAuth}, "credentials are for SSH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gitsource.Fetch(context.Background(), tc.src)
			require.Error(t, err)
			assert.ErrorIs(t, err, gitsource.ErrInvalidSource)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
			_, err = gitsource.Resolve(context.Background(), tc.src)
			assert.ErrorIs(t, err, gitsource.ErrInvalidSource)
		})
	}
}

// sshKey returns a new PEM-encoded private key and its public key.
func sshKey(t *testing.T, passphrase string) ([]byte, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(block), sshPub
}

// sshSecretAuth is SSH credentials for a host whose key is made up.
func sshSecretAuth(t *testing.T, host string) transport.AuthMethod {
	t.Helper()
	identity, _ := sshKey(t, "")
	_, hostKey := sshKey(t, "")
	auth, err := gitsource.AuthFromSecret(map[string][]byte{
		"identity":    identity,
		"known_hosts": []byte(knownhosts.Line([]string{host}, hostKey) + "\n"),
	})
	require.NoError(t, err)
	return auth
}

func TestAuthFromSecret(t *testing.T) {
	identity, _ := sshKey(t, "")
	encrypted, _ := sshKey(t, "key-Passphrase-42")
	_, hostKey := sshKey(t, "")
	knownHosts := []byte(knownhosts.Line([]string{"git.example.com"}, hostKey) + "\n")

	for _, tc := range []struct {
		name     string
		data     map[string][]byte
		wantName string // AuthMethod.Name(); "" with wantErr means nil auth
		wantErr  string
	}{
		{name: "nil", data: nil},
		{name: "empty values", data: map[string][]byte{"username": nil, "password": {}}},
		{name: "basic", data: map[string][]byte{"username": []byte("bot"), "password": []byte("basic-Token-77")}, wantName: (&githttp.BasicAuth{}).Name()},
		{name: "bearer", data: map[string][]byte{"bearerToken": []byte("bearer-Token-77")}, wantName: (&githttp.TokenAuth{}).Name()},
		{name: "ssh", data: map[string][]byte{"identity": identity, "known_hosts": knownHosts, "identity.pub": []byte("x")}, wantName: gitssh.PublicKeysName},
		{name: "ssh with passphrase and user", data: map[string][]byte{"identity": encrypted, "password": []byte("key-Passphrase-42"), "username": []byte("deploy"), "known_hosts": knownHosts}, wantName: gitssh.PublicKeysName},
		{name: "ssh wrong passphrase", data: map[string][]byte{"identity": encrypted, "password": []byte("nope-Passphrase"), "known_hosts": knownHosts}, wantErr: "not a usable SSH private key"},
		{name: "ssh without known_hosts", data: map[string][]byte{"identity": identity}, wantErr: "no known_hosts"},
		{name: "ssh bad known_hosts", data: map[string][]byte{"identity": identity, "known_hosts": []byte("host ssh-ed25519 !!!\n")}, wantErr: "known_hosts in the credentials Secret does not parse"},
		{name: "bad identity", data: map[string][]byte{"identity": []byte("not a key"), "known_hosts": knownHosts}, wantErr: "not a usable SSH private key"},
		{name: "identity and token", data: map[string][]byte{"identity": identity, "known_hosts": knownHosts, "bearerToken": []byte("t")}, wantErr: "both identity"},
		{name: "known_hosts alone", data: map[string][]byte{"known_hosts": knownHosts}, wantErr: "no identity"},
		{name: "token and password", data: map[string][]byte{"bearerToken": []byte("t"), "username": []byte("u"), "password": []byte("p")}, wantErr: "keep either bearerToken"},
		{name: "password alone", data: map[string][]byte{"password": []byte("tok")}, wantErr: "no username"},
		{name: "username alone", data: map[string][]byte{"username": []byte("bot")}, wantErr: "no password"},
		{name: "unknown keys", data: map[string][]byte{"token": []byte("t"), "user": []byte("u")}, wantErr: "none of the keys expected: username and password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, err := gitsource.AuthFromSecret(tc.data)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				for k, v := range tc.data {
					if len(v) > 3 && k != "known_hosts" {
						assert.NotContains(t, err.Error(), string(v), "the value of %s", k)
					}
				}
				assert.Nil(t, auth)
				return
			}
			require.NoError(t, err)
			if tc.wantName == "" {
				assert.Nil(t, auth)
				return
			}
			require.NotNil(t, auth)
			assert.Equal(t, tc.wantName, auth.Name())
			for _, k := range []string{"password", "bearerToken"} {
				if v := tc.data[k]; len(v) > 0 {
					assert.NotContains(t, auth.String(), string(v))
				}
			}
		})
	}

	t.Run("basic values", func(t *testing.T) {
		auth, err := gitsource.AuthFromSecret(map[string][]byte{"username": []byte("bot"), "password": []byte("tok")})
		require.NoError(t, err)
		assert.Equal(t, &githttp.BasicAuth{Username: "bot", Password: "tok"}, auth)
		auth, err = gitsource.AuthFromSecret(map[string][]byte{"bearerToken": []byte("tok")})
		require.NoError(t, err)
		assert.Equal(t, &githttp.TokenAuth{Token: "tok"}, auth)
	})
}

// sshServer serves the HTTP server's repositories over SSH too, accepting
// only clientKey, and returns the host's known_hosts line.
func (s *server) sshServer(t *testing.T, clientKey ssh.PublicKey) (addr string, knownHostsLine string) {
	t.Helper()
	keyDir := t.TempDir()
	s.srv.KeyDir(keyDir)
	want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(clientKey)))
	s.srv.PublicKeyLookupFunc(func(content string) (*gitkit.PublicKey, error) {
		if content != want {
			return nil, errors.New("unknown public key")
		}
		return &gitkit.PublicKey{Id: "test"}, nil
	})
	t.Cleanup(func() {
		s.srv.PublicKeyLookupFunc(func(string) (*gitkit.PublicKey, error) { return &gitkit.PublicKey{Id: "test"}, nil })
	})
	require.NoError(t, s.srv.ListenSSH())
	served := make(chan error, 1)
	go func() { served <- s.srv.StartSSH() }()
	t.Cleanup(func() {
		assert.NoError(t, s.srv.StopSSH())
		<-served
	})

	pubBytes, err := os.ReadFile(filepath.Join(keyDir, "gitkit.rsa.pub"))
	require.NoError(t, err)
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(pubBytes)
	require.NoError(t, err)
	u, err := url.Parse(s.srv.SSHAddress())
	require.NoError(t, err)
	return u.Host, knownhosts.Line([]string{u.Host}, hostKey)
}

func TestFetchSSH(t *testing.T) {
	srv := newServer(t)
	r := srv.newRepo(t, "params")
	c1 := r.commit(map[string]string{paramsFile: "over: ssh\n"})

	identity, clientKey := sshKey(t, "")
	addr, knownHostsLine := srv.sshServer(t, clientKey)
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	sshURL := "ssh://git@" + addr + "/params.git"

	auth, err := gitsource.AuthFromSecret(map[string][]byte{"identity": identity, "known_hosts": []byte(knownHostsLine + "\n")})
	require.NoError(t, err)
	s := gitsource.Source{URL: sshURL, Branch: "main", Path: paramsFile, Auth: auth}
	assert.Equal(t, c1, resolve(t, s))
	res := fetch(t, s)
	assert.Equal(t, c1, res.Commit)
	assert.Equal(t, "over: ssh\n", string(res.Content))

	t.Run("unknown host key", func(t *testing.T) {
		_, otherHostKey := sshKey(t, "")
		auth, err := gitsource.AuthFromSecret(map[string][]byte{
			"identity":    identity,
			"known_hosts": []byte(knownhosts.Line([]string{addr}, otherHostKey) + "\n"),
		})
		require.NoError(t, err)
		_, err = gitsource.Fetch(context.Background(), gitsource.Source{URL: sshURL, Branch: "main", Path: paramsFile, Auth: auth})
		require.Error(t, err)
		assert.ErrorIs(t, err, gitsource.ErrAuth)
		assert.Contains(t, err.Error(), "SSH host key of "+addr)
		assert.Contains(t, err.Error(), host)
	})

	t.Run("key not accepted", func(t *testing.T) {
		otherIdentity, _ := sshKey(t, "")
		auth, err := gitsource.AuthFromSecret(map[string][]byte{"identity": otherIdentity, "known_hosts": []byte(knownHostsLine + "\n")})
		require.NoError(t, err)
		_, err = gitsource.Fetch(context.Background(), gitsource.Source{URL: sshURL, Branch: "main", Path: paramsFile, Auth: auth})
		require.Error(t, err)
		assert.ErrorIs(t, err, gitsource.ErrAuth)
		assert.Contains(t, err.Error(), "SSH authentication to")
	})
}
