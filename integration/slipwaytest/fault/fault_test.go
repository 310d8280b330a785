package fault_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kmetav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/integration/slipwaytest/fault"
)

// TestMain registers the children of the process tests, then runs them
// (or, in a child's process, the child).
func TestMain(m *testing.M) {
	fault.Child("sleeper", sleeper)
	fault.Child("quitter", func(context.Context) error { return errors.New("gave up early") })
	slipwaytest.Main(m)
}

// TestDeletePods_DeletesTheMatchingPodsAndRefusesNone: the injector
// deletes exactly the selected pods, and fails when none matches.
func TestDeletePods_DeletesTheMatchingPodsAndRefusesNone(t *testing.T) {
	t.Parallel()
	pod := func(name, app string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: kmetav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": app}}}
	}
	c := fake.NewClientset(pod("web-1", "web"), pod("web-2", "web"), pod("db-1", "db"))
	ctx := context.Background()
	require.NoError(t, fault.DeletePods(c, "shop", "app=web")(ctx))
	l, err := c.CoreV1().Pods("shop").List(ctx, kmetav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, l.Items, 1)
	assert.Equal(t, "db-1", l.Items[0].Name)

	err = fault.DeletePods(c, "shop", "app=web")(ctx)
	assert.EqualError(t, err, `no pod in namespace shop matches "app=web"`)
}
