package runner

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
)

// TestRefused_OutsideTheNamespaces: a runner serving team-a returns at
// once for a Run of team-b, before it reads anything (it has no client
// here), and New refuses a list that is not namespace names.
func TestRefused_OutsideTheNamespaces(t *testing.T) {
	t.Parallel()
	r, err := New(cluster.Config, Options{Namespaces: []string{"team-a"}, WorkDir: t.TempDir()})
	require.NoError(t, err)
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team-b", Name: "dev-1"}})
	require.NoError(t, err)
	assert.Zero(t, res)

	_, err = New(cluster.Config, Options{Namespaces: []string{"team-a", "team-a"}, WorkDir: t.TempDir()})
	assert.ErrorContains(t, err, `runner: Options.Namespaces: namespace "team-a" is listed twice`)
}
