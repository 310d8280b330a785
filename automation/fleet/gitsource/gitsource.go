// Package gitsource reads one file from a Git repository at a branch, a tag
// or a pinned commit, for the fleet operator's Git parameters source.
//
// Everything happens in memory: [Fetch] clones only what it needs (one
// commit for a branch or a tag) into memory storage, without a work tree,
// and reads the file from the commit's tree. [Resolve] asks the remote for
// the commit a branch or tag points at without cloning, so a poll that
// finds the same commit as last time costs one round trip.
//
// Errors name what to fix (the branch, tag, commit or path that is missing,
// or the credentials that were refused) and never contain credentials:
// URLs in messages carry no user information, and the password, token or
// passphrase of the [transport.AuthMethod] is scrubbed from any message that
// comes from the transport. Errors match [ErrInvalidSource],
// [ErrRefNotFound], [ErrPathNotFound] or [ErrAuth] with [errors.Is] where
// they are of that kind.
package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/slipwayhq/slipway/automation/mask"
)

// MaxFileSize is the largest file [Fetch] reads (1 MiB): a parameters file
// larger than that is refused rather than held in memory.
const MaxFileSize = 1 << 20

// Source says which file to read from which repository at which ref.
//
// At most one of Branch, Tag and Commit is set; when none is, the remote's
// default branch (its HEAD) is followed.
type Source struct {
	// URL is the repository: https://, http:// or ssh://. It must not carry
	// a password; credentials go in Auth.
	URL string
	// Branch follows the head of a branch ("main", not "refs/heads/main").
	Branch string
	// Tag pins a tag ("v1.2.0"); an annotated tag resolves to the commit it
	// points at.
	Tag string
	// Commit pins a commit: a full 40-character SHA-1.
	Commit string
	// Path is the file in the repository, relative to its root
	// ("envs/prod/params.yaml"); a leading "/" or "./" is ignored.
	Path string
	// Auth authenticates to the remote; nil for a public repository. See
	// [AuthFromSecret].
	Auth transport.AuthMethod
}

// Result is what [Fetch] read.
type Result struct {
	// Commit is the full SHA-1 of the commit the file was read at.
	Commit string
	// Content is the file's content.
	Content []byte
}

var (
	// ErrInvalidSource is matched by errors about the Source itself (its
	// URL, ref, path or credentials' kind), found before any network access.
	ErrInvalidSource = errors.New("invalid Git source")
	// ErrRefNotFound is matched by errors saying that the branch, tag or
	// commit does not exist in the repository (or that the repository is
	// empty).
	ErrRefNotFound = errors.New("Git ref not found")
	// ErrPathNotFound is matched by errors saying that the file does not
	// exist at the commit, or is not a regular file.
	ErrPathNotFound = errors.New("path not found in Git commit")
	// ErrAuth is matched by errors saying that the remote refused the
	// credentials, wants some, or that the SSH host key is not trusted.
	ErrAuth = errors.New("Git authentication failed")
)

// sourceError is an error whose message has been written for the user (and
// scrubbed of secrets); kind is one of the Err* values above, cause is
// kept for errors.Is/As.
type sourceError struct {
	kind  error
	msg   string
	cause error
}

func (e *sourceError) Error() string { return e.msg }

