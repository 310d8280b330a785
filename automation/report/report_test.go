package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/aws"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Secret values placed in the fixtures; no format may print them.
const (
	declaredSecret = "s3cr3t-token-value"    // an Entry.Secrets value
	liveSecret     = "hunter2-live-password" // live value of a property the engine recorded as secret
	cipher         = "v1:QUJDREVGR0hJSktM:c2VjcmV0LWNpcGhlcnRleHQ="
)

func init() {
	now = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }
}

const stackURN = "urn:pulumi:prod::slipway::pulumi:pulumi:Stack::slipway-prod"

func urn(env, typ, name string) string {
	return fmt.Sprintf("urn:pulumi:%s::slipway::slipway:web:App$%s::%s", env, typ, name)
}

// fixture is a realistic multi-environment run: a policy-blocked preview
// of prod with every kind of change, a drift check of staging with a secret
// property, an up of qa that failed with secrets in its error, and an
// in-process policy check of dev.
func fixture() []Entry {
	deploy := urn("prod", "kubernetes:apps/v1:Deployment", "web")
	latest := policypacks.Finding{Pack: "slipway-kubernetes", Policy: "no-latest-tag", URN: deploy, Severity: policypacks.High,
		Enforcement: policypacks.Mandatory, Message: "Container images must be pinned to a version.\nimage \"web:latest\" uses the latest tag; pin a version"}
	limits := policypacks.Finding{Pack: "slipway-kubernetes", Policy: "resource-limits", URN: deploy, Severity: policypacks.Medium,
		Enforcement: policypacks.Advisory, Message: "Containers should set CPU and memory limits.\ncontainer \"web\" has no memory limit"}
	prod := &outcome.Result{Operation: "preview", Project: "slipway", Stack: "prod", Duration: 2340 * time.Millisecond,
		Summary: map[string]int{"same": 2, "create": 1, "update": 1, "replace": 1, "delete": 1},
		Resources: []outcome.ResourceChange{
			{URN: stackURN, Type: "pulumi:pulumi:Stack", Op: "same"},
			{URN: urn("prod", "kubernetes:core/v1:Namespace", "web"), Type: "kubernetes:core/v1:Namespace", Op: "same"},
			{URN: urn("prod", "kubernetes:core/v1:ConfigMap", "web-config"), Type: "kubernetes:core/v1:ConfigMap", Op: "create"},
			{URN: deploy, Type: "kubernetes:apps/v1:Deployment", Op: "update", Diffs: []string{"spec"}},
			{URN: urn("prod", "kubernetes:core/v1:Service", "web"), Type: "kubernetes:core/v1:Service", Op: "create-replacement", Diffs: []string{"spec"}},
			{URN: urn("prod", "kubernetes:core/v1:Service", "web"), Type: "kubernetes:core/v1:Service", Op: "replace", Diffs: []string{"spec"}},
			{URN: urn("prod", "kubernetes:networking.k8s.io/v1:Ingress", "legacy"), Type: "kubernetes:networking.k8s.io/v1:Ingress", Op: "delete"},
			{URN: urn("prod", "kubernetes:core/v1:Service", "web"), Type: "kubernetes:core/v1:Service", Op: "delete-replaced"},
		},
		Policy: []policypacks.Finding{limits, latest},
	}
	sdeploy := urn("staging", "kubernetes:apps/v1:Deployment", "web")
	drift := &outcome.Drift{Stack: "staging", Checked: time.Date(2026, 3, 4, 1, 2, 3, 0, time.UTC), Duration: 3100 * time.Millisecond,
		Summary: map[string]int{"same": 3, "update": 2},
		Resources: []outcome.ResourceChange{
			{URN: sdeploy, Type: "kubernetes:apps/v1:Deployment", Op: "update", Diffs: []string{"spec"}, Properties: []outcome.PropertyChange{
				{Path: "spec.replicas", Expected: float64(2), Actual: float64(5)},
				{Path: "spec.template.spec.containers[0].env[0].value", Expected: "[secret]", Actual: liveSecret},
			}},
			{URN: urn("staging", "kubernetes:core/v1:Secret", "web-db"), Type: "kubernetes:core/v1:Secret", Op: "update", Diffs: []string{"data"}, Properties: []outcome.PropertyChange{
				{Path: "data.password", Expected: "b2xk", Actual: liveSecret},
				{Path: "metadata.annotations.token", Expected: map[string]any{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": cipher}, Actual: "token " + declaredSecret},
			}},
		},
	}
	qa := &outcome.Result{Operation: "up", Project: "slipway", Stack: "qa", Duration: 41 * time.Second,
		Resources: []outcome.ResourceChange{
			{URN: urn("qa", "kubernetes:core/v1:ConfigMap", "web-config"), Type: "kubernetes:core/v1:ConfigMap", Op: "create"},
		}}
	devFindings := []policypacks.Finding{
		{Pack: "slipway-kubernetes", Policy: "resource-limits", URN: urn("dev", "kubernetes:apps/v1:Deployment", "web"), Severity: policypacks.Medium,
			Enforcement: policypacks.Advisory, Message: "container \"web\" has no memory limit",
			Controls: []policypacks.Control{{Framework: "CIS Kubernetes", ID: "5.7.4"}}},
		{Pack: "slipway-kubernetes", Policy: "replicas", URN: urn("dev", "kubernetes:apps/v1:Deployment", "web"), Severity: policypacks.Low,
			Enforcement: policypacks.Advisory, Unverified: true, Message: "replicas are unknown until the config resolves"},
	}
	t0 := time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC)
	low, high := 0.012, 0.41
	canary := &rollout.State{Name: "slipway/canary", Version: "web:1.28", Phase: rollout.Aborted, Step: 3,
		Plan:  []string{"weight 10", "analysis error-rate", "weight 50", "analysis error-rate", "weight 100"},
		Cause: "step 3: analysis error-rate failed: query rejected token " + declaredSecret,
		Checks: []rollout.Check{
			{Step: 1, Gate: "error-rate", Verdict: rollout.Successful, At: t0.Add(time.Minute), Detail: analysis.Result{Metric: "error-rate", Provider: "prometheus http://prometheus:9090",
				Condition: "result < 0.05", Phase: analysis.PhaseSuccessful, Message: "2 of 2 measurements met result < 0.05", Successful: 2,
				Measurements: []analysis.Measurement{{Time: t0, Value: &low, Phase: analysis.PhaseSuccessful}, {Time: t0.Add(30 * time.Second), Value: &low, Phase: analysis.PhaseSuccessful}}}},
			{Step: 3, Gate: "error-rate", Verdict: rollout.Failed, At: t0.Add(3 * time.Minute), Detail: analysis.Result{Metric: "error-rate", Provider: "prometheus http://prometheus:9090",
				Condition: "result < 0.05", Phase: analysis.PhaseFailed, Message: "1 measurement failed; the limit is 0", Failed: 1, Errors: 1,
				Measurements: []analysis.Measurement{
					{Time: t0.Add(2 * time.Minute), Phase: analysis.PhaseError, Error: "401: token " + declaredSecret + " state " + cipher},
					{Time: t0.Add(2*time.Minute + 30*time.Second), Value: &high, Phase: analysis.PhaseFailed}}}},
		}}
	return []Entry{
		{Environment: "prod", Operation: Preview, Result: prod, Err: &automation.PolicyBlockedError{Op: "preview", Violations: []policypacks.Finding{latest}}},
		{Environment: "staging", Operation: DriftCheck, Drift: drift, Secrets: []string{declaredSecret}},
		{Environment: "qa", Operation: Up, Result: qa, Secrets: []string{declaredSecret},
			Err: errors.New("automation: up of qa: configmaps \"web-config\" is forbidden: token " + declaredSecret + " rejected\n  state: {\"ciphertext\": \"" + cipher + "\"}")},
		{Environment: "dev", Operation: PolicyCheck, Findings: devFindings, Policies: []policypacks.PolicyRun{
			{Pack: "slipway-kubernetes", Policy: "no-latest-tag", Description: "Container images must be pinned to a version.", Severity: policypacks.High,
				Enforcement: policypacks.Advisory, Controls: []policypacks.Control{{Framework: "CIS Kubernetes", ID: "5.5.1"}}},
			{Pack: "slipway-kubernetes", Policy: "resource-limits", Description: "Containers should set CPU and memory limits.", Severity: policypacks.Medium,
				Enforcement: policypacks.Advisory, Violations: 1, Controls: []policypacks.Control{{Framework: "CIS Kubernetes", ID: "5.7.4"}}},
			{Pack: "slipway-kubernetes", Policy: "replicas", Description: "Deployments run at least two replicas.", Severity: policypacks.Low,
				Enforcement: policypacks.Advisory, Unverified: 1},
		}},
		{Environment: "canary", Operation: Rollout, Rollout: canary, Secrets: []string{declaredSecret}},
	}
}

// hostile has untrusted strings everywhere: pipes, newlines, workflow
// commands, HTML, Markdown, percent signs and control characters.
func hostile() []Entry {
	msg := "bad | value\n::error::injected\r\n<script>alert(1)</script></details> *bold* [x](http://evil) 100% `tick` ]]> \x1b[31mred\x00"
	u := "urn:pulumi:dev|x::slipway::kubernetes:core/v1:ConfigMap::a|b`c\n::warning::x,y:z"
	return []Entry{{
		Environment: "dev|x\n::error::e,v:1",
		Operation:   Preview,
		Result: &outcome.Result{Operation: "preview", Stack: "dev",
			Resources: []outcome.ResourceChange{{URN: u, Type: "kubernetes:core/v1:ConfigMap", Op: "update", Diffs: []string{"data|x\nd"}}},
			Policy: []policypacks.Finding{
				{Pack: "p,a:ck", Policy: "po|l\nicy", URN: u, Enforcement: policypacks.Mandatory, Message: msg},
				{Pack: "pack", Policy: "adv", URN: u, Enforcement: policypacks.Advisory, Message: msg},
			}},
		Drift: &outcome.Drift{Stack: "dev", Resources: []outcome.ResourceChange{{URN: u, Type: "kubernetes:core/v1:ConfigMap", Op: "update",
			Properties: []outcome.PropertyChange{{Path: "data.k|\n::x", Expected: msg, Actual: "`x` | y"}}}}},
		Err: errors.New(msg + "\n```\n# heading"),
	}}
}

func render(t *testing.T, f Format, entries []Entry) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, Write(&b, f, entries))
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./automation/report -update")
	assert.Equal(t, string(want), got, "%s differs; if the change is intended, run go test ./automation/report -update", path)
}

