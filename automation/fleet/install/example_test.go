package install_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/slipwayhq/slipway/automation/fleet/install"
)

// Manifests and Write print what `kubectl apply -f -` needs to run the
// fleet in namespace "fleet".
func ExampleWrite() {
	objs, err := install.Manifests(install.Options{Namespace: "fleet", Image: "registry.example/slipway:v1.2.0", Runners: 4})
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
	// ClusterRole  slipway-operator
	// Role fleet slipway-operator
	// ClusterRole  slipway-runner
	// ClusterRoleBinding  slipway-operator
	// RoleBinding fleet slipway-operator
	// ClusterRoleBinding  slipway-runner
	// Deployment fleet slipway-operator
	// Deployment fleet slipway-runner
	// 13 documents
}