func (e *sourceError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

func invalid(format string, args ...any) error {
	return &sourceError{kind: ErrInvalidSource, msg: fmt.Sprintf(format, args...)}
}

// source is a validated Source.
type source struct {
	Source
	display  string // URL without user information, for messages
	endpoint *url.URL
	path     string // cleaned Path
}

func (s Source) validate() (*source, error) {
	if s.URL == "" {
		return nil, invalid("the Git source has no URL: set an https://, http:// or ssh:// URL")
	}
	u, err := url.Parse(s.URL)
	if err != nil || u.Host == "" {
		return nil, invalid("the Git source URL %q is not a URL: use https://host/org/repo.git or ssh://git@host/org/repo.git", mask.URL(s.URL))
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	default:
		return nil, invalid("the Git source URL %s has scheme %q: use https://, http:// or ssh://", mask.URL(u.String()), u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return nil, invalid("the Git source URL %s carries a password: remove it from the URL and put the credentials in the Secret", mask.URL(u.String()))
	}
	out := &source{Source: s, display: mask.URL(u.String()), endpoint: u}

	set := 0
	for _, v := range []string{s.Branch, s.Tag, s.Commit} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return nil, invalid("the Git source for %s sets more than one of branch (%q), tag (%q) and commit (%q): set exactly one", out.display, s.Branch, s.Tag, s.Commit)
	}
	if s.Commit != "" {
		c := strings.ToLower(s.Commit)
		if len(c) != 40 || strings.Trim(c, "0123456789abcdef") != "" {
			return nil, invalid("the Git source commit %q is not a full SHA-1: give all 40 hexadecimal characters", s.Commit)
		}
		out.Commit = c
	}
	if strings.HasPrefix(s.Branch, "refs/") || strings.HasPrefix(s.Tag, "refs/") {
		return nil, invalid("the Git source branch or tag %q is a full ref name: give the short name (e.g. main or v1.0.0)", s.Branch+s.Tag)
	}

	p := strings.TrimLeft(s.Path, "/")
	if p != "" {
		p = path.Clean(p)
	}
	if p == "" || p == "." {
		return nil, invalid("the Git source for %s has no path: set the path of the parameters file in the repository", out.display)
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return nil, invalid("the Git source path %q leaves the repository: give a path relative to its root", s.Path)
	}
	out.path = p

	switch a := s.Auth.(type) {
	case nil:
	case *githttp.BasicAuth, *githttp.TokenAuth:
		if u.Scheme == "ssh" {
			return nil, invalid("the Git source URL %s is ssh:// but the credentials are for HTTP (%s): give an identity and known_hosts, or use an https:// URL", out.display, a.Name())
		}
	case gitssh.AuthMethod:
		if u.Scheme != "ssh" {
			return nil, invalid("the Git source URL %s is %s:// but the credentials are for SSH (%s): use an ssh:// URL, or give username and password", out.display, u.Scheme, a.Name())
		}
		out.Auth = sshForEndpoint(a, u)
	}
	return out, nil
}

// refName is the reference the source follows (HEAD when none is set).
func (s *source) refName() plumbing.ReferenceName {
	switch {
	case s.Branch != "":
		return plumbing.NewBranchReferenceName(s.Branch)
	case s.Tag != "":
		return plumbing.NewTagReferenceName(s.Tag)
	default:
		return plumbing.HEAD
	}
}

// refDesc describes the ref for messages: `branch "main"`.
func (s *source) refDesc() string {
	switch {
	case s.Branch != "":
		return fmt.Sprintf("branch %q", s.Branch)
	case s.Tag != "":
		return fmt.Sprintf("tag %q", s.Tag)
	case s.Commit != "":
		return "commit " + s.Commit
	default:
		return "the default branch"
	}
}

// Resolve returns the commit the source's branch, tag or default branch
// points at now, asking the remote for its references without fetching
// any object. For a pinned commit it returns the commit without contacting
// the remote (whether it exists is found by [Fetch]).
func Resolve(ctx context.Context, s Source) (string, error) {
	src, err := s.validate()
	if err != nil {
		return "", err
	}
	if src.Commit != "" {
		return src.Commit, nil
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{src.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: src.Auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return "", src.transportError(ctx, "listing the references of", err)
	}
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	name := src.refName()
	if src.Tag != "" {
		// An annotated tag's peeled entry names the commit.
		if r, ok := byName[name+"^{}"]; ok {
			return r.Hash().String(), nil
		}
	}
	ref, ok := byName[name]
	for i := 0; ok && ref.Type() == plumbing.SymbolicReference && i < 5; i++ {
		ref, ok = byName[ref.Target()]
	}
	if !ok || ref.Type() != plumbing.HashReference {
		return "", src.notFound()
	}
	return ref.Hash().String(), nil
}

// Fetch reads the source's file at the commit its ref points at now (or at
// its pinned commit) and returns the commit and the file's content.
//
// A branch, tag or default branch costs a shallow clone of one commit. A
// pinned commit is fetched alone when the server allows it (it advertises
// allow-reachable-sha1-in-want or allow-tip-sha1-in-want); otherwise every
// branch and tag is fetched in full and the commit looked up among them,
// which for a large repository takes memory in proportion. Files larger
// than [MaxFileSize], directories, symbolic links and submodules are
// refused. A branch may have moved since a [Resolve] a moment before:
// Result.Commit is the commit the file was read at.
func Fetch(ctx context.Context, s Source) (Result, error) {
	src, err := s.validate()
	if err != nil {
		return Result{}, err
	}
	var repo *git.Repository
	var commit plumbing.Hash
	if src.Commit != "" {
		repo, err = src.fetchCommit(ctx)
		commit = plumbing.NewHash(src.Commit)
	} else {
		repo, commit, err = src.cloneRef(ctx)
	}
	if err != nil {
		return Result{}, err
	}
	content, err := src.readFile(repo, commit)
	if err != nil {
		return Result{}, err
	}
	return Result{Commit: commit.String(), Content: content}, nil
}

// cloneRef clones the single commit at the source's ref and returns it.
func (s *source) cloneRef(ctx context.Context) (*git.Repository, plumbing.Hash, error) {
	name := s.refName()
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL:           s.URL,
		Auth:          s.Auth,
		ReferenceName: name,
		SingleBranch:  true,
		Depth:         1,
		NoCheckout:    true,
		Tags:          git.NoTags,
	})
	if err != nil {
		return nil, plumbing.ZeroHash, s.transportError(ctx, "cloning", err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("reading the cloned %s of %s: %w", s.refDesc(), s.display, err)
	}
	commit, err := peel(repo, head.Hash())
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("reading the cloned %s of %s: %w", s.refDesc(), s.display, err)
	}
	return repo, commit, nil
}

