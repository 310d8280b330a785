package install_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/slipwayhq/slipway/automation/fleet/install"
)

// Manifests and Write print what `kubectl apply -f -` needs to run the
// fleet in namespace "fleet", serving the namespaces team-a and team-b
// (the namespaced mode: Roles there, no ClusterRole).
func ExampleWrite() {
	objs, err := install.Manifests(install.Options{Namespace: "fleet", Image: "registry.example/slipway@sha256:4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
		Runners: 4, WatchNamespaces: []string{"team-a", "team-b"}})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := install.Write(&buf, objs); err != nil {
		log.Fatal(err)
	}
	for _, obj := range objs {
		fmt.Println(obj.GetKind(), obj.GetNamespace(), obj.GetName())
	}
	fmt.Println(strings.Count(buf.String(), "---\n"), "documents")
	// Output:
	// CustomResourceDefinition  environments.slipway.dev
	// CustomResourceDefinition  runs.slipway.dev
	// Namespace  fleet
	// ServiceAccount fleet slipway-operator
	// ServiceAccount fleet slipway-runner
	// Role fleet slipway-operator
	// RoleBinding fleet slipway-operator
	// Role team-a slipway-operator
	// Role team-b slipway-operator
	// Role team-a slipway-runner
	// Role team-b slipway-runner
	// RoleBinding team-a slipway-operator
	// RoleBinding team-b slipway-operator
	// RoleBinding team-a slipway-runner
	// RoleBinding team-b slipway-runner
	// Deployment fleet slipway-operator
	// Deployment fleet slipway-runner
	// PodDisruptionBudget fleet slipway-operator
	// PodDisruptionBudget fleet slipway-runner
	// NetworkPolicy fleet slipway-default-deny
	// NetworkPolicy fleet slipway-operator
	// NetworkPolicy fleet slipway-runner
	// 22 documents
}
