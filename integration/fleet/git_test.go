package fleet_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks/web"
)

const gitUser, gitPassword = "fleet", "fleet-git-password-3c7d"

// gitRepo is a repository on a real Git server (smart HTTP with basic
// auth, on loopback) and a local clone that commits and pushes to it.
type gitRepo struct {
	t     *testing.T
	url   string
	local *git.Repository
	auth  *githttp.BasicAuth
	when  time.Time
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, os.RemoveAll(srv.Root())) })
	srv.Auth(gitUser, gitPassword)
	require.NoError(t, srv.StartHTTP())
	t.Cleanup(srv.StopHTTP)
	main := plumbing.NewBranchReferenceName("main")
	_, err = git.PlainInitWithOptions(filepath.Join(srv.Root(), "params.git"), &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: main}})
	require.NoError(t, err)
	local, err := git.InitWithOptions(memory.NewStorage(), memfs.New(), git.InitOptions{DefaultBranch: main})
	require.NoError(t, err)
	u := srv.HTTPAddress() + "/params.git"
	_, err = local.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{u}})
	require.NoError(t, err)
	return &gitRepo{t: t, url: u, local: local, auth: &githttp.BasicAuth{Username: gitUser, Password: gitPassword},
		when: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
}

// commit writes a file, commits and pushes; it returns the commit.
func (r *gitRepo) commit(path, content string) string {
	r.t.Helper()
	wt, err := r.local.Worktree()
	require.NoError(r.t, err)
	f, err := wt.Filesystem.Create(path)
	require.NoError(r.t, err)
	_, err = f.Write([]byte(content))
	require.NoError(r.t, err)
	require.NoError(r.t, f.Close())
	_, err = wt.Add(path)
	require.NoError(r.t, err)
	r.when = r.when.Add(time.Minute)
	h, err := wt.Commit("params", &git.CommitOptions{Author: &object.Signature{Name: "Fleet", Email: "fleet@example.com", When: r.when}})
	require.NoError(r.t, err)
	err = r.local.PushContext(context.Background(), &git.PushOptions{RemoteName: git.DefaultRemoteName,
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*"}, Auth: r.auth})
	if !errors.Is(err, git.NoErrAlreadyUpToDate) {
		require.NoError(r.t, err)
	}
	return h.String()
}

func testGit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "from-git"
	repo := newGitRepo(t)
	first := repo.commit("envs/from-git.yaml", "App:\n  Settings:\n    color: green\n")
	require.NoError(t, fx.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-credentials", Namespace: envNS},
		StringData: map[string]string{"username": gitUser, "password": gitPassword}}))
	env := newEnv(name, `{"App":{"Settings":{"owner":"spec"}}}`)
	env.Spec.Source = &v1alpha1.GitSource{URL: repo.url, Ref: v1alpha1.GitRef{Branch: "main"}, Path: "envs/from-git.yaml",
		Interval: &metav1.Duration{Duration: 2 * time.Second}, SecretRef: "git-credentials"}
	require.NoError(t, fx.c.Create(ctx, env))
	eventually(t, 8*time.Minute, "the first commit applied", func(ctx context.Context) (bool, string, error) {
		env, err := getEnv(ctx, name)
		if err != nil {
			return false, "", err
		}
		return env.Status.LastAppliedCommit == first && isTrue(env, v1alpha1.ConditionReady), describe(env) + " commit " + env.Status.LastAppliedCommit, nil
	})
	checkObjects(ctx, t, name, map[string]string{"color": "green", "owner": "spec"}, 1)

	second := repo.commit("envs/from-git.yaml", "App:\n  Settings:\n    color: purple\n  Replicas: 2\n")
	var applied *v1alpha1.Environment
	eventually(t, 8*time.Minute, "the pushed commit applied", func(ctx context.Context) (bool, string, error) {
		env, err := getEnv(ctx, name)
		if err != nil {
			return false, "", err
		}
		applied = env
		return env.Status.LastAppliedCommit == second && isTrue(env, v1alpha1.ConditionReady), describe(env) + " commit " + env.Status.LastAppliedCommit, nil
	})
	assert.Equal(t, second, applied.Status.SourceRevision)
	checkObjects(ctx, t, name, map[string]string{"color": "purple", "owner": "spec"}, 2)
	assert.Contains(t, eventReasons(ctx, t, "Environment", name), "SourceUpdated")

	// The release history records which commit each release applied.
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithBackend(fx.backendURL),
		automation.WithPassphrase(passphrase), automation.WithEnv(fx.s3Env))
	require.NoError(t, err)
	recs, err := e.Releases(ctx, web.Project, stackOf(envNS, name))
	require.NoError(t, err)
	var revisions []string
	for _, r := range recs {
		revisions = append(revisions, r.Revision)
	}
	assert.Equal(t, []string{first, second}, revisions, "one release per applied commit, in order")
}
