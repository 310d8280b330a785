package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
)

// Stack tags live beside the checkpoint in the project-scoped layout, in the
// file Pulumi's DIY backend reads and writes (pkg/backend/diy/stack_tags.go):
//
//	.pulumi/stacks/<project>/<stack>.pulumi-tags   {"version": 1, "tags": {...}}
const (
	tagsExt     = ".pulumi-tags"
	tagsVersion = 1
)

// ErrNotScoped is returned by the tag functions for a backend without
// Pulumi's project-scoped layout: its tags are Pulumi's business alone.
var ErrNotScoped = errors.New("statestore: the backend does not use the project-scoped layout")

type tagsFile struct {
	Version int               `json:"version"`
	Tags    map[string]string `json:"tags"`
}

func tagsKey(project, stack string) string { return path.Join(stacksDir, project, stack) + tagsExt }

// StackTags returns the stack's tags as Pulumi keeps them (none when it has
// no tags file), or ErrNotScoped.
func (s *Store) StackTags(ctx context.Context, project, stack string) (map[string]string, error) {
	scoped, err := s.projectScoped(ctx)
	if err != nil {
		return nil, err
	}
	if !scoped {
		return nil, ErrNotScoped
	}
	b, err := s.d.Read(ctx, tagsKey(project, stack))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil && !errors.Is(err, ErrMetadata) {
		return nil, err
	}
	var f tagsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("statestore: tags of %s/%s: %w", project, stack, err)
	}
	if f.Version != tagsVersion {
		return nil, fmt.Errorf("statestore: tags of %s/%s have version %d, Slipway reads %d", project, stack, f.Version, tagsVersion)
	}
	if f.Tags == nil {
		f.Tags = map[string]string{}
	}
	return f.Tags, nil
}

// SetStackTags sets tags on the stack in one write, keeping its other tags,
// as `pulumi stack tag set` does one at a time; or returns ErrNotScoped.
// The stack must exist (its checkpoint is there).
func (s *Store) SetStackTags(ctx context.Context, project, stack string, tags map[string]string) error {
	cur, err := s.StackTags(ctx, project, stack)
	if err != nil {
		return err
	}
	exists, err := s.Exists(ctx, project, stack)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("statestore: stack %s/%s has no checkpoint to tag: %w", project, stack, fs.ErrNotExist)
	}
	maps.Copy(cur, tags)
	b, err := json.Marshal(tagsFile{Version: tagsVersion, Tags: cur})
	if err != nil {
		return err
	}
	return s.d.Write(ctx, tagsKey(project, stack), b)
}
