package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNamespaces_ParseServesCache(t *testing.T) {
	ns, err := ParseNamespaces("--watch-namespaces", " team-a, team-b ,")
	require.NoError(t, err)
	assert.Equal(t, Namespaces{"team-a", "team-b"}, ns)
	assert.True(t, ns.Serves("team-a"))
	assert.False(t, ns.Serves("kube-system"))
	assert.False(t, ns.All())
	assert.Len(t, ns.Cache(), 2)
	assert.Contains(t, ns.Cache(), "team-b")
	assert.Equal(t, "team-a,team-b", ns.String())

	all, err := ParseNamespaces("--watch-namespaces", "")
	require.NoError(t, err)
	assert.True(t, all.All())
	assert.True(t, all.Serves("anything"))
	assert.Nil(t, all.Cache(), "cluster-wide: the cache's default, every namespace")

	_, err = ParseNamespaces("--watch-namespaces", "a,B")
	assert.EqualError(t, err, `--watch-namespaces: "B" is not a namespace name (a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')); list namespace names separated by commas, e.g. team-a,team-b`)
	_, err = ParseNamespaces("--watch-namespaces", " , ")
	assert.EqualError(t, err, `--watch-namespaces: " , " lists no namespace; list namespace names separated by commas, e.g. team-a,team-b`)
	_, err = ParseNamespaces("--watch-namespaces", "a,a")
	assert.EqualError(t, err, `--watch-namespaces: namespace "a" is listed twice; list each namespace once`)
}
