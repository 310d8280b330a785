package slipwaytest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
)

// greeter is a team's program: a ConfigMap in a namespace named after the
// stack, so every test environment gets its own.
func greeter(ctx *pulumi.Context) error {
	ns, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ctx.Stack())}})
	if err != nil {
		return err
	}
	_, err = corev1.NewConfigMap(ctx, "greeting", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("greeting"), Namespace: ns.Metadata.Name().Elem()},
		Data:     pulumi.StringMap{"GREETING": pulumi.String("hello")},
	})
	ctx.Export("namespace", ns.Metadata.Name().Elem())
	return err
}

// A live test: New brings the program up on the package's cluster and
// destroys it (checking for leaks) when the test ends. The package's
// TestMain is `func TestMain(m *testing.M) { slipwaytest.Main(m) }`.
func ExampleNew() {
	_ = func(t *testing.T) {
		t.Parallel()
		env := slipwaytest.New(t, automation.Program{Run: greeter})
		ns := slipwaytest.Output[string](env, "namespace")
		if got := env.ConfigMap(ns, "greeting")["GREETING"]; got != "hello" {
			t.Errorf("GREETING = %q", got)
		}
	}
}

// A golden test of a preview: `SLIPWAYTEST_UPDATE=1 go test -run
// TestGreeterPreview` (or -update, when the test package defines that flag)
// writes testdata/greeter.golden, later runs compare with it.
func ExampleAssertGolden() {
	_ = func(t *testing.T) {
		env := slipwaytest.New(t, automation.Program{Run: greeter}, slipwaytest.WithoutUp())
		slipwaytest.AssertGolden(t, env.Preview(), "testdata/greeter.golden")
	}
}

// The unit-test side: the program under mocks, its graph checked against
// a pack in-process. In a test, slipwaytest.AssertCompliant(t, g, settings,
// packs...) fails listing the blocking findings; Findings returns them all.
func ExampleFindings() {
	g, err := mocktest.Run(greeter, nil, mocktest.Preview())
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Types())
	for _, f := range slipwaytest.Findings(g, policypacks.Settings{Kind: "prod"}, kubernetes.Pack()) {
		fmt.Println(f.Blocking(), slipwaytest.FormatFinding(f))
	}
	// Output:
	// [kubernetes:core/v1:ConfigMap kubernetes:core/v1:Namespace]
	// true mandatory slipway-kubernetes/namespace-network-policy: kubernetes:core/v1:Namespace ns: namespace ns has no NetworkPolicy; traffic is unrestricted
}

// Retry polls until a condition holds, with a bound on attempts and the
// context's deadline; the error carries the attempt count and last error.
func ExampleRetry() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := slipwaytest.Retry(ctx, 3, 10*time.Millisecond, func(context.Context) error {
		return errors.New("deployment web: 0/2 available")
	})
	var re *slipwaytest.RetryError
	if errors.As(err, &re) {
		fmt.Println(re.Attempts, re.Last)
	}
	// Output:
	// 3 deployment web: 0/2 available
}

// RenderChanges is what AssertGolden compares: one sorted line per change,
// the unique stack name replaced.
func ExampleRenderChanges() {
	res := &outcome.Result{Stack: "web-x1y2z", Resources: []outcome.ResourceChange{
		{URN: "urn:pulumi:web-x1y2z::app::kubernetes:core/v1:Namespace::web-x1y2z", Type: "kubernetes:core/v1:Namespace", Op: "create"},
		{URN: "urn:pulumi:web-x1y2z::app::kubernetes:core/v1:ConfigMap::greeting", Type: "kubernetes:core/v1:ConfigMap", Op: "update", Diffs: []string{"data"}},
	}}
	fmt.Print(slipwaytest.RenderChanges(res))
	// Output:
	// create kubernetes:core/v1:Namespace <stack>
	// update kubernetes:core/v1:ConfigMap greeting diffs=data
}
