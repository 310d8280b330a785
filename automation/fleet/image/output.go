package image

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteLayout writes the image (or index) into an OCI image layout
// directory, created when missing; an existing layout gets it added to its
// index.json. Copy it to a registry with any OCI tool (skopeo, crane, oras).
func (r *Result) WriteLayout(dir string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				return fmt.Errorf("image: --oci-layout %s is a directory but not an OCI image layout (%v); give an empty or new directory", dir, err)
			}
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("image: creating the OCI layout %s: %w", dir, err)
		}
	}
	if r.Index != nil {
		err = p.AppendIndex(r.Index)
	} else {
		err = p.AppendImage(r.Image)
	}
	if err != nil {
		return fmt.Errorf("image: writing the OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes a single-platform image as a tarball that `docker
// load` and `podman load` read, tagged tag (e.g. "registry.example/slipway:v1").
// An index (several platforms) has no tarball form: write a layout or push.
func (r *Result) WriteTarball(path, tag string) error {
	if r.Index != nil {
		return errors.New("image: a tarball holds one platform, and several were built; write an OCI layout (--oci-layout) or push (--push) instead")
	}
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image: tag %q (--tag) is not an image tag (%v); use e.g. registry.example/team/slipway:v1", tag, err)
	}
	if err := tarball.WriteToFile(path, t, r.Image); err != nil {
		return fmt.Errorf("image: writing the tarball %s: %w", path, err)
	}
	return nil
}

// Push uploads the image (or index) to ref, a repository with an optional
// tag (e.g. "registry.example/team/slipway:v1"), with the credentials of
// authn.DefaultKeychain (Docker's config and credential helpers) unless
// opts say otherwise, and returns the pushed reference by digest
// (repository@sha256:...), the form the fleet's manifests should name.
// Loopback and localhost registries are reached over plain HTTP.
func (r *Result) Push(ctx context.Context, ref string, opts ...remote.Option) (name.Digest, error) {
	dst, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image: --push %q is not an image reference (%v); use e.g. registry.example/team/slipway:v1", ref, err)
	}
	if _, isDigest := dst.(name.Digest); isDigest {
		return name.Digest{}, fmt.Errorf("image: --push %q names a digest; push to a repository or a tag (the digest is the image's own)", ref)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	var d v1.Hash
	if r.Index != nil {
		err = remote.WriteIndex(dst, r.Index, opts...)
	} else {
		err = remote.Write(dst, r.Image, opts...)
	}
	if err != nil {
		return name.Digest{}, fmt.Errorf("image: pushing to %s: %w", ref, err)
	}
	if d, err = r.Digest(); err != nil {
		return name.Digest{}, err
	}
	return dst.Context().Digest(d.String()), nil
}