func TestMarkdownGolden(t *testing.T) {
	golden(t, "fixture.md.golden", render(t, Markdown, fixture()))
}

func TestGitHubGolden(t *testing.T) {
	golden(t, "fixture.github.golden", render(t, GitHub, fixture()))
}

func TestTextGolden(t *testing.T) {
	golden(t, "fixture.txt.golden", render(t, Text, fixture()))
}

func TestMarkdownContent(t *testing.T) {
	md := render(t, Markdown, fixture())
	assert.Contains(t, md, "- ❌ **prod** preview: +1 \\~1 -1 ±1, policy findings: 1 blocking, 1 advisory, blocked by policy\n")
	assert.Contains(t, md, "- ❌ **staging** drift check: drift in 2 resources\n")
	assert.Contains(t, md, "| ± replace | `Service::web` | `kubernetes:core/v1:Service` | spec |")
	assert.NotContains(t, md, "Stack::slipway-prod", "the stack resource is not a change")
	// Blocking findings come first.
	assert.Less(t, strings.Index(md, "no-latest-tag"), strings.Index(md, "| ⚠️ | advisory | slipway-kubernetes | resource-limits"))
	assert.Contains(t, md, "| `Deployment::web` | `spec.replicas` | `2` | `5` |")
	assert.NotContains(t, md, "preview blocked by 1 mandatory", "a policy block is shown by its findings, not repeated as an error")
	assert.Contains(t, md, "**Policies:** 1 of 3 passed; controls passed: CIS Kubernetes 1/2 (failed 5.7.4)")
}

