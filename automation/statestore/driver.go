// Package statestore reads and repairs what a Pulumi DIY backend keeps for a
// stack (its lock files, its checkpoint and the checkpoint's backup) and
// keeps Slipway's release history beside them, in the same bucket or
// directory.
//
// It follows the gocloud.dev driver pattern: Store is the portable type that
// knows the backend's layout (pkg/backend/diy of Pulumi v3), and a Driver is
// the per-backend part that moves bytes. Open picks the driver from the
// backend URL: file:///dir (FileDriver) or s3://bucket?... (S3Driver), with
// exactly the URL syntax Pulumi's DIY backend accepts.
package statestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/slipwayhq/slipway/automation/mask"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// ErrMetadata says an object's content was read but its metadata is
// unreadable (file backend: the <file>.attrs sidecar, which a process
// killed while writing leaves empty), so Pulumi cannot read the object.
var ErrMetadata = errors.New("metadata sidecar is unreadable")

// ErrUnsupported says a backend URL has no driver (gs://, azblob://,
// https:// service backends): the service or the operator manages its locks
// and checkpoints.
var ErrUnsupported = errors.New("statestore: no driver for this backend")

// ErrExist says Create found an object under the key already: another
// writer (perhaps another process) created it first.
var ErrExist = errors.New("statestore: the object exists already")

// Driver moves the bytes of one backend. Keys are slash-separated paths
// relative to the backend root (".pulumi/stacks/proj/dev.json").
type Driver interface {
	// Read returns the object's bytes; a missing object is an error that
	// wraps fs.ErrNotExist. When the content can be read but its metadata
	// cannot, Read returns the content and an error wrapping ErrMetadata.
	Read(ctx context.Context, key string) ([]byte, error)
	// Write replaces the object atomically (readers see the old or the new
	// bytes, never a mix).
	Write(ctx context.Context, key string, data []byte) error
	// Create writes the object only when none exists under key, atomically
	// across processes (S3: a conditional PUT with If-None-Match: *; files:
	// link(2) of a complete temporary file, which fails like O_EXCL when
	// the name exists). When one exists the error wraps ErrExist and the
	// object is left as it was; of several concurrent creators exactly one
	// succeeds.
	Create(ctx context.Context, key string, data []byte) error
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Location names the object for people (a file path or an s3:// URL).
	Location(key string) string
	// Close releases the driver's resources.
	Close() error
}

// blobDriver implements Driver on a gocloud.dev bucket; FileDriver and
// S3Driver differ only in how the bucket is opened and named.
type blobDriver struct {
	b    *blob.Bucket
	name func(key string) string
	// raw reads an object's content without its metadata (file backend).
	raw func(key string) ([]byte, error)
	// create replaces the bucket's conditional write where it is not
	// atomic across processes (fileblob checks and renames under a mutex
	// of its own process only).
	create func(key string, data []byte) error
}

func (d *blobDriver) Read(ctx context.Context, key string) ([]byte, error) {
	b, err := d.b.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("statestore: %s: %w", d.Location(key), fs.ErrNotExist)
	}
	if err != nil && d.raw != nil {
		if content, rerr := d.raw(key); rerr == nil {
			return content, fmt.Errorf("statestore: %s: %w (%v)", d.Location(key), ErrMetadata, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("statestore: reading %s: %w", d.Location(key), err)
	}
	return b, nil
}

func (d *blobDriver) Write(ctx context.Context, key string, data []byte) error {
	if err := d.b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("statestore: writing %s: %w", d.Location(key), err)
	}
	return nil
}

func (d *blobDriver) Create(ctx context.Context, key string, data []byte) error {
	var err error
	if d.create != nil {
		err = d.create(key, data)
	} else {
		err = d.b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			err = ErrExist
		}
	}
	if errors.Is(err, ErrExist) {
		return fmt.Errorf("statestore: creating %s: %w", d.Location(key), ErrExist)
	}
	if err != nil {
		return fmt.Errorf("statestore: creating %s: %w", d.Location(key), err)
	}
	return nil
}

func (d *blobDriver) Delete(ctx context.Context, key string) error {
	err := d.b.Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("statestore: deleting %s: %w", d.Location(key), err)
	}
	return nil
}

