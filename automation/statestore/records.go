package statestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// Records of other kinds than releases (run history, approval requests)
// are kept as JSON objects beside the state:
//
//	.pulumi/slipway/<kind>/<name>.json
//
// where name may have several slash-separated segments (for example
// <project>/<stack>/<id>).

var (
	kindRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// recordKey checks kind and name and returns the record's key.
func recordKey(kind, name string) (string, error) {
	if !kindRE.MatchString(kind) || kind == "releases" || kind == "broken" {
		return "", fmt.Errorf("statestore: record kind %q is invalid; use lower-case letters, digits and '-' (not releases or broken)", kind)
	}
	for _, seg := range strings.Split(name, "/") {
		if !segmentRE.MatchString(seg) {
			return "", fmt.Errorf("statestore: record name %q is invalid; use slash-separated segments of letters, digits, '-', '_' or '.'", name)
		}
	}
	return path.Join(slipwayDir, kind, name+".json"), nil
}

// Put stores a record of a kind under name, replacing any record there.
func (s *Store) Put(ctx context.Context, kind, name string, data []byte) error {
	key, err := recordKey(kind, name)
	if err != nil {
		return err
	}
	return s.d.Write(ctx, key, data)
}

// Create stores a record of a kind under name only when there is none:
// of several writers, in any number of processes, exactly one succeeds and
// the others get an error wrapping ErrExist (see Driver.Create).
func (s *Store) Create(ctx context.Context, kind, name string, data []byte) error {
	key, err := recordKey(kind, name)
	if err != nil {
		return err
	}
	return s.d.Create(ctx, key, data)
}

// Get returns the record of a kind stored under name; the error wraps
// fs.ErrNotExist when there is none.
func (s *Store) Get(ctx context.Context, kind, name string) ([]byte, error) {
	key, err := recordKey(kind, name)
	if err != nil {
		return nil, err
	}
	return s.d.Read(ctx, key)
}

// Delete removes the record of a kind stored under name (nothing when
// there is none).
func (s *Store) Delete(ctx context.Context, kind, name string) error {
	key, err := recordKey(kind, name)
	if err != nil {
		return err
	}
	return s.d.Delete(ctx, key)
}

// Names returns the names of the records of a kind that start with
// prefix, sorted.
func (s *Store) Names(ctx context.Context, kind, prefix string) ([]string, error) {
	if _, err := recordKey(kind, "x"); err != nil {
		return nil, err
	}
	dir := path.Join(slipwayDir, kind) + "/"
	keys, err := s.d.List(ctx, dir+prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if strings.HasSuffix(k, ".json") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(k, dir), ".json"))
		}
	}
	return out, nil
}

// List returns the records of a kind whose names start with prefix,
// sorted by name. A record deleted while listing is left out.
func (s *Store) List(ctx context.Context, kind, prefix string) ([]Entry, error) {
	names, err := s.Names(ctx, kind, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		b, err := s.Get(ctx, kind, n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: n, Data: b})
	}
	return out, nil
}

// ReleaseStacks returns every project/stack pair that has a release
// history, sorted.
func (s *Store) ReleaseStacks(ctx context.Context) ([][2]string, error) {
	keys, err := s.d.List(ctx, releasesDir+"/")
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, k := range keys {
		parts := strings.Split(strings.TrimPrefix(k, releasesDir+"/"), "/")
		if len(parts) != 4 || parts[2] != "records" {
			continue
		}
		p := [2]string{parts[0], parts[1]}
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return out, nil
}
