// Package report renders the outcomes of Slipway operations (preview, up,
// drift checks and policy checks, one Entry per environment) in the formats
// CI systems read natively: a human summary, a pull-request comment in
// Markdown, JUnit XML for test tabs, SARIF 2.1.0 for code-scanning
// dashboards, GitHub Actions workflow-command annotations and JSON.
//
// Every string that reaches the output goes through one sanitising step
// first, package mask: values the engine marks secret ("[secret]",
// ciphertexts, serialised secrets), Kubernetes Secret data and the entries'
// own Secrets are masked, so no format can leak them; each renderer then
// escapes for its own syntax.
//
// The JSON format is this package's own document ({"entries": [...]}, the
// sanitised content the other formats show), not the CLI's --json envelope
// (cmd/slipway/cli/schema), which carries the engine's whole outcomes.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/policypacks"
)

// Format is an output format for operation outcomes.
type Format string

// Formats.
const (
	// Text is a short human summary per environment.
	Text Format = "text"
	// JSON is one JSON document, {"entries": [...]}: per environment the
	// outcome, changes, findings, drift and error, sanitised as every format.
	JSON Format = "json"
	// Markdown is a pull-request summary.
	Markdown Format = "markdown"
	// JUnit is JUnit XML: policies, drift checks and operations as test cases.
	JUnit Format = "junit"
	// SARIF is SARIF 2.1.0: policy findings and drift as results.
	SARIF Format = "sarif"
	// GitHub is GitHub Actions workflow commands (::error, ::warning, ::notice).
	GitHub Format = "github"
)

// Formats returns every format, in the order help texts list them.
func Formats() []Format { return []Format{Text, JSON, Markdown, JUnit, SARIF, GitHub} }

// FormatError is returned for a format name that is not one of Formats.
// Get it with errors.As (a *FormatError).
type FormatError struct {
	// Value is the name as given (e.g. the --format flag's value).
	Value string
}

// Error implements error.
func (e *FormatError) Error() string {
	names := make([]string, 0, len(Formats()))
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return fmt.Sprintf("report: --format %q is not a format; use one of %s", e.Value, strings.Join(names, ", "))
}

// ParseFormat returns the format named s (case-insensitive, surrounding
// space ignored), or a *FormatError naming s and listing the formats.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats(), f) {
		return f, nil
	}
	return "", &FormatError{Value: s}
}

// Operation names what an Entry reports on.
type Operation string

// Operations.
const (
	// Preview is a preview (Result holds the planned steps).
	Preview Operation = "preview"
	// Up is an update (Result holds the applied steps).
	Up Operation = "up"
	// DriftCheck is a drift check (Drift holds what differs).
	DriftCheck Operation = "drift"
	// PolicyCheck is an in-process policy evaluation (Findings, Policies).
	PolicyCheck Operation = "policy"
	// Rollout is a progressive rollout (Rollout holds its steps and
	// measurements).
	Rollout Operation = "rollout"
)

// Entry is one environment's outcome of one operation.
type Entry struct {
	// Environment is the environment (stack) name.
	Environment string
	// Operation is what ran: Preview, Up, DriftCheck or PolicyCheck.
	Operation Operation
	// Result is a preview's or an up's outcome; the engine's policy
	// findings are in Result.Policy.
	Result *outcome.Result
	// Drift is a drift check's outcome.
	Drift *outcome.Drift
	// Findings are policy findings from an in-process check (policy check);
	// they are reported with Result.Policy, duplicates once.
	Findings []policypacks.Finding
	// Policies are the policies an in-process check ran (the Report's
	// Policies): each one without findings is a passing JUnit test case and
	// a SARIF rule with its description.
	Policies []policypacks.PolicyRun
	// Rollout is a rollout's record (automation.Engine.RolloutOf, or a run
	// record's): its steps, where it stopped and why, and every gate's
	// check with each measurement.
	Rollout *rollout.State
	// Checks are a deploy's gates (automation.Release.Gates) as its run
	// record keeps them, with each measurement.
	Checks []rollout.Check
	// Err is the operation's error, if it failed.
	Err error
	// Secrets are values masked wherever they appear, in every form
	// package mask knows (the environment's secret configuration).
	Secrets []string
}