func TestMarkdownCapsRows(t *testing.T) {
	res := &outcome.Result{Operation: "preview", Stack: "dev"}
	for i := range 120 {
		res.Resources = append(res.Resources, outcome.ResourceChange{URN: urn("dev", "kubernetes:core/v1:ConfigMap", fmt.Sprint("cm", i)), Type: "kubernetes:core/v1:ConfigMap", Op: "create"})
	}
	md := render(t, Markdown, []Entry{{Environment: "dev", Operation: Preview, Result: res}})
	assert.Contains(t, md, "| … and 70 more | | | |")
	assert.Contains(t, md, "ConfigMap::cm49`")
	assert.NotContains(t, md, "ConfigMap::cm50`")
	assert.Contains(t, md, "<details><summary>120 changed resources: +120</summary>")
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		got, err := ParseFormat(" " + strings.ToUpper(string(f)) + " ")
		require.NoError(t, err)
		assert.Equal(t, f, got)
	}
	for _, bad := range []string{"xml", "", "md"} {
		_, err := ParseFormat(bad)
		var fe *FormatError
		require.ErrorAs(t, err, &fe, bad)
		assert.Equal(t, bad, fe.Value)
		assert.Contains(t, err.Error(), fmt.Sprintf("--format %q", bad))
		assert.Contains(t, err.Error(), "text, json, markdown, junit, sarif, github")
	}
}

