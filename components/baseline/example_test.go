package baseline_test

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

// The baseline of a team namespace that an ingress controller may reach.
func ExampleNew() {
	g, _ := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := baseline.New(ctx, "payments", baseline.Args{Namespace: "payments", AllowIngressFrom: []string{"ingress-nginx"}})
		return err
	}, nil)
	for _, np := range g.OfType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		fmt.Println(np.Name)
	}
	// Unordered output:
	// payments-default-deny
	// payments-allow-same-namespace
	// payments-allow-dns-egress
	// payments-allow-ingress-from-namespaces
}