// MaxRows caps the rows of each Markdown table; the rest are counted.
const MaxRows = 50

// Write renders entries in format f. It returns a *FormatError for an
// unknown format.
func Write(w io.Writer, f Format, entries []Entry) error {
	views := make([]view, 0, len(entries))
	for _, e := range entries {
		views = append(views, build(e))
	}
	switch f {
	case Text:
		return writeText(w, views)
	case Markdown:
		return writeMarkdown(w, views)
	case JUnit:
		return writeJUnit(w, views)
	case SARIF:
		return writeSARIF(w, views)
	case GitHub:
		return writeGitHub(w, views)
	case JSON:
		return writeJSON(w, views)
	}
	return &FormatError{Value: string(f)}
}

// view is an Entry with every string sanitised, ready to render. Renderers
// read views only, never the Entry.
type view struct {
	env, op   string
	result    bool
	duration  time.Duration
	timestamp time.Time
	rows      []row
	counts    counts
	outputs   []output
	findings  []finding // blocking first, then advisory, then unverified
	policies  []policypacks.PolicyRun
	drift     *driftView
	rollout   *rolloutView
	checks    []checkView
	err       string
	errKind   string
}

type row struct {
	op, urn, typ string
	diffs        []string
}

type output struct{ key, value string }

type counts struct{ create, update, delete, replace, other int }

// String renders counts as "+2 ~1 -1 ±1" (non-zero ones, then "N other"
// for imports and the like), or "no changes".
func (c counts) String() string {
	var parts []string
	for _, p := range []struct {
		sign string
		n    int
	}{{"+", c.create}, {"~", c.update}, {"-", c.delete}, {"±", c.replace}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%s%d", p.sign, p.n))
		}
	}
	if c.other > 0 {
		parts = append(parts, fmt.Sprintf("%d other", c.other))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, " ")
}

type finding struct {
	pack, policy, urn, typ string
	severity, enforcement  string
	message, summary       string
	controls               []string
	blocking, unverified   bool
}

// rule is the finding's rule id, pack/policy.
func (f finding) rule() string { return f.pack + "/" + f.policy }

// level is "blocking", "advisory" or "unverified".
func (f finding) level() string {
	switch {
	case f.blocking:
		return "blocking"
	case f.unverified:
		return "unverified"
	}
	return "advisory"
}

type driftView struct {
	found      bool
	resources  []driftRes
	remediated *counts
}

type driftRes struct {
	urn, typ string
	props    []prop
}

type prop struct{ path, expected, actual string }

// now is the clock for JUnit timestamps; tests replace it.
var now = time.Now

