package slipwaytest_test

import (
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/slipwaytest"
)

// updateFlag is this test package's own -update flag: slipwaytest registers
// none, so a package may define one alongside it (and AssertGolden honours
// it). The binary would panic at start if both defined it.
var updateFlag = flag.Bool("update", false, "rewrite golden files (AssertGolden honours it too)")

func TestMain(m *testing.M) { slipwaytest.Main(m) }

// setUpdateFlag sets the -update flag for the rest of t, as the command
// line would, and restores it when t ends.
func setUpdateFlag(t *testing.T, v bool) {
	t.Helper()
	old := *updateFlag
	require.NoError(t, flag.Set("update", strconv.FormatBool(v)))
	t.Cleanup(func() { *updateFlag = old })
}

// fakeTB stands in for a test to test the harness's own failures: it
// records errors, fatal errors and logs, and runs the cleanups it was given
// when told to. Everything else goes to the real test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	logs     []string
	failed   bool
	cleanups []func()
}

func newFake(t *testing.T) *fakeTB { return &fakeTB{TB: t} }

func (f *fakeTB) record(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, msg)
	f.failed = true
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Error(args ...any)                 { f.record(fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) { f.record(fmt.Sprintf(format, args...)) }
func (f *fakeTB) Fail()                             { f.mu.Lock(); f.failed = true; f.mu.Unlock() }
func (f *fakeTB) FailNow()                          { f.Fail(); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any)                 { f.record(fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) Log(args ...any) { f.Logf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.logs = append(f.logs, msg)
	f.mu.Unlock()
	f.TB.Logf("(fake) %s", msg)
}
func (f *fakeTB) Failed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// do runs fn as a test body: a Fatal ends fn only.
func (f *fakeTB) do(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// runCleanups runs the registered cleanups, last first, as testing does.
func (f *fakeTB) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		f.do(fns[i])
	}
}

// errors returns what was reported, one report per line group.
func (f *fakeTB) errors() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.errs, "\n")
}

func (f *fakeTB) logged() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.logs, "\n")
}

// reset forgets the reports so far.
func (f *fakeTB) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs, f.failed = nil, false
}

// web is a namespace named after the stack, a ConfigMap and a Deployment of
// two replicas in it, through the default Kubernetes provider.
func web(ctx *pulumi.Context) error {
	ns, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ctx.Stack())}})
	if err != nil {
		return err
	}
	cm, err := corev1.NewConfigMap(ctx, "config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("web-config"), Namespace: ns.Metadata.Name().Elem()},
		Data:     pulumi.StringMap{"GREETING": pulumi.String("hello")},
	})
	if err != nil {
		return err
	}
	labels := pulumi.StringMap{"app": pulumi.String("web")}
	_, err = appsv1.NewDeployment(ctx, "web", &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("web"), Namespace: ns.Metadata.Name().Elem()},
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(2),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{
					Name: pulumi.String("web"), Image: pulumi.String("nginx:1.27")}}},
			},
		},
	}, pulumi.DependsOn([]pulumi.Resource{cm}))
	if err != nil {
		return err
	}
	ctx.Export("namespace", ns.Metadata.Name().Elem())
	ctx.Export("replicas", pulumi.Int(2))
	ctx.Export("data", cm.Data)
	return nil
}
