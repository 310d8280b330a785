package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/slipwayhq/slipway/policypacks"
)

// SARIF 2.1.0 document: one run per environment (automationDetails.id
// "slipway/<operation>/<environment>/", so code scanning keeps each
// environment's alerts apart), one rule per pack/policy (default level from
// the severity), one result per finding (error when blocking, warning when
// advisory, note when unverified) located by a logical location naming the
// resource's URN, and a result of rule "slipway/drift" per drifted resource.
// An operation error is a tool execution notification of the run's
// invocation.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool              sarifTool         `json:"tool"`
	AutomationDetails sarifAutomation   `json:"automationDetails"`
	Invocations       []sarifInvocation `json:"invocations"`
	Results           []sarifResult     `json:"results"`
	Properties        map[string]any    `json:"properties,omitempty"`
	// rules indexes Tool.Driver.Rules by id.
	rules map[string]int
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifMessage   `json:"shortDescription"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties,omitempty"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifAutomation struct {
	ID string `json:"id"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string       `json:"level"`
	Message sarifMessage `json:"message"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifMessage    `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties map[string]any  `json:"properties,omitempty"`
}

type sarifLocation struct {
	LogicalLocations []sarifLogicalLoc `json:"logicalLocations"`
}

type sarifLogicalLoc struct {
	Name               string `json:"name,omitempty"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// driftRule is the rule id of drift results.
const driftRule = "slipway/drift"

func writeSARIF(w io.Writer, views []view) error {
	doc := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{}}
	for _, v := range views {
		doc.Runs = append(doc.Runs, sarifRunOf(v))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

func sarifRunOf(v view) sarifRun {
	run := sarifRun{
		Tool:              sarifTool{Driver: sarifDriver{Name: "slipway", InformationURI: "https://github.com/slipwayhq/slipway", Rules: []sarifRule{}}},
		AutomationDetails: sarifAutomation{ID: fmt.Sprintf("slipway/%s/%s/", v.op, strings.ReplaceAll(v.env, "/", "_"))},
		Invocations:       []sarifInvocation{{ExecutionSuccessful: v.err == ""}},
		Results:           []sarifResult{},
		Properties:        map[string]any{"environment": v.env, "operation": v.op},
		rules:             map[string]int{},
	}
	if v.err != "" {
		run.Invocations[0].ToolExecutionNotifications = []sarifNotification{{Level: "error", Message: sarifMessage{v.err}}}
	}
	rule := func(r sarifRule) int {
		if i, ok := run.rules[r.ID]; ok {
			return i
		}
		run.rules[r.ID] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, r)
		return run.rules[r.ID]
	}
	for _, p := range v.policies {
		rule(policyRule(p.Pack, p.Policy, p.Description, string(p.Severity), string(p.Enforcement), controlsOf(p.Controls)))
	}
	for _, f := range v.findings {
		i := rule(policyRule(f.pack, f.policy, f.policy, f.severity, f.enforcement, f.controls))
		level := "warning"
		switch {
		case f.blocking:
			level = "error"
		case f.unverified:
			level = "note"
		}
		props := map[string]any{"environment": v.env, "operation": v.op, "enforcement": f.enforcement, "pack": f.pack}
		if f.severity != "" {
			props["severity"] = f.severity
		}
		if f.unverified {
			props["unverified"] = true
		}
		if f.typ != "" {
			props["resourceType"] = f.typ
		}
		run.Results = append(run.Results, sarifResult{RuleID: f.rule(), RuleIndex: i, Level: level,
			Message: sarifMessage{nonEmpty(f.message, f.rule())}, Locations: resourceLoc(f.urn), Properties: props})
	}
	if d := v.drift; d != nil && d.found {
		i := rule(sarifRule{ID: driftRule, Name: "drift", ShortDescription: sarifMessage{"A resource's live state differs from the state Slipway recorded."},
			DefaultConfiguration: sarifConfig{Level: "error"}})
		for _, r := range d.resources {
			var lines []string
			for _, p := range r.props {
				lines = append(lines, fmt.Sprintf("%s: expected %s, actual %s", p.path, p.expected, p.actual))
			}
			level := "error"
			if d.remediated != nil {
				level = "note"
			}
			run.Results = append(run.Results, sarifResult{RuleID: driftRule, RuleIndex: i, Level: level,
				Message:    sarifMessage{fmt.Sprintf("%s drifted: %s", shortURN(r.urn), strings.Join(lines, "; "))},
				Locations:  resourceLoc(r.urn),
				Properties: map[string]any{"environment": v.env, "operation": v.op, "remediated": d.remediated != nil}})
		}
	}
	return run
}

func policyRule(pack, policy, description, severity, enforcement string, controls []string) sarifRule {
	props := map[string]any{"pack": pack}
	if severity != "" {
		props["severity"] = severity
		if s, ok := securitySeverity[severity]; ok {
			props["security-severity"] = s
		}
	}
	if enforcement != "" {
		props["enforcement"] = enforcement
	}
	if len(controls) > 0 {
		props["tags"] = controls
	}
	return sarifRule{ID: pack + "/" + policy, Name: policy, ShortDescription: sarifMessage{nonEmpty(description, policy)},
		DefaultConfiguration: sarifConfig{Level: severityLevel(severity)}, Properties: props}
}

// severityLevel maps a policy's severity to a rule's default SARIF level.
func severityLevel(s string) string {
	switch s {
	case "critical", "high":
		return "error"
	case "low":
		return "note"
	}
	return "warning"
}

// securitySeverity is GitHub code scanning's 0-10 score per severity (the
// values policypacks.Report.WriteSARIF uses).
var securitySeverity = map[string]string{"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}

func resourceLoc(urn string) []sarifLocation {
	return []sarifLocation{{LogicalLocations: []sarifLogicalLoc{{Name: shortURN(urn), FullyQualifiedName: nonEmpty(urn, "(stack)"), Kind: "resource"}}}}
}

func controlsOf(cs []policypacks.Control) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func nonEmpty(s, alt string) string {
	if strings.TrimSpace(s) == "" {
		return alt
	}
	return s
}