func build(e Entry) view {
	m := mask.New(e.Secrets...)
	v := view{env: m.String(e.Environment), op: m.String(string(e.Operation)), timestamp: now()}
	if v.op == "" && e.Result != nil {
		v.op = m.String(e.Result.Operation)
	}
	if e.Result != nil {
		v.result = true
		v.duration = e.Result.Duration
		v.rows, v.counts = changes(e.Result, m)
		for k, val := range e.Result.Outputs {
			v.outputs = append(v.outputs, output{m.String(k), value(m, val)})
		}
		slices.SortFunc(v.outputs, func(a, b output) int { return strings.Compare(a.key, b.key) })
	}
	var fs []policypacks.Finding
	if e.Result != nil {
		fs = append(fs, e.Result.Policy...)
	}
	fs = append(fs, e.Findings...)
	if e.Drift != nil && e.Drift.Remediated != nil {
		fs = append(fs, e.Drift.Remediated.Policy...)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		k := strings.Join([]string{f.Pack, f.Policy, f.URN, f.Message}, "\x00")
		if seen[k] {
			continue
		}
		seen[k] = true
		fv := finding{pack: m.String(f.Pack), policy: m.String(f.Policy), urn: m.String(f.URN), typ: m.String(f.Type),
			severity: m.String(string(f.Severity)), enforcement: m.String(string(f.Enforcement)),
			message: m.String(strings.TrimSpace(f.Message)), summary: m.String(lastLine(f.Message)),
			blocking: f.Blocking() && !f.Unverified, unverified: f.Unverified}
		if fv.typ == "" {
			fv.typ = urnType(fv.urn)
		}
		for _, c := range f.Controls {
			fv.controls = append(fv.controls, m.String(c.String()))
		}
		v.findings = append(v.findings, fv)
	}
	rank := map[string]int{"blocking": 0, "advisory": 1, "unverified": 2}
	slices.SortStableFunc(v.findings, func(a, b finding) int { return rank[a.level()] - rank[b.level()] })
	for _, p := range e.Policies {
		p.Pack, p.Policy, p.Description = m.String(p.Pack), m.String(p.Policy), m.String(p.Description)
		v.policies = append(v.policies, p)
	}
	if d := e.Drift; d != nil {
		dv := &driftView{found: d.Found()}
		for _, r := range d.Resources {
			dr := driftRes{urn: m.String(r.URN), typ: m.String(r.Type)}
			secretType := r.Type == "kubernetes:core/v1:Secret"
			for _, p := range r.Properties {
				exp, act := value(m, p.Expected), value(m, p.Actual)
				if exp == mask.Text || act == mask.Text || (secretType && secretPath(p.Path)) {
					exp, act = mask.Text, mask.Text
				}
				dr.props = append(dr.props, prop{path: m.String(p.Path), expected: exp, actual: act})
			}
			if len(dr.props) == 0 {
				for _, name := range r.Diffs {
					dr.props = append(dr.props, prop{path: m.String(name), expected: "?", actual: "?"})
				}
			}
			dv.resources = append(dv.resources, dr)
		}
		if d.Remediated != nil {
			_, c := changes(d.Remediated, m)
			dv.remediated = &c
		}
		if !d.Checked.IsZero() {
			v.timestamp = d.Checked
		}
		if v.duration == 0 {
			v.duration = d.Duration
		}
		v.drift = dv
	}
	buildRollout(&v, e.Rollout, e.Checks, m)
	if e.Err != nil {
		v.err = m.String(strings.TrimSpace(e.Err.Error()))
		v.errKind = "error"
		var pe *automation.PolicyBlockedError
		if errors.As(e.Err, &pe) {
			v.errKind = "policy"
		}
	}
	return v
}

// changes collapses a result's steps to one row per resource (a replacement's
// create-replacement, replace and delete-replaced steps are one "replace"),
// leaving out unchanged resources and the stack resource, and counts them.
// A result without steps falls back to its summary.
func changes(r *outcome.Result, m *mask.Masker) ([]row, counts) {
	var rows []row
	at := map[string]int{}
	for _, c := range r.Resources {
		op := c.Op
		switch op {
		case "same", "read", "refresh", "":
			continue
		case "create-replacement", "delete-replaced", "replace", "discard-replaced", "import-replacement":
			op = "replace"
		case "discard":
			op = "delete"
		}
		if c.Type == "pulumi:pulumi:Stack" {
			continue
		}
		if i, ok := at[c.URN]; ok {
			if op == "replace" {
				rows[i].op = op
			}
			for _, d := range c.Diffs {
				if d = m.String(d); !slices.Contains(rows[i].diffs, d) {
					rows[i].diffs = append(rows[i].diffs, d)
				}
			}
			continue
		}
		at[c.URN] = len(rows)
		rw := row{op: op, urn: m.String(c.URN), typ: m.String(c.Type)}
		for _, d := range c.Diffs {
			rw.diffs = append(rw.diffs, m.String(d))
		}
		rows = append(rows, rw)
	}
	var n counts
	for _, rw := range rows {
		n.add(rw.op, 1)
	}
	if len(r.Resources) == 0 {
		for op, k := range r.Summary {
			switch op {
			case "same", "read", "refresh":
			default:
				n.add(op, k)
			}
		}
	}
	return rows, n
}

func (c *counts) add(op string, n int) {
	switch op {
	case "create":
		c.create += n
	case "update":
		c.update += n
	case "delete":
		c.delete += n
	case "replace":
		c.replace += n
	default:
		c.other += n
	}
}

// secretPath reports whether a Kubernetes Secret's property holds its data.
func secretPath(p string) bool {
	for _, k := range []string{"data", "stringData"} {
		if p == k || strings.HasPrefix(p, k+".") || strings.HasPrefix(p, k+"[") {
			return true
		}
	}
	return false
}

