package recovery

import (
	"encoding/json"
	"slices"
)

// stackType is the type of a stack's root resource.
const stackType = "pulumi:pulumi:Stack"

// RefreshTargets returns the URNs that the refresh clearing a deployment's
// pending operations must target (optrefresh.Target), sorted, each once,
// so that it reads only what the interrupted update left unsure rather than
// every resource of the stack:
//
//   - the resources of the pending operations that the deployment holds: an
//     interrupted update, delete, read or import, and the create of a
//     replacement (the old resource has the same URN);
//   - nothing for the create of a resource the deployment does not hold
//     yet: the engine refuses a target that is not in the state ("one or
//     more targets could not be found"), and optrefresh.ClearPendingCreates
//     drops every pending create from the state before the refresh runs,
//     whatever it targets.
//
// When no pending operation names a resource of the deployment, the only
// target is the stack's root resource, a component, whose refresh reads
// nothing: the refresh then only writes the state without the pending
// operations (without a root resource, the deployment's first resource).
// An empty target list would make it refresh the whole stack,
// so it is returned only for a deployment without resources (a refresh of
// which reads nothing either).
func RefreshTargets(deployment json.RawMessage) ([]string, error) {
	if len(deployment) == 0 {
		return nil, nil
	}
	var d deploymentState
	if err := json.Unmarshal(deployment, &d); err != nil {
		return nil, err
	}
	held := make(map[string]bool, len(d.Resources))
	var root string
	for _, r := range d.Resources {
		held[r.URN] = true
		if root == "" && r.Type == stackType {
			root = r.URN
		}
	}
	var out []string
	for _, op := range d.PendingOperations {
		if held[op.Resource.URN] {
			out = append(out, op.Resource.URN)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	switch {
	case len(out) > 0:
		return out, nil
	case root != "":
		return []string{root}, nil
	case len(d.Resources) > 0:
		return []string{d.Resources[0].URN}, nil
	}
	return nil, nil
}
