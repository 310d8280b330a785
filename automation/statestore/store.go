package statestore

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/fence"
)

// Layout of a DIY backend (Pulumi v3, pkg/backend/diy): with .pulumi/meta.yaml
// (version 1 and later) stacks are project-scoped; without it the legacy
// layout keeps every stack at the top level.
const (
	metaKey      = ".pulumi/meta.yaml"
	locksDir     = ".pulumi/locks"
	stacksDir    = ".pulumi/stacks"
	slipwayDir   = ".pulumi/slipway"
	brokenDir    = slipwayDir + "/broken"
	releasesDir  = slipwayDir + "/releases"
	gzipExt      = ".gz"
	backupSuffix = ".bak"
)

// Store is the portable view of one backend: lock files, checkpoints and
// release history of its stacks. It is safe for concurrent use when its
// Driver is.
type Store struct {
	d Driver
}

// New returns a Store on d.
func New(d Driver) *Store { return &Store{d: d} }

// Open opens the Store of a backend URL (see OpenDriver). When env sets
// fence.Env (SLIPWAY_FENCE_FILE), its writes are fenced (see Fenced).
func Open(ctx context.Context, backendURL string, env map[string]string) (*Store, error) {
	d, err := OpenDriver(ctx, backendURL, env)
	if err != nil {
		return nil, err
	}
	if path, ok := env[fence.Env]; ok {
		d = Fenced(d, path)
	}
	return New(d), nil
}

// Close closes the driver.
func (s *Store) Close() error { return s.d.Close() }

// Location names a key for people (a file path or an s3:// URL).
func (s *Store) Location(key string) string { return s.d.Location(key) }

// projectScoped reports whether the backend uses Pulumi's project-scoped
// layout (it has .pulumi/meta.yaml).
func (s *Store) projectScoped(ctx context.Context) (bool, error) {
	_, err := s.d.Read(ctx, metaKey)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func lockDirs(project, stack string) []string {
	return []string{path.Join(locksDir, "organization", project, stack), path.Join(locksDir, stack)}
}

// Locks returns the lock files of a stack (in both layouts). A lock file
// that cannot be read or parsed is returned with Err set: it still locks
// the stack for Pulumi.
func (s *Store) Locks(ctx context.Context, project, stack string) ([]Lock, error) {
	var out []Lock
	for _, dir := range lockDirs(project, stack) {
		keys, err := s.d.List(ctx, dir+"/")
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if path.Dir(k) != dir || !strings.HasSuffix(k, ".json") {
				continue
			}
			l := Lock{Key: k}
			b, err := s.d.Read(ctx, k)
			if errors.Is(err, fs.ErrNotExist) {
				continue // released meanwhile
			}
			if errors.Is(err, ErrMetadata) {
				err = nil // the content says who holds it
			}
			if err == nil {
				if jerr := json.Unmarshal(b, &l); jerr != nil {
					err = fmt.Errorf("lock file %s is not Pulumi's lock JSON: %w", s.d.Location(k), jerr)
				}
			}
			l.Key, l.Err = k, err
			out = append(out, l)
		}
	}
	return out, nil
}

// RemoveLock deletes one lock file (by its Key).
func (s *Store) RemoveLock(ctx context.Context, key string) error {
	if !strings.HasPrefix(key, locksDir+"/") || !strings.HasSuffix(key, ".json") {
		return fmt.Errorf("statestore: %q is not a lock file key", key)
	}
	return s.d.Delete(ctx, key)
}

// Lock takes the stack's lock the way Pulumi does: it writes a lock file in
// the DIY format (pid, username, hostname, timestamp), then checks that no
// other lock exists; if one does, it removes its own and returns a
// *StackLockedError. The returned function releases the lock.
func (s *Store) Lock(ctx context.Context, project, stack string) (unlock func(context.Context) error, err error) {
	scoped, err := s.projectScoped(ctx)
	if err != nil {
		return nil, err
	}
	dir := lockDirs(project, stack)[1]
	if scoped {
		dir = lockDirs(project, stack)[0]
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	key := path.Join(dir, hex.EncodeToString(id)+".json")
	own := Lock{PID: os.Getpid(), Timestamp: time.Now()}
	own.Hostname, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		own.Username = u.Username
	}
	b, err := json.Marshal(own)
	if err != nil {
		return nil, err
	}
	if err := s.d.Write(ctx, key, b); err != nil {
		return nil, err
	}
	unlock = func(ctx context.Context) error { return s.d.Delete(ctx, key) }
	locks, err := s.Locks(ctx, project, stack)
	if err != nil {
		return nil, errors.Join(err, unlock(ctx))
	}
	var others []Lock
	for _, l := range locks {
		if l.Key != key {
			others = append(others, l)
		}
	}
	if len(others) > 0 {
		held := make([]LockInfo, len(others))
		for i, l := range others {
			held[i] = s.Info(l)
		}
		return nil, errors.Join(&StackLockedError{Project: project, Stack: stack, Locks: held}, unlock(ctx))
	}
	return unlock, nil
}

