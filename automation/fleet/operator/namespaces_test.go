package operator

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/slipwayhq/slipway/automation/fleet"
)

// TestRefused_OutsideTheNamespaces: a reconciler of a namespaced operator
// returns at once for an object of a namespace not listed (logging the
// refusal), before it reads anything: its client is nil here.
func TestRefused_OutsideTheNamespaces(t *testing.T) {
	var logs bytes.Buffer
	o := Options{namespaces: fleet.Namespaces{"team-a"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team-b", Name: "dev"}}
	res, err := (&EnvironmentReconciler{Options: o}).Reconcile(context.Background(), req)
	require.NoError(t, err)
	assert.Zero(t, res)
	res, err = (&RunReconciler{Options: o}).Reconcile(context.Background(), req)
	require.NoError(t, err)
	assert.Zero(t, res)
	assert.Contains(t, logs.String(), "refused: the operator does not serve this namespace")
	assert.Contains(t, logs.String(), "team-b/dev")
	assert.False(t, o.refused("Environment", ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "dev"}}))
	assert.False(t, Options{Logger: o.Logger}.refused("Environment", req), "cluster-wide: every namespace is served")
}
