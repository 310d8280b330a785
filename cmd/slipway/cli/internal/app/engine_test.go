package app

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// executable writes a tiny executable file standing in for a plugin.
func executable(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
	return p
}

// TestPluginBinaries_ReadsSlipwayPlugins: $SLIPWAY_PLUGINS adds plugins to
// the --plugin values (a --plugin of the same name and version wins), and
// a bad entry is refused naming the variable and the fix.
func TestPluginBinaries_ReadsSlipwayPlugins(t *testing.T) {
	random, aws, flagAWS := executable(t, "random"), executable(t, "aws"), executable(t, "aws2")
	t.Setenv(PluginsEnv, "random@4.16.0="+random+",aws@6.0.0="+aws)
	g := &Globals{Errw: io.Discard}
	got, err := g.PluginBinaries()
	require.NoError(t, err)
	assert.Equal(t, []Plugin{
		{Name: "random", Version: "4.16.0", Path: random, From: "$SLIPWAY_PLUGINS"},
		{Name: "aws", Version: "6.0.0", Path: aws, From: "$SLIPWAY_PLUGINS"},
	}, got)
	opts, err := g.pluginOptions()
	require.NoError(t, err)
	assert.Len(t, opts, 2, "the engine gets both")

	g.Plugins = []string{"aws@6.0.0=" + flagAWS}
	got, err = g.PluginBinaries()
	require.NoError(t, err)
	assert.Equal(t, []Plugin{
		{Name: "random", Version: "4.16.0", Path: random, From: "$SLIPWAY_PLUGINS"},
		{Name: "aws", Version: "6.0.0", Path: flagAWS, From: "--plugin"},
	}, got, "--plugin replaces the variable's plugin of the same name and version")

	for _, c := range []struct{ value, want string }{
		{"random", `$SLIPWAY_PLUGINS "random": use NAME[@VERSION]=PATH`},
		{"random=" + random, "$SLIPWAY_PLUGINS \"random=" + random + "\": give the version of random"},
		{"random@4.16.0=/nonexistent/plugin", `$SLIPWAY_PLUGINS random: "/nonexistent/plugin" is not an executable file`},
		{"random@4.16.0=" + random + ",", "$SLIPWAY_PLUGINS \"random@4.16.0=" + random + ",\" has an empty entry"},
	} {
		t.Setenv(PluginsEnv, c.value)
		g := &Globals{Errw: io.Discard}
		_, err := g.PluginBinaries()
		require.Error(t, err, c.value)
		assert.Contains(t, err.Error(), c.want)
		code, _ := Classify(err)
		assert.Equal(t, "invalid_input", code, "bad input: %v", err)
		_, err = g.RunnerEngineOptions()
		require.Error(t, err, "a runner refuses it before it starts")
		assert.Contains(t, err.Error(), "$SLIPWAY_PLUGINS")
	}
}