// Checkpoint is a stack's checkpoint as stored, before any decoding.
type Checkpoint struct {
	// Key is where it is stored.
	Key string
	// Data are its bytes (gzip-compressed when Key ends in .gz).
	Data []byte
	// Metadata is set (wrapping ErrMetadata) when the content was read but
	// its metadata is broken, so Pulumi cannot load the checkpoint.
	Metadata error
}

// JSON returns the checkpoint's JSON, decompressed, or an error when the
// content is truncated or otherwise unreadable (its metadata aside).
func (c Checkpoint) JSON() ([]byte, error) {
	return decode(c.Key, c.Data)
}

// Broken reports whether Pulumi cannot load the checkpoint: its content or
// its metadata is unreadable.
func (c Checkpoint) Broken() bool {
	_, err := c.JSON()
	return err != nil || c.Metadata != nil
}

func decode(key string, data []byte) ([]byte, error) {
	if strings.HasSuffix(strings.TrimSuffix(key, backupSuffix), gzipExt) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("statestore: %s is not gzip: %w", key, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("statestore: %s is truncated: %w", key, err)
		}
	}
	if len(data) == 0 || !json.Valid(data) {
		return data, fmt.Errorf("statestore: %s is not valid JSON (empty or truncated)", key)
	}
	return data, nil
}

// Deployment is a stack's deployment the way `pulumi stack export` prints it
// (apitype.UntypedDeployment).
type Deployment struct {
	Version  int      `json:"version"`
	Features []string `json:"features,omitempty"`
	// Deployment is the deployment itself (resources, pending_operations,
	// ...); null for a stack that was never updated.
	Deployment json.RawMessage `json:"deployment,omitempty"`
}

// Deployment returns the stack's current deployment, taken from the
// checkpoint's latest snapshot without decoding it: secrets stay the
// ciphertext the state holds (unlike `pulumi stack export --show-secrets`,
// which the Automation API's Export runs).
func (c Checkpoint) Deployment() (Deployment, error) {
	b, err := c.JSON()
	if err != nil {
		return Deployment{}, err
	}
	var v struct {
		Version    int      `json:"version"`
		Features   []string `json:"features,omitempty"`
		Checkpoint struct {
			Latest json.RawMessage `json:"latest"`
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Deployment{}, fmt.Errorf("statestore: checkpoint %s: %w", c.Key, err)
	}
	if v.Version < 3 {
		return Deployment{}, fmt.Errorf("statestore: checkpoint %s has version %d; Slipway reads version 3 and later", c.Key, v.Version)
	}
	d := Deployment{Version: v.Version, Features: v.Features}
	if l := bytes.TrimSpace(v.Checkpoint.Latest); len(l) > 0 && !bytes.Equal(l, []byte("null")) {
		d.Deployment = v.Checkpoint.Latest
	}
	return d, nil
}

// Exists reports whether the stack has a checkpoint in the project-scoped
// layout (.pulumi/stacks/<project>/<stack>.json, plain or gzip), which is
// where Pulumi keeps every stack it creates once the backend has
// .pulumi/meta.yaml. It reads no checkpoint; false means "not known here",
// not "missing" (a legacy-layout backend, or a stack being created).
func (s *Store) Exists(ctx context.Context, project, stack string) (bool, error) {
	scoped, err := s.projectScoped(ctx)
	if err != nil || !scoped {
		return false, err
	}
	for _, k := range checkpointKeys(project, stack)[:2] {
		keys, err := s.d.List(ctx, k)
		if err != nil {
			return false, err
		}
		if slices.Contains(keys, k) {
			return true, nil
		}
	}
	return false, nil
}

// checkpointKeys are where a stack's checkpoint may live, preferred first.
func checkpointKeys(project, stack string) []string {
	var out []string
	for _, base := range []string{path.Join(stacksDir, project, stack), path.Join(stacksDir, stack)} {
		out = append(out, base+".json", base+".json"+gzipExt)
	}
	return out
}

// ReadCheckpoint returns the stack's checkpoint; a stack without one is an
// error that wraps fs.ErrNotExist.
func (s *Store) ReadCheckpoint(ctx context.Context, project, stack string) (Checkpoint, error) {
	for _, k := range checkpointKeys(project, stack) {
		b, err := s.d.Read(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, ErrMetadata) {
			return Checkpoint{Key: k, Data: b, Metadata: err}, nil
		}
		if err != nil {
			return Checkpoint{}, err
		}
		return Checkpoint{Key: k, Data: b}, nil
	}
	return Checkpoint{}, fmt.Errorf("statestore: stack %s/%s has no checkpoint: %w", project, stack, fs.ErrNotExist)
}

// ReadBackup returns the backup Pulumi keeps of a checkpoint (the previous
// checkpoint, <key>.bak, compressed like the checkpoint).
func (s *Store) ReadBackup(ctx context.Context, c Checkpoint) (Checkpoint, error) {
	k := c.Key + backupSuffix
	b, err := s.d.Read(ctx, k)
	if errors.Is(err, ErrMetadata) {
		// Only the content is used: restoring writes it with new metadata.
		return Checkpoint{Key: k, Data: b, Metadata: err}, nil
	}
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Key: k, Data: b}, nil
}

