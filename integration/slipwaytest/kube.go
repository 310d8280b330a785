package slipwaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/slipwayhq/slipway/automation"
)

// Object identifies a Kubernetes object.
type Object struct {
	APIVersion string
	Kind       string
	// Namespace is empty for cluster-scoped objects.
	Namespace string
	Name      string
}

// String renders the object as "apps/v1 Deployment ns/name".
func (o Object) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s %s", o.APIVersion, o.Kind, o.Name)
	}
	return fmt.Sprintf("%s %s %s/%s", o.APIVersion, o.Kind, o.Namespace, o.Name)
}

// Owned returns the Kubernetes objects in the stack's state (its Kubernetes
// resources, not providers or patches), sorted; it fails the test when the
// state cannot be read.
func (e *Env) Owned() []Object {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	objs, err := ownedObjects(ctx, e.Stack)
	if err != nil {
		e.t.Fatalf("slipwaytest: state of %s: %v", e.Name, err)
	}
	return objs
}

// ownedObjects reads the Kubernetes objects from an exported deployment.
func ownedObjects(ctx context.Context, st *automation.Stack) ([]Object, error) {
	dep, err := st.Auto().Export(ctx)
	if err != nil {
		return nil, err
	}
	return objectsOf(dep.Deployment)
}

// objectsOf reads the Kubernetes objects from a deployment (v3) document.
func objectsOf(deployment json.RawMessage) ([]Object, error) {
	if len(deployment) == 0 {
		return nil, nil
	}
	var d struct {
		Resources []struct {
			Type    string `json:"type"`
			Custom  bool   `json:"custom"`
			Outputs struct {
				APIVersion any `json:"apiVersion"`
				Kind       any `json:"kind"`
				Metadata   any `json:"metadata"`
			} `json:"outputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(deployment, &d); err != nil {
		return nil, fmt.Errorf("slipwaytest: the stack's state is not a deployment: %w", err)
	}
	var out []Object
	for _, r := range d.Resources {
		if !r.Custom || !strings.HasPrefix(r.Type, "kubernetes:") || strings.HasSuffix(r.Type, "Patch") {
			continue
		}
		md, _ := r.Outputs.Metadata.(map[string]any)
		o := Object{APIVersion: str(r.Outputs.APIVersion), Kind: str(r.Outputs.Kind), Namespace: str(md["namespace"]), Name: str(md["name"])}
		if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
			continue // not an object (a Helm release), or its names are secret
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

func str(v any) string { s, _ := v.(string); return s }

// WaitForDeployment waits until the Deployment has rolled out: observed,
// with its desired replicas updated and available. It fails the test with
// the last status after timeout.
func (e *Env) WaitForDeployment(namespace, name string, timeout time.Duration) {
	e.t.Helper()
	Eventually(e.t, context.Background(), timeout, 250*time.Millisecond, func(ctx context.Context) error {
		d, err := e.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
			return fmt.Errorf("deployment %s/%s: %d desired, %d updated, %d available, %d in total (generation %d observed %d)",
				namespace, name, want, s.UpdatedReplicas, s.AvailableReplicas, s.Replicas, d.Generation, s.ObservedGeneration)
		}
		return nil
	})
}

// ConfigMap returns the data of a ConfigMap; it fails the test when the
// ConfigMap cannot be read.
func (e *Env) ConfigMap(namespace, name string) map[string]string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cm, err := e.Client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("slipwaytest: ConfigMap %s/%s: %v", namespace, name, err)
	}
	return cm.Data
}

// RESTConfig returns the client configuration of the target cluster, for
// fault.EditObject and other clients than Client.
func (e *Env) RESTConfig() *rest.Config { return rest.CopyConfig(e.rest) }

// kubeCheck looks objects up generically, for the leak check.
type kubeCheck struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	env    *Env
}

func (e *Env) kube() (*kubeCheck, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(e.rest)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(e.rest)
	if err != nil {
		return nil, err
	}
	return &kubeCheck{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), env: e}, nil
}

// live reports whether the object exists and is not being deleted. An
// object whose type the cluster no longer serves (a removed CRD) is gone.
func (k *kubeCheck) live(ctx context.Context, o Object) (bool, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return false, err
	}
	m, err := k.mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: o.Kind}, gv.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var ri dynamic.ResourceInterface = k.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		ri = k.dyn.Resource(m.Resource).Namespace(ns)
	}
	obj, err := ri.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return obj.GetDeletionTimestamp() == nil, nil
}

// namespaces lists the namespaces whose name contains s and that are not
// being deleted.
func (k *kubeCheck) namespaces(ctx context.Context, s string) ([]string, error) {
	l, err := k.env.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range l.Items {
		if strings.Contains(ns.Name, s) && ns.DeletionTimestamp == nil {
			out = append(out, ns.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}
