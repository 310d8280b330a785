package localk8s

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// GatewayAPIModule is the Go module whose standard-channel CRDs
// InstallGatewayAPI applies; its version is the one in Slipway's go.mod.
const GatewayAPIModule = "sigs.k8s.io/gateway-api"

// gatewayAPICRDs are the standard-channel CRDs a canary's HTTPRoute needs.
var gatewayAPICRDs = []string{"gatewayclasses", "gateways", "httproutes", "referencegrants"}

// InstallGatewayAPI installs the Gateway API's standard CRDs (GatewayClass,
// Gateway, HTTPRoute, ReferenceGrant) from the module cache, at the version
// of sigs.k8s.io/gateway-api in the module's go.mod (nothing is
// downloaded from a website), and waits until they are established. It
// creates what is missing and leaves what exists, so tests sharing a
// cluster may all call it.
func (c *Cluster) InstallGatewayAPI(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", GatewayAPIModule).Output()
	if err != nil {
		return fmt.Errorf("localk8s: finding %s in the module cache (go list -m): %w", GatewayAPIModule, err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	cs, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	crds := cs.ApiextensionsV1().CustomResourceDefinitions()
	var names []string
	for _, n := range gatewayAPICRDs {
		b, err := os.ReadFile(filepath.Join(dir, "gateway.networking.k8s.io_"+n+".yaml"))
		if err != nil {
			return fmt.Errorf("localk8s: Gateway API CRD: %w", err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(bytes.TrimPrefix(b, []byte("---\n")), &crd); err != nil {
			return fmt.Errorf("localk8s: Gateway API CRD %s: %w", n, err)
		}
		if _, err := crds.Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("localk8s: creating the CRD %s: %w", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crd, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("localk8s: the CRD %s is not established: %w", name, err)
		}
	}
	return nil
}
