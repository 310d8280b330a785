package policypacks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/policypacks/aws"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
)

func volume(name string, encrypted any) p.Resource {
	return p.Resource{URN: "urn:pulumi:prod::app::aws:ebs/volume:Volume::" + name, Type: aws.EBSVolume, Name: name,
		Props: p.Props{"encrypted": encrypted, "kmsKeyId": "k", "tags": map[string]any{"Name": name}}}
}

func report(t *testing.T, env string) *p.Report {
	t.Helper()
	return p.Evaluate([]p.Resource{volume("good", true), volume("bad", false), volume("later", p.Unknown)}, p.Settings{Kind: env}, aws.Pack())
}

func TestEvaluate_EnforcementFollowsTheEnvironment(t *testing.T) {
	prod := report(t, "prod")
	require.Len(t, prod.Blocking(), 1)
	assert.Equal(t, "ebs-encrypted", prod.Blocking()[0].Policy)
	assert.False(t, prod.Passed())

	dev := report(t, "dev")
	assert.True(t, dev.Passed(), "dev is advisory")
	require.Len(t, dev.Violations(), 1)
	assert.Equal(t, p.Advisory, dev.Violations()[0].Enforcement)

	off := p.Evaluate([]p.Resource{volume("bad", false)}, p.Settings{Kind: "prod",
		Overrides: map[string]p.Override{"ebs-encrypted": {Enforcement: p.Disabled}}}, aws.Pack())
	assert.Empty(t, off.Results, "a disabled policy does not run")
}

func TestSettings_ValidateNamesTheField(t *testing.T) {
	err := p.Settings{Levels: map[string]p.Enforcement{"prod": "strict"},
		Overrides: map[string]p.Override{"no-such-policy": {}, "ebs-encrypted": {Enforcement: "loud"}}}.Validate(aws.Pack())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Settings.Levels["prod"] "strict" is not a level`)
	assert.Contains(t, err.Error(), `Settings.Overrides["no-such-policy"] names no policy`)
	assert.Contains(t, err.Error(), `Settings.Overrides["ebs-encrypted"].Enforcement "loud"`)
}

func TestReport_JSONAndCompliance(t *testing.T) {
	rep := report(t, "prod")
	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
	assert.Equal(t, false, doc["passed"])
	assert.NotEmpty(t, doc["compliance"])

	var hipaa *p.FrameworkSummary
	for _, fs := range rep.Compliance() {
		if fs.Framework == p.HIPAA {
			hipaa = &fs
		}
	}
	require.NotNil(t, hipaa)
	var encryption p.ControlStatus
	for _, c := range hipaa.Controls {
		if c.ID == "164.312(a)(2)(iv)" {
			encryption = c
		}
	}
	assert.Equal(t, "failed", encryption.Status, "the encryption control fails with the unencrypted volume")
	assert.Contains(t, encryption.Policies, "slipway-aws/ebs-encrypted")
	assert.Positive(t, hipaa.Passed)
}

func TestAll_PacksAreDistinctAndMapped(t *testing.T) {
	names := map[string]bool{}
	total := 0
	for _, pack := range all.Packs() {
		require.NoError(t, pack.Validate())
		for _, pol := range pack.Policies {
			assert.False(t, names[pol.Name], "%s is unique across packs (the engine analyzer needs it)", pol.Name)
			names[pol.Name] = true
			total++
		}
	}
	assert.GreaterOrEqual(t, total, 25+12+4)
	_, err := all.ByName("aws", "gcp")
	assert.EqualError(t, err, "policypacks: no pack named gcp; use aws, kubernetes or cost")
}

// graph generates n resources: a mix of compliant and violating workloads,
// volumes, buckets and security groups.
func graph(n int) []p.Resource {
	out := make([]p.Resource, 0, n)
	for i := 0; len(out) < n; i++ {
		name := fmt.Sprintf("r%d", i)
		out = append(out,
			volume(name, i%10 != 0),
			p.Resource{URN: "urn:d::" + name, Type: "kubernetes:apps/v1:Deployment", Name: name, Props: p.FromPlain(map[string]any{
				"metadata": map[string]any{"namespace": "team"},
				"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
					"name": "c", "image": "nginx:1.27",
					"securityContext": map[string]any{"allowPrivilegeEscalation": false, "runAsNonRoot": true, "readOnlyRootFilesystem": true,
						"privileged": i%7 == 0},
					"resources": map[string]any{"requests": map[string]any{"cpu": "1", "memory": "1Gi"}, "limits": map[string]any{"cpu": "1", "memory": "1Gi"}},
				}}}}}})},
			p.Resource{URN: "urn:sg::" + name, Type: aws.SecurityGroup, Name: name, Props: p.FromPlain(map[string]any{
				"tags": map[string]any{"Name": name}, "ingress": []any{map[string]any{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": []any{"0.0.0.0/0"}}}})},
		)
	}
	return out[:n]
}

// BenchmarkEvaluate reports in-process evaluation throughput (resources/s)
// of every pack over a generated graph; the goal is at least 50,000/s.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		rs := graph(n)
		packs := []*p.Pack{aws.Pack(), kubernetes.Pack()}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p.Evaluate(rs, p.Settings{Kind: "prod"}, packs...)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

// TestRemediation_OnlyAtTheRemediateLevel: a remediation is proposed where
// the level says so, and the violation blocks anyway (as in the engine,
// where nothing applies it); advisory proposes nothing and does not block.
func TestRemediation_OnlyAtTheRemediateLevel(t *testing.T) {
	pack := &p.Pack{Name: "fix", Policies: []*p.Policy{{
		Name: "encrypt-volumes", Description: "volumes are encrypted", Severity: p.High, Enforcement: p.Mandatory,
		Types: []string{aws.EBSVolume},
		Validate: func(r p.Resource, a *p.Args) {
			on, st := r.Props.Bool("encrypted")
			a.Check(r, st, on, "not encrypted")
		},
		Remediate: func(r p.Resource, _ p.Config) map[string]any { return map[string]any{"encrypted": true} },
	}}}
	require.NoError(t, pack.Validate())
	rs := []p.Resource{volume("bad", false)}

	mandatory := p.Evaluate(rs, p.Settings{Kind: "prod"}, pack)
	require.Len(t, mandatory.Results, 1)
	assert.Nil(t, mandatory.Results[0].Remediation)
	assert.False(t, mandatory.Passed())

	fixed := p.Evaluate(rs, p.Settings{Kind: "prod", Overrides: map[string]p.Override{"encrypt-volumes": {Enforcement: p.Remediate}}}, pack)
	require.Len(t, fixed.Results, 1)
	assert.Equal(t, map[string]any{"encrypted": true}, fixed.Results[0].Remediation)
	assert.False(t, fixed.Passed(), "a proposed remediation is not applied, so the violation blocks")
	require.Len(t, fixed.Blocking(), 1)
	assert.Equal(t, p.Remediate, fixed.Blocking()[0].Enforcement)

	advisory := p.Evaluate(rs, p.Settings{Kind: "dev"}, pack)
	require.Len(t, advisory.Results, 1)
	assert.Nil(t, advisory.Results[0].Remediation, "dev makes it advisory: no remediation")
	assert.True(t, advisory.Passed())
}
