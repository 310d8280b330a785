package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun_OnTheLocalCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, t.TempDir()), out.String())
	assert.Contains(t, out.String(), "namespace = slipway-qa")
	assert.Contains(t, out.String(), "destroy: map[delete:")
}