// value renders a property value compactly (JSON, at most 80 characters),
// masked by m: "[secret]" for a value the engine marked secret.
func value(m *mask.Masker, v any) string {
	if v == nil {
		return "(none)"
	}
	v = m.Value(v)
	if s, ok := v.(string); ok && s == mask.Text {
		return mask.Text
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	s := fmt.Sprint(v)
	if err := enc.Encode(v); err == nil {
		s = strings.TrimSuffix(b.String(), "\n")
	}
	s = m.String(s)
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}

// lastLine returns the last non-empty line of an engine policy message (the
// engine puts the policy's description first).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// shortURN keeps a URN's type (its last component) and name:
// "Deployment::web". The name is everything after the type (it may hold "::").
func shortURN(urn string) string {
	parts := strings.SplitN(urn, "::", 4)
	if len(parts) < 4 {
		return urn
	}
	t := urnType(urn)
	if i := strings.LastIndex(t, ":"); i >= 0 {
		t = t[i+1:]
	}
	return t + "::" + parts[3]
}

// urnType returns a URN's resource type (without its parents' types).
func urnType(urn string) string {
	parts := strings.SplitN(urn, "::", 4)
	if len(parts) < 4 {
		return ""
	}
	t := parts[2]
	if i := strings.LastIndex(t, "$"); i >= 0 {
		t = t[i+1:]
	}
	return t
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// plural returns "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// blocked returns the number of blocking findings and of the others.
func (v *view) blocked() (blocking, other int) {
	for _, f := range v.findings {
		if f.blocking {
			blocking++
		} else {
			other++
		}
	}
	return blocking, other
}

// findingCounts is "1 blocking, 2 advisory, 1 unverified" (non-zero ones).
func (v *view) findingCounts() string {
	n := map[string]int{}
	for _, f := range v.findings {
		n[f.level()]++
	}
	var parts []string
	for _, l := range []string{"blocking", "advisory", "unverified"} {
		if n[l] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[l], l))
		}
	}
	return strings.Join(parts, ", ")
}

// policyBlocked reports whether the error is the engine's policy block and
// the blocking findings say everything it says.
func (v *view) policyBlocked() bool {
	b, _ := v.blocked()
	return v.errKind == "policy" && b > 0
}

// label names the operation for people: "preview", "up", "drift check",
// "policy check".
func (v *view) label() string {
	if l, ok := map[string]string{"drift": "drift check", "policy": "policy check"}[v.op]; ok {
		return l
	}
	return v.op
}

// outcome is a one-line summary: changes, drift, findings, failure.
func (v *view) outcome() string {
	var parts []string
	if v.result {
		parts = append(parts, v.counts.String())
	}
	if v.rollout != nil {
		parts = append(parts, v.rollout.outcome())
	}
	if d := v.drift; d != nil {
		switch {
		case !d.found:
			parts = append(parts, "no drift")
		case d.remediated != nil:
			parts = append(parts, fmt.Sprintf("drift in %s, remediated (%s)", plural(len(d.resources), "resource", "resources"), d.remediated))
		default:
			parts = append(parts, "drift in "+plural(len(d.resources), "resource", "resources"))
		}
	}
	if len(v.findings) > 0 {
		parts = append(parts, "policy findings: "+v.findingCounts())
	} else if v.op == string(PolicyCheck) && v.err == "" {
		parts = append(parts, fmt.Sprintf("%s passed", plural(len(v.policies), "policy", "policies")))
	}
	switch {
	case v.policyBlocked():
		parts = append(parts, "blocked by policy")
	case v.err != "":
		parts = append(parts, "failed: "+strings.TrimSuffix(firstLine(v.err), ":"))
	}
	return strings.Join(parts, ", ")
}

// failed reports whether CI should treat the entry as failing: an error, a
// blocking finding, unremediated drift or an aborted rollout.
func (v *view) failed() bool {
	b, _ := v.blocked()
	return v.err != "" || b > 0 || (v.drift != nil && v.drift.found && v.drift.remediated == nil) ||
		(v.rollout != nil && v.rollout.phase == string(rollout.Aborted))
}
