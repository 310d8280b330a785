package statestore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Purge removes what a backend still holds of a stack after the stack itself
// was removed: Pulumi's checkpoint backups (<checkpoint>.bak and
// .pulumi/backups) and update history (.pulumi/history), and Slipway's
// release history and records of every kind (runs, approvals, ...) named
// <project>/<stack>/.... It refuses a stack that still has a checkpoint, so
// it can never drop the state of a live stack. It returns the keys removed.
func (s *Store) Purge(ctx context.Context, project, stack string) ([]string, error) {
	var keys []string
	for _, k := range checkpointKeys(project, stack) {
		found, err := s.d.List(ctx, k)
		if err != nil {
			return nil, err
		}
		if slices.Contains(found, k) {
			return nil, fmt.Errorf("statestore: stack %s/%s still has a checkpoint (%s); remove the stack before purging it", project, stack, s.Location(k))
		}
		if slices.Contains(found, k+backupSuffix) {
			keys = append(keys, k+backupSuffix)
		}
	}
	scoped, err := s.projectScoped(ctx)
	if err != nil {
		return nil, err
	}
	owner := path.Join(project, stack)
	if !scoped {
		owner = stack
	}
	prefixes := []string{
		path.Join(".pulumi/backups", owner) + "/",
		path.Join(".pulumi/history", owner) + "/",
		path.Join(releasesDir, project, stack) + "/",
	}
	for _, p := range prefixes {
		found, err := s.d.List(ctx, p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, found...)
	}
	// Records: .pulumi/slipway/<kind>/<project>/<stack>/...
	records, err := s.d.List(ctx, slipwayDir+"/")
	if err != nil {
		return nil, err
	}
	for _, k := range records {
		parts := strings.SplitN(strings.TrimPrefix(k, slipwayDir+"/"), "/", 4)
		kindDir := path.Join(slipwayDir, parts[0])
		if len(parts) == 4 && parts[1] == project && parts[2] == stack && kindDir != releasesDir && kindDir != brokenDir {
			keys = append(keys, k)
		}
	}
	var errs []error
	for _, k := range keys {
		errs = append(errs, s.d.Delete(ctx, k))
	}
	return keys, errors.Join(errs...)
}
