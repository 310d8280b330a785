package automation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomString registers a resource of a plugin Slipway neither builds nor
// finds installed (pulumi-resource-random).
func randomString(ctx *pulumi.Context) error {
	var r pulumi.CustomResourceState
	return ctx.RegisterResource("random:index/randomString:RandomString", "r", pulumi.Map{"length": pulumi.Int(8)}, &r, pulumi.Version("4.16.0"))
}

// TestPluginDownload_OffByDefaultOnWhenAllowed: by default a program that
// lists a missing plugin is refused before the run, naming the option and
// the flag that allow a download, and the engine itself never tries to
// download one; with WithPluginDownload the listed plugin is not refused
// and the engine tries to download the plugin (which fails here, where
// there is no network).
func TestPluginDownload_OffByDefaultOnWhenAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	random := Plugin{Name: "random", Version: "4.16.0"}
	off, err := New(ctx, WithDir(t.TempDir()), WithPulumiHome(t.TempDir()), WithResolver(pulumiOnlyResolver(t)), WithPassphrase(""))
	require.NoError(t, err)
	_, err = off.UpsertStack(ctx, Program{Project: "p", Stack: "listed", Run: randomString, Plugins: []Plugin{random}})
	var mp *MissingPluginError
	require.ErrorAs(t, err, &mp)
	assert.Contains(t, err.Error(), "automation.WithPluginDownload()")
	assert.Contains(t, err.Error(), "--allow-plugin-download")

	st, err := off.UpsertStack(ctx, Program{Project: "p", Stack: "unlisted", Run: randomString})
	require.NoError(t, err)
	_, err = st.Preview(ctx)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "download", "the engine must not try to download a plugin by default")

	on, err := New(ctx, WithDir(t.TempDir()), WithPulumiHome(t.TempDir()), WithResolver(pulumiOnlyResolver(t)), WithPassphrase(""),
		WithPluginDownload())
	require.NoError(t, err)
	st, err = on.UpsertStack(ctx, Program{Project: "p", Stack: "listed", Run: randomString, Plugins: []Plugin{random}})
	require.NoError(t, err, "a listed plugin the engine may download is not refused")
	_, err = st.Preview(ctx)
	require.Error(t, err, "there is no network here")
	assert.False(t, errors.As(err, &mp))
	assert.Contains(t, err.Error(), "download", "the engine tried to download the plugin")
}