// WriteCheckpoint replaces a checkpoint, keeping the current one as its
// backup first, as Pulumi does. The caller holds the stack's lock.
func (s *Store) WriteCheckpoint(ctx context.Context, c Checkpoint) error {
	cur, err := s.d.Read(ctx, c.Key)
	switch {
	case err == nil || errors.Is(err, ErrMetadata):
		if err := s.d.Write(ctx, c.Key+backupSuffix, cur); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return s.d.Write(ctx, c.Key, c.Data)
}

// RestoreCheckpoint repairs a checkpoint Pulumi cannot load and keeps the
// broken bytes under .pulumi/slipway/broken. When only its metadata is
// broken, the same content is written again (nothing is lost); when its
// content is broken (empty, truncated), its backup replaces it
// (fromBackup). It returns the key of the kept copy, or "" when the
// checkpoint is not broken. A broken checkpoint without a usable backup is
// an error. The caller holds the stack's lock.
func (s *Store) RestoreCheckpoint(ctx context.Context, project, stack string) (kept string, fromBackup bool, err error) {
	c, err := s.ReadCheckpoint(ctx, project, stack)
	if err != nil {
		return "", false, err
	}
	if !c.Broken() {
		return "", false, nil
	}
	good := c.Data
	if _, jerr := c.JSON(); jerr != nil {
		bak, err := s.ReadBackup(ctx, c)
		if err == nil {
			_, err = bak.JSON()
		}
		if err != nil {
			return "", false, fmt.Errorf("statestore: checkpoint %s is broken and has no usable backup (%v); restore a copy from %s with `pulumi stack import`",
				s.d.Location(c.Key), err, s.d.Location(".pulumi/backups/"))
		}
		good, fromBackup = bak.Data, true
	}
	kept = path.Join(brokenDir, project, stack, time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+path.Base(c.Key))
	if err := s.d.Write(ctx, kept, c.Data); err != nil {
		return "", false, err
	}
	if err := s.d.Write(ctx, c.Key, good); err != nil {
		return "", false, err
	}
	return kept, fromBackup, nil
}

// Read returns the bytes stored under key (for inspection: a kept broken
// checkpoint, a release checkpoint).
func (s *Store) Read(ctx context.Context, key string) ([]byte, error) { return s.d.Read(ctx, key) }

// Release history: one record and one exported checkpoint per release,
// beside the stack's state:
//
//	.pulumi/slipway/releases/<project>/<stack>/records/<name>.json
//	.pulumi/slipway/releases/<project>/<stack>/checkpoints/<name>.json
func releaseKey(project, stack, kind, name string) string {
	return path.Join(releasesDir, project, stack, kind, name+".json")
}

// Entry is one stored release record.
type Entry struct {
	// Name orders the records: later names sort after earlier ones.
	Name string
	Data []byte
}

// Releases returns the stack's release records, oldest first.
func (s *Store) Releases(ctx context.Context, project, stack string) ([]Entry, error) {
	dir := path.Dir(releaseKey(project, stack, "records", "x"))
	keys, err := s.d.List(ctx, dir+"/")
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, k := range keys {
		if path.Dir(k) != dir || !strings.HasSuffix(k, ".json") {
			continue
		}
		b, err := s.d.Read(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: strings.TrimSuffix(path.Base(k), ".json"), Data: b})
	}
	return out, nil
}

// NewReleaseName returns a name that sorts after every name issued before
// it (a UTC timestamp with a random suffix).
func NewReleaseName(now time.Time) string {
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	return now.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(r)
}

// WriteRelease stores a release record and, when checkpoint is not nil,
// the exported checkpoint kept with it. It returns the checkpoint's key.
func (s *Store) WriteRelease(ctx context.Context, project, stack, name string, record, checkpoint []byte) (string, error) {
	ck := ""
	if checkpoint != nil {
		ck = releaseKey(project, stack, "checkpoints", name)
		if err := s.d.Write(ctx, ck, checkpoint); err != nil {
			return "", err
		}
	}
	return ck, s.d.Write(ctx, releaseKey(project, stack, "records", name), record)
}

// DeleteRelease removes a release record and its checkpoint.
func (s *Store) DeleteRelease(ctx context.Context, project, stack, name string) error {
	return errors.Join(s.d.Delete(ctx, releaseKey(project, stack, "checkpoints", name)),
		s.d.Delete(ctx, releaseKey(project, stack, "records", name)))
}
