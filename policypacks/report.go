package policypacks

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// ControlStatus is a control's outcome in a compliance summary.
type ControlStatus struct {
	Framework string `json:"framework"`
	ID        string `json:"id"`
	// Status is "passed", "failed" or "unverified".
	Status   string   `json:"status"`
	Policies []string `json:"policies"`
}

// FrameworkSummary lists a framework's controls and how many passed.
type FrameworkSummary struct {
	Framework  string          `json:"framework"`
	Passed     int             `json:"passed"`
	Failed     int             `json:"failed"`
	Unverified int             `json:"unverified"`
	Controls   []ControlStatus `json:"controls"`
}

// Compliance summarises the report per framework: a control fails when any
// policy mapped to it found a violation, is unverified when some check could
// not run, and passes otherwise.
func (r *Report) Compliance() []FrameworkSummary {
	type key struct{ fw, id string }
	status := map[key]*ControlStatus{}
	rank := map[string]int{"passed": 0, "unverified": 1, "failed": 2}
	for _, run := range r.Policies {
		st := "passed"
		switch {
		case run.Violations > 0:
			st = "failed"
		case run.Unverified > 0:
			st = "unverified"
		}
		for _, c := range run.Controls {
			k := key{c.Framework, c.ID}
			cs, ok := status[k]
			if !ok {
				cs = &ControlStatus{Framework: c.Framework, ID: c.ID, Status: "passed"}
				status[k] = cs
			}
			if rank[st] > rank[cs.Status] {
				cs.Status = st
			}
			cs.Policies = append(cs.Policies, run.Pack+"/"+run.Policy)
		}
	}
	byFW := map[string]*FrameworkSummary{}
	for _, cs := range status {
		fs, ok := byFW[cs.Framework]
		if !ok {
			fs = &FrameworkSummary{Framework: cs.Framework}
			byFW[cs.Framework] = fs
		}
		fs.Controls = append(fs.Controls, *cs)
		switch cs.Status {
		case "passed":
			fs.Passed++
		case "failed":
			fs.Failed++
		default:
			fs.Unverified++
		}
	}
	out := make([]FrameworkSummary, 0, len(byFW))
	for _, fs := range byFW {
		sort.Slice(fs.Controls, func(i, j int) bool { return naturalLess(fs.Controls[i].ID, fs.Controls[j].ID) })
		out = append(out, *fs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Framework < out[j].Framework })
	return out
}

func naturalLess(a, b string) bool {
	pa, pb := strings.FieldsFunc(a, isSep), strings.FieldsFunc(b, isSep)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		var na, nb int
		_, ea := fmt.Sscanf(pa[i], "%d", &na)
		_, eb := fmt.Sscanf(pb[i], "%d", &nb)
		if ea == nil && eb == nil && na != nb {
			return na < nb
		}
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

func isSep(r rune) bool { return r == '.' || r == '(' || r == ')' }

// WriteJSON writes the report and its compliance summary as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Passed     bool               `json:"passed"`
		Compliance []FrameworkSummary `json:"compliance"`
	}{r, r.Passed(), r.Compliance()})
}

// WriteMarkdown writes a summary for pull-request comments and audit files.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	verdict := "passed"
	if !r.Passed() {
		verdict = fmt.Sprintf("**blocked** by %d mandatory violation(s)", len(r.Blocking()))
	}
	fmt.Fprintf(&b, "## Policy report%s\n\n", envSuffix(r.Environment))
	fmt.Fprintf(&b, "Packs %s evaluated %d resources: %s.\n\n", strings.Join(r.Packs, ", "), r.Resources, verdict)
	if len(r.Results) > 0 {
		b.WriteString("| enforcement | severity | policy | resource | message |\n|---|---|---|---|---|\n")
		for _, res := range r.Results {
			level := string(res.Enforcement)
			if res.Unverified {
				level = "unverified"
			}
			fmt.Fprintf(&b, "| %s | %s | %s/%s | `%s` | %s |\n", level, res.Severity, res.Pack, res.Policy, shortURN(res.URN), escapeCell(res.Message))
		}
		b.WriteString("\n")
	}
	b.WriteString("### Compliance\n\n| framework | passed | failed | unverified | failed controls |\n|---|---|---|---|---|\n")
	for _, fs := range r.Compliance() {
		var failed []string
		for _, c := range fs.Controls {
			if c.Status == "failed" {
				failed = append(failed, c.ID)
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s |\n", fs.Framework, fs.Passed, fs.Failed, fs.Unverified, strings.Join(failed, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func envSuffix(env string) string {
	if env == "" {
		return ""
	}
	return " — " + env
}

func escapeCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

// shortURN keeps the type and name of a URN.
func shortURN(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) >= 4 {
		t := parts[len(parts)-2]
		if i := strings.LastIndex(t, "$"); i >= 0 {
			t = t[i+1:]
		}
		return t + "::" + parts[len(parts)-1]
	}
	return urn
}

// WriteSARIF writes the report as SARIF 2.1.0 for code-scanning dashboards:
// one rule per policy, one result per finding (mandatory = error, advisory =
// warning, unverified = note).
func (r *Report) WriteSARIF(w io.Writer) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string         `json:"id"`
		Name             string         `json:"name"`
		ShortDescription msg            `json:"shortDescription"`
		Properties       map[string]any `json:"properties"`
	}
	type logical struct {
		FullyQualifiedName string `json:"fullyQualifiedName"`
		Kind               string `json:"kind"`
	}
	type location struct {
		LogicalLocations []logical `json:"logicalLocations"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations"`
	}
	var rules []rule
	for _, run := range r.Policies {
		var tags []string
		for _, c := range run.Controls {
			tags = append(tags, c.String())
		}
		rules = append(rules, rule{ID: run.Pack + "/" + run.Policy, Name: run.Policy, ShortDescription: msg{run.Description},
			Properties: map[string]any{"severity": run.Severity, "enforcement": run.Enforcement, "tags": tags,
				"security-severity": securitySeverity(run.Severity)}})
	}
	results := []result{}
	for _, res := range r.Results {
		level := "warning"
		switch {
		case res.Unverified:
			level = "note"
		case res.Enforcement == Mandatory || res.Enforcement == Remediate:
			level = "error"
		}
		results = append(results, result{RuleID: res.Pack + "/" + res.Policy, Level: level, Message: msg{res.Message},
			Locations: []location{{LogicalLocations: []logical{{FullyQualifiedName: res.URN, Kind: "resource"}}}}})
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": "slipway-policy", "informationUri": "https://github.com/slipwayhq/slipway", "rules": rules}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func securitySeverity(s Severity) string {
	return map[Severity]string{Critical: "9.5", High: "8.0", Medium: "5.5", Low: "3.0"}[s]
}

// Rules lists every policy of the packs with its controls, for documentation.
func Rules(packs ...*Pack) []PolicyRun {
	var out []PolicyRun
	for _, p := range packs {
		for _, pol := range p.Policies {
			out = append(out, PolicyRun{Pack: p.Name, Policy: pol.Name, Description: pol.Description, Severity: pol.Severity,
				Enforcement: pol.Enforcement, Controls: slices.Clone(pol.Controls)})
		}
	}
	return out
}
