package stack

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPlainValue(t *testing.T) {
	assert.True(t, plainValue(map[string]any{"a": []any{"x", 1.0, map[string]any{"b": true}}}))
	assert.False(t, plainValue(map[string]any{"a": []any{map[string]any{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}}}))
	assert.False(t, plainValue(map[string]any{"a": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}))
}

// TestHoldsKubernetesProvider: destroying a stack opened without its
// program resolves the Kubernetes provider only when the state holds one
// (or cannot be read).
func TestHoldsKubernetesProvider(t *testing.T) {
	assert.True(t, holdsKubernetesProvider([]byte(`{"resources":[{"type":"pulumi:pulumi:Stack"},{"type":"pulumi:providers:kubernetes"}]}`)))
	assert.False(t, holdsKubernetesProvider([]byte(`{"resources":[{"type":"pulumi:pulumi:Stack"},{"type":"pulumi:providers:aws"}]}`)))
	assert.False(t, holdsKubernetesProvider([]byte(`{}`)))
	assert.True(t, holdsKubernetesProvider([]byte(`not json`)), "an unreadable deployment counts as holding one")
}
