package minimal_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's "your own environment" snippet is this package's program,
// character for character: the fenced Go block of README.md that declares
// package minimal equals minimal.go.
func TestReadme_SnippetIsTheProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	file, err := os.ReadFile("minimal.go")
	require.NoError(t, err)
	var snippet string
	for _, block := range strings.Split(string(readme), "```go\n")[1:] {
		code, _, _ := strings.Cut(block, "```")
		if strings.Contains(code, "\npackage minimal\n") {
			snippet = code
		}
	}
	require.NotEmpty(t, snippet, "README.md has no ```go block declaring package minimal")
	assert.Equal(t, string(file), snippet, "README.md's snippet and examples/minimal/minimal.go differ: copy the file into the README")
}
