package automation

import (
	"errors"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func noop(*pulumi.Context) error { return nil }

func TestValidateBackend_NamesTheProblem(t *testing.T) {
	for url, want := range map[string]string{
		"ftp://x":                  "is not supported",
		"file://relative/dir":      "needs an absolute directory",
		"file://":                  "needs an absolute directory",
		"s3://":                    "names no bucket",
		"gs://":                    "names no bucket",
		"https://":                 "names no host",
		"s3://b?access_key=SECRET": "",
		"::bad":                    "does not parse",
	} {
		err := ValidateBackend(url)
		if want == "" {
			assert.NoError(t, err, url)
			continue
		}
		require.Error(t, err, url)
		assert.Contains(t, err.Error(), want, url)
		assert.NotContains(t, err.Error(), "SECRET")
	}
	for _, ok := range []string{"file:///var/state", "file://~/state", "s3://bucket?region=eu-west-1", "https://api.pulumi.com", "azblob://c"} {
		assert.NoError(t, ValidateBackend(ok), ok)
	}
}

func TestChangesFoundError_IsTypedAndDistinctFromFailures(t *testing.T) {
	err := error(&OpError{Op: "preview", Stack: "dev", Err: &ChangesFoundError{Op: "preview", Stack: "dev", Changes: 3}})
	assert.True(t, IsChangesFound(err))
	assert.False(t, IsChangesFound(errors.New("preview failed")))
	assert.False(t, IsChangesFound(&PolicyBlockedError{Op: "up"}))
	assert.Contains(t, err.Error(), "found 3 change(s)")
}