// peel follows annotated tags to the commit they point at.
func peel(repo *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for i := 0; i < 10; i++ {
		obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("object %s: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(repo.Storer, obj)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("tag %s: %w", h, err)
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("%s is a %s, not a commit", h, obj.Type())
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("tag %s: too many nested tags", h)
}

// fetchCommit fetches the pinned commit: alone when the server allows
// wanting it by SHA-1, else with every branch and tag.
func (s *source) fetchCommit(ctx context.Context) (*git.Repository, error) {
	want := plumbing.NewHash(s.Commit)
	fetch := func(depth int, specs ...config.RefSpec) (*git.Repository, error) {
		repo, err := git.Init(memory.NewStorage(), nil)
		if err != nil {
			return nil, err
		}
		remote, err := repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{s.URL}})
		if err != nil {
			return nil, err
		}
		err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: specs, Depth: depth, Auth: s.Auth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, err
		}
		return repo, nil
	}

	repo, err := fetch(1, config.RefSpec(s.Commit+":refs/pinned"))
	if err == nil {
		if _, cerr := repo.CommitObject(want); cerr == nil {
			return repo, nil
		}
	} else if ctx.Err() != nil || fatalTransportError(err) {
		return nil, s.transportError(ctx, "fetching", err)
	}
	// The server does not serve the SHA-1 alone (or not this one): fetch
	// every branch and tag and look for it.
	repo, err = fetch(0, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return nil, s.notFound()
		}
		return nil, s.transportError(ctx, "fetching", err)
	}
	if _, err := repo.CommitObject(want); err != nil {
		return nil, s.notFound()
	}
	return repo, nil
}

// fatalTransportError reports errors that fetching everything instead of
// one commit would hit again.
func fatalTransportError(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) ||
		errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) ||
		errors.Is(err, transport.ErrInvalidAuthMethod) ||
		isSSHAuthError(err) || isHostKeyError(err)
}

// readFile reads the source's path from the commit's tree.
func (s *source) readFile(repo *git.Repository, h plumbing.Hash) ([]byte, error) {
	commit, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s of %s: %w", h, s.display, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of commit %s of %s: %w", h, s.display, err)
	}
	entry, err := tree.FindEntry(s.path)
	if err != nil {
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrFileNotFound) {
			return nil, &sourceError{kind: ErrPathNotFound, cause: err,
				msg: fmt.Sprintf("%s not found at commit %s (%s of %s): check the path, or push the file", s.path, h, s.refDesc(), s.display)}
		}
		return nil, fmt.Errorf("looking up %s at commit %s of %s: %w", s.path, h, s.display, err)
	}
	notFile := func(what string) error {
		return &sourceError{kind: ErrPathNotFound,
			msg: fmt.Sprintf("%s at commit %s of %s is %s, not a file: give the path of the parameters file", s.path, h, s.display, what)}
	}
	switch entry.Mode {
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
	case filemode.Dir:
		return nil, notFile("a directory")
	case filemode.Symlink:
		return nil, notFile("a symbolic link")
	case filemode.Submodule:
		return nil, notFile("a submodule")
	default:
		return nil, notFile(fmt.Sprintf("an entry of mode %s", entry.Mode))
	}
	file, err := tree.TreeEntryFile(entry)
	if err != nil {
		return nil, fmt.Errorf("reading %s at commit %s of %s: %w", s.path, h, s.display, err)
	}
	if file.Size > MaxFileSize {
		return nil, invalid("%s at commit %s of %s has %d bytes, more than the %d a parameters file may have", s.path, h, s.display, file.Size, MaxFileSize)
	}
	r, err := file.Reader()
	if err != nil {
		return nil, fmt.Errorf("reading %s at commit %s of %s: %w", s.path, h, s.display, err)
	}
	content, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s at commit %s of %s: %w", s.path, h, s.display, err)
	}
	return content, nil
}

