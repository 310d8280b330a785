// Package fault holds the fault injectors, repairs and health checks of
// slipwaytest.Drill: DeletePods, EditObject (an out-of-band edit), KillAt
// (kill -9 a child process — the engine — at a point it signals; see Child
// and StartChild) and SetMetric (a metric turning bad on the Pushgateway of
// integration/promtest); RepairDrift (the engine's drift repair);
// DeploymentReady and PodsReady.
package fault

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/integration/promtest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
)

// DeletePods returns an injector that deletes, at once (grace period 0),
// the pods in namespace matching the label selector, the way a node loss
// does. It fails when no pod matches: the drill would prove nothing.
func DeletePods(client kubernetes.Interface, namespace, selector string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		pods := client.CoreV1().Pods(namespace)
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return fmt.Errorf("no pod in namespace %s matches %q", namespace, selector)
		}
		zero := int64(0)
		for _, p := range l.Items {
			if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				return fmt.Errorf("deleting pod %s/%s: %w", namespace, p.Name, err)
			}
		}
		return nil
	}
}

// EditObject returns an injector that edits obj out of band, as a person
// with kubectl would: a patch of type pt (types.JSONPatchType to replace
// one field, e.g. `[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.26"}]`;
// types.MergePatchType for a JSON merge patch, which replaces lists
// whole). Any kind the cluster serves, custom resources included.
func EditObject(cfg *rest.Config, obj slipwaytest.Object, pt types.PatchType, patch string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ri, err := resourceOf(cfg, obj)
		if err != nil {
			return err
		}
		if _, err := ri.Patch(ctx, obj.Name, pt, []byte(patch), metav1.PatchOptions{FieldManager: "slipwaytest-drill"}); err != nil {
			return fmt.Errorf("editing %s: %w", obj, err)
		}
		return nil
	}
}

// resourceOf returns the dynamic client of obj's resource.
func resourceOf(cfg *rest.Config, obj slipwaytest.Object) (dynamic.ResourceInterface, error) {
	gv, err := schema.ParseGroupVersion(obj.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	m, err := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)).RESTMapping(schema.GroupKind{Group: gv.Group, Kind: obj.Kind}, gv.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(m.Resource).Namespace(obj.Namespace), nil
	}
	return dyn.Resource(m.Resource), nil
}

// RepairDrift returns a recovery that runs the engine's drift check with
// remediation on st (optdrift.Remediate, plus opts). It fails when the
// check finds no drift (the fault was not seen) or does not remediate.
func RepairDrift(st *automation.Stack, opts ...optdrift.Option) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		d, err := st.CheckDrift(ctx, append([]optdrift.Option{optdrift.Remediate()}, opts...)...)
		switch {
		case err != nil:
			return err
		case !d.Found():
			return errors.New("the drift check found no drift")
		case d.Remediated == nil:
			return errors.New("the drift check found drift but did not remediate it")
		}
		return nil
	}
}

// DeploymentReady returns a health check: the Deployment has rolled out
// (its generation observed, every desired replica updated and available,
// no other replica left) and, when image is not empty, its first container
// runs image.
func DeploymentReady(client kubernetes.Interface, namespace, name, image string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
			return false, fmt.Errorf("deployment %s/%s: %d desired, %d updated, %d available, %d in total", namespace, name, want,
				s.UpdatedReplicas, s.AvailableReplicas, s.Replicas)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; image != "" && got != image {
			return false, fmt.Errorf("deployment %s/%s runs %s, not %s", namespace, name, got, image)
		}
		return true, nil
	}
}

// PodsReady returns a health check: exactly n pods in namespace match the
// selector, each Ready and none being deleted.
func PodsReady(client kubernetes.Interface, namespace, selector string, n int) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, p := range l.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready != n || len(l.Items) != n {
			return false, fmt.Errorf("%d pod(s) match %q in %s, %d Ready; want %d Ready", len(l.Items), selector, namespace, ready, n)
		}
		return true, nil
	}
}

// SetMetric returns an injector that turns a metric: it pushes
// metric=value for job to the Pushgateway of s and waits until Prometheus
// has scraped it (metric{job="<job>"} returns value), so the next analysis
// sees it.
func SetMetric(s *promtest.Servers, job, metric string, value float64) func(ctx context.Context) error {
	return func(ctx context.Context) error { return s.Set(ctx, job, metric, value) }
}