func TestJSONGolden(t *testing.T) {
	golden(t, "fixture.json.golden", render(t, JSON, fixture()))
}

// TestJSONContent: Write renders the json format as one JSON document with
// an entry per environment, sanitised like the other formats.
func TestJSONContent(t *testing.T) {
	var doc struct {
		Entries []struct {
			Environment, Operation, Outcome, Error string
			Failed                                 bool
			Counts                                 *struct{ Create, Update, Delete, Replace int }
			Changes                                []struct{ Op, URN, Type string }
			Findings                               []struct{ Policy, Level string }
			Drift                                  *struct {
				Found     bool
				Resources []struct {
					URN        string
					Properties []struct{ Path, Expected, Actual string }
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(render(t, JSON, fixture())), &doc))
	require.Len(t, doc.Entries, len(fixture()))
	prod := doc.Entries[0]
	assert.Equal(t, "prod", prod.Environment)
	assert.Equal(t, "preview", prod.Operation)
	assert.True(t, prod.Failed)
	assert.Contains(t, prod.Outcome, "blocked by policy")
	require.NotNil(t, prod.Counts)
	assert.Equal(t, 1, prod.Counts.Replace)
	assert.NotEmpty(t, prod.Changes)
	assert.Equal(t, "blocking", prod.Findings[0].Level)
	staging := doc.Entries[1]
	require.NotNil(t, staging.Drift)
	assert.True(t, staging.Drift.Found)
	var props []string
	for _, r := range staging.Drift.Resources {
		for _, p := range r.Properties {
			props = append(props, p.Path+"="+p.Expected+"/"+p.Actual)
		}
	}
	assert.Contains(t, props, "data.password=[secret]/[secret]")
	assert.Contains(t, doc.Entries[2].Error, "token [secret] rejected")
}

func TestWriteRefusesUnknown(t *testing.T) {
	var b bytes.Buffer
	var fe *FormatError
	assert.ErrorAs(t, Write(&b, Format("yaml"), fixture()), &fe)
	assert.Empty(t, b.String())
}

// TestJUnitSchema validates against the Ant/Jenkins JUnit schema with
// xmllint (Debian package libxml2-utils).
func TestJUnitSchema(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	require.NoError(t, err, "xmllint is required to validate JUnit output against testdata/JUnit.xsd: run the tests with .ci/test (it installs Debian package libxml2-utils), or apt-get install -y libxml2-utils")
	for name, entries := range map[string][]Entry{"fixture": fixture(), "hostile": hostile(), "empty": nil} {
		t.Run(name, func(t *testing.T) {
			out := render(t, JUnit, entries)
			file := filepath.Join(t.TempDir(), "junit.xml")
			require.NoError(t, os.WriteFile(file, []byte(out), 0o644))
			cmd := exec.Command(xmllint, "--noout", "--schema", filepath.Join("testdata", "JUnit.xsd"), file)
			msg, err := cmd.CombinedOutput()
			require.NoError(t, err, "JUnit output does not validate:\n%s\n%s", msg, out)
		})
	}
}

// junitDoc decodes what writeJUnit writes, for assertions.
type junitDoc struct {
	Suites []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnitContent(t *testing.T) {
	var doc junitDoc
	require.NoError(t, xml.Unmarshal([]byte(render(t, JUnit, fixture())), &doc))
	require.Len(t, doc.Suites, 5)
	prod, staging, qa, dev := doc.Suites[0], doc.Suites[1], doc.Suites[2], doc.Suites[3]
	canary := doc.Suites[4]
	assert.Equal(t, "rollout canary", canary.Name)
	require.Len(t, canary.Cases, 3, "the rollout and its two analyses")
	assert.Equal(t, 2, canary.Failures, "the aborted rollout and the failed analysis")
	require.NotNil(t, canary.Cases[0].Failure)
	assert.Equal(t, "rollout aborted: step 3: analysis error-rate failed: query rejected token [secret]", canary.Cases[0].Failure.Message)
	assert.Nil(t, canary.Cases[1].Failure, "the first analysis passed")
	require.NotNil(t, canary.Cases[2].Failure)
	assert.Contains(t, canary.Cases[2].Failure.Text, "0.41 Failed")

	assert.Equal(t, "preview prod", prod.Name)
	assert.Equal(t, 3, prod.Tests)
	assert.Equal(t, 2, prod.Failures, "the operation and the blocking finding")
	assert.Equal(t, 1, prod.Skipped, "the advisory finding")
	assert.Equal(t, "policy", prod.Cases[0].Failure.Type)
	assert.Equal(t, "slipway-kubernetes/no-latest-tag Deployment::web", prod.Cases[1].Name)
	assert.Equal(t, "mandatory", prod.Cases[1].Failure.Type)
	assert.Contains(t, prod.Cases[2].Skipped.Message, "advisory: container \"web\" has no memory limit")

	assert.Equal(t, 3, staging.Tests)
	assert.Equal(t, 2, staging.Failures)
	assert.Equal(t, "Deployment::web drifted: spec.replicas, spec.template.spec.containers[0].env[0].value", staging.Cases[1].Failure.Message)
	assert.Contains(t, staging.Cases[1].Failure.Text, "spec.replicas: expected 2, actual 5")

	assert.Equal(t, "up", qa.Cases[0].Name)
	require.NotNil(t, qa.Cases[0].Failure)

	assert.Equal(t, 4, dev.Tests, "operation, two findings, one passing policy")
	assert.Equal(t, 0, dev.Failures)
	assert.Equal(t, "slipway-kubernetes/no-latest-tag", dev.Cases[3].Name)
	assert.Nil(t, dev.Cases[3].Failure)
	assert.Nil(t, dev.Cases[3].Skipped)

	var clean junitDoc
	require.NoError(t, xml.Unmarshal([]byte(render(t, JUnit, []Entry{{Environment: "prod", Operation: DriftCheck, Drift: &outcome.Drift{Stack: "prod"}}})), &clean))
	assert.Equal(t, "no drift", clean.Suites[0].Cases[1].Name)
	assert.Zero(t, clean.Suites[0].Failures)
}

var sarifSchema = func() *jsonschema.Schema {
	f, err := os.Open(filepath.Join("testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		panic(err)
	}
	return c.MustCompile("sarif-schema-2.1.0.json")
}()

func TestSARIFSchema(t *testing.T) {
	for name, entries := range map[string][]Entry{"fixture": fixture(), "hostile": hostile(), "empty": nil} {
		t.Run(name, func(t *testing.T) {
			out := render(t, SARIF, entries)
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
			require.NoError(t, err)
			require.NoError(t, sarifSchema.Validate(inst), "SARIF output does not match the 2.1.0 schema:\n%s", out)
		})
	}
	// The schema does reject a broken document (the validator is live).
	bad, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[{"level":"fatal","message":{}}]}]}`))
	require.NoError(t, err)
	assert.Error(t, sarifSchema.Validate(bad))
}

func TestSARIFContent(t *testing.T) {
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID                   string
						ShortDescription     struct{ Text string }
						DefaultConfiguration struct{ Level string }
					}
				}
			}
			AutomationDetails struct{ ID string }
			Invocations       []struct {
				ExecutionSuccessful bool
			}
			Results []struct {
				RuleID    string
				RuleIndex int
				Level     string
				Message   struct{ Text string }
				Locations []struct {
					LogicalLocations []struct{ FullyQualifiedName, Name, Kind string }
				}
				Properties map[string]any
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(render(t, SARIF, fixture())), &doc))
	require.Len(t, doc.Runs, 5)
	prod := doc.Runs[0]
	assert.Equal(t, "slipway/preview/prod/", prod.AutomationDetails.ID)
	assert.False(t, prod.Invocations[0].ExecutionSuccessful)
	require.Len(t, prod.Results, 2)
	r := prod.Results[0]
	assert.Equal(t, "slipway-kubernetes/no-latest-tag", r.RuleID)
	assert.Equal(t, "error", r.Level)
	assert.Equal(t, r.RuleID, prod.Tool.Driver.Rules[r.RuleIndex].ID)
	assert.Equal(t, "error", prod.Tool.Driver.Rules[r.RuleIndex].DefaultConfiguration.Level, "high severity")
	assert.Equal(t, urn("prod", "kubernetes:apps/v1:Deployment", "web"), r.Locations[0].LogicalLocations[0].FullyQualifiedName)
	assert.Equal(t, "Deployment::web", r.Locations[0].LogicalLocations[0].Name)
	assert.Equal(t, map[string]any{"environment": "prod", "operation": "preview", "enforcement": "mandatory", "pack": "slipway-kubernetes", "severity": "high",
		"resourceType": "kubernetes:apps/v1:Deployment"}, r.Properties)
	assert.Equal(t, "warning", prod.Results[1].Level)

	staging := doc.Runs[1]
	require.Len(t, staging.Results, 2)
	assert.Equal(t, driftRule, staging.Results[0].RuleID)
	assert.Equal(t, "error", staging.Results[0].Level)

	dev := doc.Runs[3]
	assert.Len(t, dev.Tool.Driver.Rules, 3, "every policy that ran is a rule")
	assert.Equal(t, "Container images must be pinned to a version.", dev.Tool.Driver.Rules[0].ShortDescription.Text)
	assert.Equal(t, "note", dev.Results[1].Level, "unverified")
}

var workflowCommand = regexp.MustCompile(`^::(error|warning|notice) title=[^:,\r\n]*::[^\r\n]*$`)

func TestGitHubOnlyCommands(t *testing.T) {
	for name, entries := range map[string][]Entry{"fixture": fixture(), "hostile": hostile()} {
		out := render(t, GitHub, entries)
		require.True(t, strings.HasSuffix(out, "\n"), name)
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			assert.Regexp(t, workflowCommand, line, "%s: every line is one workflow command", name)
		}
	}
	out := render(t, GitHub, hostile())
	assert.Contains(t, out, "::error title=dev|x%0A%3A%3Aerror%3A%3Ae%2Cv%3A1%3A policy p%2Ca%3Ack/po|l%0Aicy::")
	assert.Contains(t, out, "bad | value%0A::error::injected%0D%0A<script>")
	assert.Contains(t, out, "100%25")
	assert.Empty(t, render(t, GitHub, []Entry{{Environment: "dev", Operation: Preview, Result: &outcome.Result{Operation: "preview"}}}),
		"a clean preview annotates nothing")
}

func TestHostileEscaping(t *testing.T) {
	md := render(t, Markdown, hostile())
	assert.NotContains(t, md, "\x1b")
	assert.NotContains(t, md, "\x00")
	// Outside the error's code block (where text is literal) no HTML or
	// Markdown of the input survives.
	prose, block, ok := strings.Cut(md, "**Error**")
	require.True(t, ok)
	// Code spans are literal; everything else must be escaped.
	outside := regexp.MustCompile("`[^`\n]*`").ReplaceAllString(strings.ReplaceAll(prose, "\\`", ""), "")
	assert.NotContains(t, outside, "<script>")
	assert.NotContains(t, outside, "</details> *")
	assert.NotContains(t, outside, "[x](")
	assert.Contains(t, prose, "| &lt;script&gt;alert(1)&lt;/script&gt;&lt;/details&gt; \\*bold\\* \\[x\\](http://evil) 100% \\`tick\\` \\]\\]&gt; �\\[31mred� |")
	assert.Contains(t, prose, "- ❌ **dev\\|x ::error::e,v:1** preview: ")
	assert.Contains(t, prose, "| `\"bad \\| value\\n::error::injected\\r\\n<script>")
	assert.Equal(t, 2, strings.Count(block, "````"), "the error's fence is longer than its backtick runs")
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "|") {
			// Every table row has the header's number of cells: no raw pipe or newline split it.
			cells := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(line, -1)) - 1
			assert.Contains(t, []int{4, 6}, cells, "row %q", line)
		}
	}
	assert.Contains(t, md, "| `ConfigMap::a\\|b'c ::warning::x,y:z` |")

	txt := render(t, Text, hostile())
	for _, line := range strings.Split(strings.TrimSuffix(txt, "\n"), "\n") {
		assert.False(t, strings.HasPrefix(line, "::"), "text line %q starts a workflow command", line)
	}
	assert.NotContains(t, txt, "\x1b")

	var doc junitDoc
	out := render(t, JUnit, hostile())
	require.NoError(t, xml.Unmarshal([]byte(out), &doc), "hostile text (including \"]]>\") keeps the XML well-formed")
	assert.Contains(t, doc.Suites[0].Cases[0].Failure.Text, "bad | value\n::error::injected\n<script>alert(1)</script></details> *bold* [x](http://evil) 100% `tick` ]]> \ufffd[31mred\ufffd")

	var sarif map[string]any
	require.NoError(t, json.Unmarshal([]byte(render(t, SARIF, hostile())), &sarif))
}

