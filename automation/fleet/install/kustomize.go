package install

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"
)

// Directories of the kustomize layout Kustomize returns.
const (
	// KustomizeBase holds what both modes share: the CRDs, the namespace,
	// the ServiceAccounts, the leader-election Role, the Deployments (in
	// the cluster-wide form), the PodDisruptionBudgets and NetworkPolicies.
	KustomizeBase = "base"
	// KustomizeClusterWide is the cluster-wide overlay: the base plus the
	// ClusterRoles and ClusterRoleBindings.
	KustomizeClusterWide = "overlays/cluster-wide"
	// KustomizeNamespaced is the namespaced overlay: the base plus a Role
	// and a RoleBinding per watched namespace, and a patch giving both
	// Deployments --watch-namespaces.
	KustomizeNamespaced = "overlays/namespaced"
)

// Kustomize returns the manifests as a kustomize layout, file path (slash
// separated, relative) to content: a base (KustomizeBase) and the overlays
// KustomizeClusterWide and, when o.WatchNamespaces lists namespaces,
// KustomizeNamespaced. `kustomize build` of an overlay gives exactly the
// objects Manifests returns for that mode. The files are generated from the
// same Go as Manifests: write them again (`slipway operator install
// --kustomize DIR`) after an upgrade rather than editing them; put local
// changes (an image digest with `images:`, resources) in an overlay of
// your own on top of one of these. Like Manifests, it refuses an empty
// o.Image (ErrNoImage).
func Kustomize(o Options) (map[string][]byte, error) {
	if _, err := o.withDefaults(); err != nil {
		return nil, err
	}
	cw := o
	cw.WatchNamespaces, cw.ClusterWide = nil, true
	base, err := manifests(cw)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	put := func(dir, name string, objs []*unstructured.Unstructured) error {
		var buf bytes.Buffer
		if err := Write(&buf, objs); err != nil {
			return err
		}
		files[dir+"/"+name] = buf.Bytes()
		return nil
	}
	kustomization := func(dir string, k types.Kustomization) error {
		k.APIVersion, k.Kind = types.KustomizationVersion, types.KustomizationKind
		b, err := yaml.Marshal(k)
		if err != nil {
			return fmt.Errorf("install: %s/kustomization.yaml: %w", dir, err)
		}
		files[dir+"/kustomization.yaml"] = b
		return nil
	}
	baseFiles := []struct {
		name string
		objs []*unstructured.Unstructured
	}{{"crds.yaml", base.crds}, {"rbac.yaml", base.common}, {"deployments.yaml", base.workloads}, {"policies.yaml", base.policies}}
	var names []string
	for _, f := range baseFiles {
		if err := put(KustomizeBase, f.name, f.objs); err != nil {
			return nil, err
		}
		names = append(names, f.name)
	}
	if err := kustomization(KustomizeBase, types.Kustomization{Resources: names}); err != nil {
		return nil, err
	}
	up := "../../" + KustomizeBase
	if err := put(KustomizeClusterWide, "rbac.yaml", base.scoped); err != nil {
		return nil, err
	}
	if err := kustomization(KustomizeClusterWide, types.Kustomization{Resources: []string{up, "rbac.yaml"}}); err != nil {
		return nil, err
	}
	if len(o.WatchNamespaces) == 0 {
		return files, nil
	}
	ns, err := manifests(o)
	if err != nil {
		return nil, err
	}
	if err := put(KustomizeNamespaced, "rbac.yaml", ns.scoped); err != nil {
		return nil, err
	}
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	// A JSON 6902 patch, applied by kustomize: append the flag to the
	// container's arguments, as Manifests does in the namespaced mode.
	patch, err := yaml.Marshal([]map[string]any{{
		"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": watchFlag(o),
	}})
	if err != nil {
		return nil, err
	}
	k := types.Kustomization{Resources: []string{up, "rbac.yaml"}}
	for _, name := range []string{OperatorName, RunnerName} {
		k.Patches = append(k.Patches, types.Patch{Patch: string(patch), Target: &types.Selector{ResId: resid.ResId{
			Gvk: resid.Gvk{Group: "apps", Version: "v1", Kind: "Deployment"}, Name: name, Namespace: o.Namespace,
		}}})
	}
	if err := kustomization(KustomizeNamespaced, k); err != nil {
		return nil, err
	}
	return files, nil
}

// WriteKustomize writes Kustomize(o) under dir (created if missing),
// replacing files of the same names, and returns the overlay directories
// written.
func WriteKustomize(dir string, o Options) ([]string, error) {
	files, err := Kustomize(o)
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var overlays []string
	for _, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
		if d := filepath.Dir(full); filepath.Base(p) == "kustomization.yaml" && !slices.Contains(overlays, d) && filepath.Dir(filepath.FromSlash(p)) != KustomizeBase {
			overlays = append(overlays, d)
		}
	}
	return overlays, nil
}