func (d *blobDriver) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	it := d.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("statestore: listing %s: %w", d.Location(prefix), err)
		}
		if !o.IsDir {
			out = append(out, o.Key)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (d *blobDriver) Location(key string) string { return d.name(key) }

func (d *blobDriver) Close() error { return d.b.Close() }

// FileDriver opens the file backend rooted at dir (the path of a
// file:///dir backend URL) the way Pulumi does: fileblob with metadata
// sidecars and temporary files beside the targets.
func FileDriver(dir string) (Driver, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("statestore: file backend %q: %w", dir, err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{NoTempDir: true, CreateDir: true, DirFileMode: 0o700})
	if err != nil {
		return nil, fmt.Errorf("statestore: file backend %s: %w", abs, err)
	}
	path := func(key string) string { return filepath.Join(abs, filepath.FromSlash(key)) }
	return &blobDriver{b: b, name: path, raw: func(key string) ([]byte, error) { return os.ReadFile(path(key)) },
		create: func(key string, data []byte) error { return createFile(path(key), data) }}, nil
}

// createFile writes data to a temporary file beside target, then links it
// to target: link(2) fails when target exists (like O_EXCL), across
// processes, and a reader never sees target half-written. No metadata
// sidecar is written; fileblob reads an object without one.
func createFile(target string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExist
		}
		return err
	}
	return nil
}

// s3Params are the query parameters that s3blob reads itself; every other
// one goes to gocloud.dev/aws (region, endpoint, profile, ...).
var s3Params = []string{"use_path_style", "s3ForcePathStyle", "disable_https", "accelerate", "ssetype", "kmskeyid", "awssdk"}

// S3Driver opens the bucket of an s3:// backend URL. env holds the
// variables the engine passes to Pulumi (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION): when set they take
// precedence over the process environment, so the driver reaches the bucket
// with the same identity as the engine.
func S3Driver(ctx context.Context, rawURL string, env map[string]string) (Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("statestore: backend URL %q is not s3://bucket[?endpoint=...&region=...]", mask.URL(rawURL))
	}
	q := u.Query()
	var s3opts []func(*s3.Options)
	for _, k := range []string{"use_path_style", "s3ForcePathStyle"} {
		if v := q.Get(k); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("statestore: backend URL parameter %s=%q is not a boolean", k, v)
			}
			s3opts = append(s3opts, func(o *s3.Options) { o.UsePathStyle = on })
		}
	}
	if v := q.Get("disable_https"); v != "" {
		off, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("statestore: backend URL parameter disable_https=%q is not a boolean", v)
		}
		s3opts = append(s3opts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = off })
	}
	for _, k := range s3Params {
		q.Del(k)
	}
	if q.Get("region") == "" {
		if r := firstNonEmpty(env["AWS_REGION"], env["AWS_DEFAULT_REGION"]); r != "" {
			q.Set("region", r)
		}
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("statestore: backend %s: %w", mask.URL(rawURL), err)
	}
	// Send and check checksums only where S3 requires them, unless the URL
	// asks otherwise: S3-compatible servers may store the SDK's checksum
	// headers in a form the Pulumi CLI then fails to validate.
	if q.Get("request_checksum_calculation") == "" {
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	if q.Get("response_checksum_validation") == "" {
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	if id, secret := env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]; id != "" && secret != "" {
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, env["AWS_SESSION_TOKEN"]))
	}
	client := s3.NewFromConfig(cfg, s3opts...)
	b, err := s3blob.OpenBucket(ctx, client, u.Host, &s3blob.Options{RequestChecksumCalculation: cfg.RequestChecksumCalculation})
	if err != nil {
		return nil, fmt.Errorf("statestore: backend %s: %w", mask.URL(rawURL), err)
	}
	prefix := "s3://" + u.Host + "/"
	return &blobDriver{b: b, name: func(key string) string { return prefix + key }}, nil
}

// Supported reports whether a backend URL has a driver (file:// or s3://),
// without opening it.
func Supported(backendURL string) bool {
	return strings.HasPrefix(backendURL, "file://") || strings.HasPrefix(backendURL, "s3://")
}

// OpenDriver picks the driver for a backend URL: file:// or s3://. Any
// other scheme returns ErrUnsupported.
func OpenDriver(ctx context.Context, backendURL string, env map[string]string) (Driver, error) {
	switch {
	case strings.HasPrefix(backendURL, "file://"):
		dir := strings.TrimPrefix(backendURL, "file://")
		if i := strings.IndexByte(dir, '?'); i >= 0 {
			dir = dir[:i]
		}
		if strings.HasPrefix(dir, "~") {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("statestore: resolving ~ in %s: %w", backendURL, err)
			}
			dir = filepath.Join(home, strings.TrimPrefix(dir, "~"))
		}
		return FileDriver(dir)
	case strings.HasPrefix(backendURL, "s3://"):
		return S3Driver(ctx, backendURL, env)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, mask.URL(backendURL))
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