// notFound is the error for a ref (or pinned commit) the remote lacks.
func (s *source) notFound() error {
	msg := fmt.Sprintf("%s not found in %s: check the ref, or push it", s.refDesc(), s.display)
	if s.Commit != "" {
		msg = fmt.Sprintf("commit %s not found in any branch or tag of %s: check the SHA-1, or push the commit", s.Commit, s.display)
	}
	return &sourceError{kind: ErrRefNotFound, msg: msg}
}

// transportError turns an error of go-git's transport into one that says
// what to fix, without secrets.
func (s *source) transportError(ctx context.Context, doing string, err error) error {
	kind := error(nil)
	var msg string
	var noMatch git.NoMatchingRefSpecError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", doing, s.display, ctx.Err())
	case errors.As(err, &noMatch), errors.Is(err, plumbing.ErrReferenceNotFound):
		return s.notFound()
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		kind = ErrRefNotFound
		msg = fmt.Sprintf("repository %s is empty: push a commit with %s", s.display, s.path)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		kind = ErrAuth
		if s.Auth == nil {
			msg = fmt.Sprintf("%s requires authentication: reference a credentials Secret (username and password, or bearerToken)", s.display)
		} else {
			msg = fmt.Sprintf("authentication to %s failed (%s): check the credentials in the Secret", s.display, s.Auth.Name())
		}
	case errors.Is(err, transport.ErrAuthorizationFailed):
		kind = ErrAuth
		msg = fmt.Sprintf("access to %s denied: the credentials in the Secret have no read access to the repository", s.display)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		kind = ErrRefNotFound
		msg = fmt.Sprintf("repository %s not found (or the credentials cannot see it): check the URL and the credentials", s.display)
	case isHostKeyError(err):
		kind = ErrAuth
		msg = fmt.Sprintf("the SSH host key of %s is not trusted: %s; put the host's key in known_hosts in the Secret", s.endpoint.Host, s.scrub(err.Error()))
	case isSSHAuthError(err):
		kind = ErrAuth
		msg = fmt.Sprintf("SSH authentication to %s failed: check that the identity in the Secret is a deploy key of the repository (%s)", s.display, s.scrub(err.Error()))
	default:
		msg = fmt.Sprintf("%s %s: %s", doing, s.display, s.scrub(err.Error()))
	}
	return &sourceError{kind: kind, msg: msg, cause: err}
}

func isHostKeyError(err error) bool {
	m := err.Error()
	return strings.Contains(m, "knownhosts: key is unknown") || strings.Contains(m, "knownhosts: key mismatch") ||
		strings.Contains(m, "no common algorithm for host key")
}

func isSSHAuthError(err error) bool {
	return strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// scrub removes the URL's user information and the credentials' secrets
// (package mask: in every encoded form) from a message.
func (s *source) scrub(msg string) string {
	if s.endpoint.User != nil {
		msg = strings.ReplaceAll(msg, s.URL, s.display)
	}
	return mask.New(secretsOf(s.Auth)...).String(msg)
}

func secretsOf(a transport.AuthMethod) []string {
	switch a := a.(type) {
	case *githttp.BasicAuth:
		return []string{a.Password}
	case *githttp.TokenAuth:
		return []string{a.Token}
	case *sshAuth:
		return []string{a.passphrase}
	}
	return nil
}

// hostWithPort is the endpoint's host:port as known_hosts matches it.
func hostWithPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "22"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
