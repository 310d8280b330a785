package statestore

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
)

// historyDir is where a DIY backend keeps the update history of its stacks.
const historyDir = ".pulumi/history"

// UpdateHistory returns the update history of a stack as Pulumi's DIY
// backend keeps it: one <stack>-<unix nanoseconds>.history.json per update,
// refresh or destroy (beside a copy of the checkpoint it left) under
// .pulumi/history/<project>/<stack>/ (.pulumi/history/<stack>/ in the
// legacy layout). It returns the JSON of each entry (gzip undone), newest
// first, and pages them as `pulumi stack history --page-size --page` does:
// page (from 1) of pageSize entries, or every entry when pageSize is 0. A
// stack that was never updated has no entries. An entry compressed in a way
// it does not read (zstd) is an error that wraps ErrUnsupported.
func (s *Store) UpdateHistory(ctx context.Context, project, stack string, pageSize, page int) ([][]byte, error) {
	scoped, err := s.projectScoped(ctx)
	if err != nil {
		return nil, err
	}
	dir := path.Join(historyDir, project, stack)
	if !scoped {
		dir = path.Join(historyDir, stack)
	}
	keys, err := s.d.List(ctx, dir+"/")
	if err != nil {
		return nil, err
	}
	var entries []string
	for _, k := range keys {
		// File names sort in time order, as Pulumi lists them.
		if path.Dir(k) == dir && strings.Contains(path.Base(k), ".history.json") {
			entries = append(entries, k)
		}
	}
	slices.Reverse(entries)
	if pageSize > 0 {
		page = max(page, 1)
		start := min((page-1)*pageSize, len(entries))
		entries = entries[start:min(start+pageSize, len(entries))]
	}
	out := make([][]byte, 0, len(entries))
	for _, k := range entries {
		if !strings.HasSuffix(k, ".history.json") && !strings.HasSuffix(k, ".history.json"+gzipExt) {
			return nil, fmt.Errorf("statestore: history entry %s is compressed in a way Slipway does not read: %w", s.Location(k), ErrUnsupported)
		}
		b, err := s.d.Read(ctx, k)
		if err != nil {
			return nil, err
		}
		if b, err = decode(k, b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
