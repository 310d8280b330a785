package policypacks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/aws"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
)

// TestFinding_Blocking: a finding blocks when it is verified and mandatory
// or remediate (a proposed remediation does not unblock); Report.Blocking
// agrees with it.
func TestFinding_Blocking(t *testing.T) {
	cases := []struct {
		f    p.Finding
		want bool
	}{
		{p.Finding{Enforcement: p.Mandatory}, true},
		{p.Finding{Enforcement: p.Remediate, Remediation: map[string]any{"encrypted": true}}, true},
		{p.Finding{Enforcement: p.Advisory}, false},
		{p.Finding{Enforcement: p.Disabled}, false},
		{p.Finding{Enforcement: p.Mandatory, Unverified: true}, false},
	}
	var rep p.Report
	var want []p.Finding
	for _, c := range cases {
		assert.Equal(t, c.want, c.f.Blocking(), "%+v", c.f)
		rep.Results = append(rep.Results, c.f)
		if c.want {
			want = append(want, c.f)
		}
	}
	assert.Equal(t, want, rep.Blocking())
	assert.False(t, rep.Passed())
}

// TestAttribute_EngineFindingsNameTheirPack: the engine reports every
// finding of Slipway's analyzer under one pack, EnginePack; Attribute
// restores the pack the policy belongs to (among those this binary serves),
// with its severity and controls, and leaves other findings alone.
func TestAttribute_EngineFindingsNameTheirPack(t *testing.T) {
	p.ServeIfAnalyzer(kubernetes.Pack(), aws.Pack())
	f := p.Attribute(p.Finding{Pack: p.EnginePack, Policy: "ebs-encrypted", URN: "urn:x", Enforcement: p.Mandatory})
	pol, ok := aws.Pack().Policy("ebs-encrypted")
	require.True(t, ok)
	assert.Equal(t, aws.Pack().Name, f.Pack)
	assert.Equal(t, pol.Severity, f.Severity)
	assert.Equal(t, pol.Controls, f.Controls)

	other := p.Finding{Pack: "someone-else", Policy: "ebs-encrypted"}
	assert.Equal(t, other, p.Attribute(other), "another analyzer's finding keeps its pack")
	unknown := p.Finding{Pack: p.EnginePack, Policy: "not-served"}
	assert.Equal(t, unknown, p.Attribute(unknown), "a policy this binary does not serve keeps the engine's pack")
}