// TestNoSecretsInAnyFormat places secrets in drift properties (marked by the
// engine, in a Kubernetes Secret's data, as ciphertext, as a declared secret
// value) and in an error, and checks no format prints them.
func TestNoSecretsInAnyFormat(t *testing.T) {
	for _, f := range Formats() {
		out := render(t, f, fixture())
		for _, secret := range []string{declaredSecret, liveSecret, cipher, "c2VjcmV0LWNpcGhlcnRleHQ", "b2xk"} {
			assert.NotContains(t, out, secret, "format %s leaks %q", f, secret)
		}
		assert.Contains(t, out, mask.Text, "format %s shows where a secret was", f)
	}
	md := render(t, Markdown, fixture())
	assert.Contains(t, md, "| `Secret::web-db` | `data.password` | `[secret]` | `[secret]` |")
	assert.Contains(t, md, "| `Deployment::web` | `spec.template.spec.containers[0].env[0].value` | `[secret]` | `[secret]` |")
	assert.Contains(t, md, "| `Secret::web-db` | `metadata.annotations.token` | `[secret]` | `[secret]` |")
	assert.Contains(t, md, "is forbidden: token [secret] rejected")
}

// TestPolicyReportFromEvaluate renders an in-process evaluation (what
// `policy check` produces) as SARIF and Markdown: one rule per policy of the
// pack, mandatory = error, unverified = note, compliance summarised.
func TestPolicyReportFromEvaluate(t *testing.T) {
	vol := func(name string, encrypted any) policypacks.Resource {
		return policypacks.Resource{URN: "urn:pulumi:prod::app::aws:ebs/volume:Volume::" + name, Type: aws.EBSVolume, Name: name,
			Props: policypacks.Props{"encrypted": encrypted, "kmsKeyId": "k", "tags": map[string]any{"Name": name}}}
	}
	rep := policypacks.Evaluate([]policypacks.Resource{vol("good", true), vol("bad", false), vol("later", policypacks.Unknown)},
		policypacks.Settings{Kind: "prod"}, aws.Pack())
	entries := []Entry{{Environment: "prod", Operation: PolicyCheck, Findings: rep.Results, Policies: rep.Policies}}

	out := render(t, SARIF, entries)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	require.NoError(t, err)
	require.NoError(t, sarifSchema.Validate(inst))
	var s struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Len(t, s.Runs, 1)
	var ids []string
	for _, r := range s.Runs[0].Tool.Driver.Rules {
		ids = append(ids, r.ID)
	}
	for _, pol := range aws.Pack().Policies {
		assert.Contains(t, ids, aws.Pack().Name+"/"+pol.Name, "every policy that ran is a rule")
	}
	levels := map[string]string{}
	for _, r := range s.Runs[0].Results {
		levels[r.Level] = r.RuleID
	}
	assert.Equal(t, map[string]string{"error": "slipway-aws/ebs-encrypted", "note": "slipway-aws/ebs-encrypted"}, levels,
		"mandatory = error, unverified = note")

	md := render(t, Markdown, entries)
	assert.Contains(t, md, "ebs-encrypted")
	assert.Contains(t, md, "CIS AWS Foundations v3.0")
}

