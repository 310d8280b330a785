package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/cmd/slipway/cli"
)

// `acmectl policy list --policy acme --json`, run in-process with the
// binary's own options, lists the pack's two rules with their severity,
// enforcement per environment kind (advisory in dev, mandatory in prod)
// and controls; without --policy the pack is listed beside Slipway's.
func TestAcmectl_PolicyListListsThePacksRules(t *testing.T) {
	var out, errs bytes.Buffer
	code := cli.Run(context.Background(), []string{"policy", "list", "--policy", "acme", "--json"}, &out, &errs, options...)
	require.Equal(t, cli.ExitOK, code, "stderr: %s", errs.String())
	var env struct {
		Command string
		Results []struct {
			Rules []struct {
				Pack, Policy, Severity string
				Enforcement            map[string]string
				Controls               []struct{ Framework, ID string }
			}
		}
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &env), out.String())
	assert.Equal(t, "policy list", env.Command)
	require.Len(t, env.Results, 1)
	rules := env.Results[0].Rules
	require.Len(t, rules, 2)
	assert.Equal(t, []string{"acme/required-labels", "acme/image-by-digest"}, []string{rules[0].Pack + "/" + rules[0].Policy, rules[1].Pack + "/" + rules[1].Policy})
	assert.Equal(t, "high", rules[1].Severity)
	assert.Equal(t, map[string]string{"dev": "advisory", "qa": "advisory", "staging": "mandatory", "prod": "mandatory", "ephemeral": "advisory"}, rules[1].Enforcement)
	assert.Equal(t, "6.3.2", rules[1].Controls[0].ID)

	out.Reset()
	code = cli.Run(context.Background(), []string{"policy", "list"}, &out, &errs, options...)
	require.Equal(t, cli.ExitOK, code, "stderr: %s", errs.String())
	for _, want := range []string{"required-labels", "image-by-digest", "no-privileged"} {
		assert.Contains(t, out.String(), want)
	}
}
