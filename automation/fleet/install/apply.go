package install

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the server-side apply field manager of Apply.
const FieldManager = "slipway"

// defaultWait bounds the waits of Apply when ctx has no deadline.
const defaultWait = 2 * time.Minute

// pollInterval is how often Apply looks at a CRD it waits for.
const pollInterval = 250 * time.Millisecond

var crdResource = schema.GroupVersionResource{
	Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions",
}

// Apply applies objs to the cluster cfg points at with server-side apply
// (field manager FieldManager, forcing conflicts): the CRDs first, waiting
// until each is Established, then Namespaces, then the rest in their order.
// Applying the same objects again changes nothing. When ctx has no
// deadline, waits are bounded by two minutes.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	a := &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWait)
		defer cancel()
	}
	var crds, namespaces, rest []*unstructured.Unstructured
	for _, obj := range objs {
		switch gk := obj.GroupVersionKind().GroupKind(); {
		case gk == schema.GroupKind{Group: crdResource.Group, Kind: "CustomResourceDefinition"}:
			crds = append(crds, obj)
		case gk == schema.GroupKind{Kind: "Namespace"}:
			namespaces = append(namespaces, obj)
		default:
			rest = append(rest, obj)
		}
	}
	for _, obj := range crds {
		if err := a.apply(ctx, obj); err != nil {
			return err
		}
	}
	for _, obj := range crds {
		if err := a.established(ctx, obj.GetName()); err != nil {
			return err
		}
	}
	if len(crds) > 0 {
		a.mapper.Reset()
		a.waitMappings = true
	}
	for _, obj := range append(namespaces, rest...) {
		if err := a.apply(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// applier applies objects one by one.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// waitMappings makes unknown kinds retried until the context ends:
	// discovery can lag behind a CRD that just became Established.
	waitMappings bool
}

// apply server-side applies one object.
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	what := gvk.Kind + " " + obj.GetName()
	if obj.GetNamespace() != "" {
		what = gvk.Kind + " " + obj.GetNamespace() + "/" + obj.GetName()
	}
	mapping, err := a.mapping(ctx, gvk)
	if err != nil {
		return fmt.Errorf("install: %s: %w", what, err)
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return fmt.Errorf("install: %s is namespaced but has no metadata.namespace", what)
		}
		ri = a.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		if apierrors.IsNotFound(err) && obj.GetNamespace() != "" {
			// The namespaced mode's Roles go into the namespaces it
			// serves, which their tenants own and the install never creates.
			return fmt.Errorf("install: apply %s: %w; create namespace %s first (or leave it out of the namespaces served)", what, err, obj.GetNamespace())
		}
		return fmt.Errorf("install: apply %s: %w", what, err)
	}
	return nil
}

// mapping finds the resource of a kind, refreshing discovery once when the
// kind is unknown (or, after CRDs were applied, until ctx ends).
func (a *applier) mapping(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil || !meta.IsNoMatchError(err) {
		return m, err
	}
	a.mapper.Reset()
	if !a.waitMappings {
		return a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	perr := wait.PollUntilContextCancel(ctx, pollInterval, true, func(context.Context) (bool, error) {
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			a.mapper.Reset()
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	return m, perr
}

// established waits until the CRD name is Established, or fails when its
// names are refused.
func (a *applier) established(ctx context.Context, name string) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		crd, err := a.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			c, _ := c.(map[string]any)
			typ, status, msg := c["type"], c["status"], c["message"]
			switch {
			case typ == "Established" && status == "True":
				return true, nil
			case typ == "NamesAccepted" && status == "False":
				return false, fmt.Errorf("install: CRD %s: names not accepted: %v", name, msg)
			case typ == "Established":
				last = fmt.Sprintf("Established=%v: %v", status, msg)
			}
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		if last == "" {
			last = "no Established condition yet"
		}
		return fmt.Errorf("install: CRD %s is not Established (%s): %w", name, last, err)
	}
	return err
}