// TestRollout_EveryMeasurementInMarkdownAndJSON: a rollout's entry shows
// each step with its status and every measurement of its analyses (value,
// verdict, time, masked error) in Markdown and JSON, and fails CI when the
// rollout aborted.
func TestRollout_EveryMeasurementInMarkdownAndJSON(t *testing.T) {
	entries := fixture()[4:]
	md := render(t, Markdown, entries)
	assert.Contains(t, md, "| 3 | analysis error-rate | ❌ failed |")
	assert.Contains(t, md, "| 4 | weight 100 | · pending |")
	assert.Contains(t, md, "| 1 | error-rate | 2026-03-04T02:00:30Z | `0.012` | ✅ Successful |  |")
	assert.Contains(t, md, "| 3 | error-rate | 2026-03-04T02:02:00Z | `—` | ❌ Error | 401: token \\[secret\\] state \\[secret\\] |")
	assert.Contains(t, md, "| 3 | error-rate | 2026-03-04T02:02:30Z | `0.41` | ❌ Failed |  |")

	var doc struct {
		Entries []struct {
			Failed  bool
			Rollout struct {
				Phase string
				Steps []struct{ Plan, Status string }
			}
			Checks []struct {
				Step         int
				Verdict      string
				Measurements []struct {
					Time    time.Time
					Value   *float64
					Verdict string
					Error   string
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(render(t, JSON, entries)), &doc))
	require.Len(t, doc.Entries, 1)
	e := doc.Entries[0]
	assert.True(t, e.Failed, "an aborted rollout fails CI")
	assert.Equal(t, "Aborted", e.Rollout.Phase)
	require.Len(t, e.Rollout.Steps, 5)
	assert.Equal(t, "failed", e.Rollout.Steps[3].Status)
	require.Len(t, e.Checks, 2)
	require.Len(t, e.Checks[1].Measurements, 2)
	m := e.Checks[1].Measurements
	assert.Nil(t, m[0].Value)
	assert.Equal(t, "401: token [secret] state [secret]", m[0].Error)
	require.NotNil(t, m[1].Value)
	assert.Equal(t, 0.41, *m[1].Value)
	assert.Equal(t, "Failed", m[1].Verdict)
	assert.Equal(t, time.Date(2026, 3, 4, 2, 2, 30, 0, time.UTC), m[1].Time)
}
