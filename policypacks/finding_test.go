package policypacks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	p "github.com/slipwayhq/slipway/policypacks"
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
