package input

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseSecrets_JSONAndDotenv reads both formats --secrets-file takes,
// and refuses malformed input naming the line or key, never the value.
func TestParseSecrets_JSONAndDotenv(t *testing.T) {
	got, err := parseSecrets([]byte(`  {"B": "two\"2", "A": "one-1"}`))
	require.NoError(t, err)
	assert.Equal(t, [][2]string{{"A", "one-1"}, {"B", `two"2`}}, got)

	got, err = parseSecrets([]byte("# comment\n\nexport A=one-1\nB = \"two\\n2\"\nC='th ree'\nD=a=b\r\n"))
	require.NoError(t, err)
	assert.Equal(t, [][2]string{{"A", "one-1"}, {"B", "two\n2"}, {"C", "th ree"}, {"D", "a=b"}}, got)

	for in, want := range map[string]string{
		"A=1\nsecret-value-9f\n":   "line 2 is not KEY=VALUE",
		`{"A": 1234}`:              "the value of A is not a JSON string",
		`{"A": "secret-value-9f"`:  "is not a JSON object of strings",
		"A=\"secret-value-9f\\q\"": "line 1 (A): the double-quoted value has a bad escape",
	} {
		_, err := parseSecrets([]byte(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want)
		assert.NotContains(t, err.Error(), "secret-value-9f")
	}
}
