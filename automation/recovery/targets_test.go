package recovery

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRefreshTargets(t *testing.T) {
	const (
		stack = "urn:pulumi:dev::web::pulumi:pulumi:Stack::web-dev"
		prov  = "urn:pulumi:dev::web::pulumi:providers:kubernetes::k8s"
		ns    = "urn:pulumi:dev::web::kubernetes:core/v1:Namespace::ns"
		cm    = "urn:pulumi:dev::web::kubernetes:core/v1:ConfigMap::cm"
		dep   = "urn:pulumi:dev::web::kubernetes:apps/v1:Deployment::web"
		fresh = "urn:pulumi:dev::web::kubernetes:core/v1:ConfigMap::new"
	)
	res := func(urn, typ string) string { return `{"urn":"` + urn + `","type":"` + typ + `","custom":true}` }
	held := `"resources":[` + res(stack, "pulumi:pulumi:Stack") + `,` + res(prov, "pulumi:providers:kubernetes") + `,` +
		res(ns, "kubernetes:core/v1:Namespace") + `,` + res(cm, "kubernetes:core/v1:ConfigMap") + `,` + res(dep, "kubernetes:apps/v1:Deployment") + `]`
	op := func(typ, urn string) string { return `{"type":"` + typ + `","resource":{"urn":"` + urn + `"}}` }
	for _, tc := range []struct {
		name       string
		deployment string
		want       []string
	}{
		{name: "no deployment", deployment: ``, want: nil},
		{name: "an interrupted update and delete: their resources, sorted",
			deployment: `{` + held + `,"pending_operations":[` + op("updating", dep) + `,` + op("deleting", cm) + `]}`, want: []string{dep, cm}},
		{name: "the same resource twice is targeted once",
			deployment: `{` + held + `,"pending_operations":[` + op("updating", dep) + `,` + op("creating", dep) + `]}`, want: []string{dep}},
		{name: "a create of a resource not in the state is not a target",
			deployment: `{` + held + `,"pending_operations":[` + op("creating", fresh) + `,` + op("updating", ns) + `]}`, want: []string{ns}},
		{name: "only creates of new resources: the root stack, never the whole stack",
			deployment: `{` + held + `,"pending_operations":[` + op("creating", fresh) + `]}`, want: []string{stack}},
		{name: "without a root stack, one resource",
			deployment: `{"resources":[` + res(ns, "kubernetes:core/v1:Namespace") + `],"pending_operations":[` + op("creating", fresh) + `]}`, want: []string{ns}},
		{name: "no resources: nothing to read", deployment: `{"pending_operations":[` + op("creating", fresh) + `]}`, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RefreshTargets(json.RawMessage(tc.deployment))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := RefreshTargets(json.RawMessage(`{"resources":`))
	assert.Error(t, err, "a deployment that does not parse")
}
