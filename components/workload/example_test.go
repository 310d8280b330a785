package workload_test

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

// A canary of version 1.28 beside stable 1.27: one of five pods runs the canary.
func ExampleNew_canary() {
	g, _ := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := workload.New(ctx, "api", workload.Args{Namespace: pulumi.String("payments"), Name: "api", Image: "nginx:1.28",
			Replicas: 5, Strategy: workload.Canary, Canary: workload.CanaryArgs{StableImage: "nginx:1.27", Weight: 20}})
		return err
	}, nil)
	for _, d := range g.OfType("kubernetes:apps/v1:Deployment") {
		spec := d.Inputs["spec"].(map[string]any)
		c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		fmt.Println(d.Name, spec["replicas"], c["image"])
	}
	// Unordered output:
	// api-stable 5 nginx:1.27
	// api-canary 1 nginx:1.28
}
