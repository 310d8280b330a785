package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// result is what a Run's execution writes into its status.
type result struct {
	failed          bool
	reason, message string
	changes         map[string]int
	drift           []v1alpha1.DriftedResource
	remediated      bool
	findings        []v1alpha1.Finding
	outputs         map[string]string
	recovery        string
	stack           string
	// rec is the recovery report of the stack's opening.
	rec *recovery.Recovery
}

// apply writes the result into a Run's status.
func (res *result) apply(s *v1alpha1.RunStatus) {
	s.Phase, s.Reason = v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded
	if res.failed {
		s.Phase, s.Reason = v1alpha1.RunFailed, res.reason
	}
	s.Message = res.message
	s.Changes = res.changes
	s.Drift = res.drift
	s.Remediated = res.remediated
	s.Findings = res.findings
	s.Outputs = res.outputs
	s.Recovery = res.recovery
	s.Stack = res.stack
}

// fail records err: its reason, and its first lines without the
// secrets as the message.
func (res *result) fail(err error, secrets []string) {
	res.failed = true
	res.reason = reason(err)
	res.message = message(err, secrets)
}

// redact masks every secret value (package mask: as given and in its
// encoded forms) in the result's texts.
func (res *result) redact(secrets []string) {
	m := mask.New(secrets...)
	res.message = m.String(res.message)
	res.recovery = m.String(res.recovery)
	for i := range res.findings {
		res.findings[i].Message = m.String(res.findings[i].Message)
	}
	for k, v := range res.outputs {
		res.outputs[k] = m.String(v)
	}
}

// from records an operation's changes and policy findings.
func (res *result) from(out *outcome.Result) {
	if out == nil {
		return
	}
	res.changes = changes(out.Summary)
	res.findings = append(res.findings, findings(out.Policy)...)
}

// fromDrift records what a drift check found, and its remediation.
func (res *result) fromDrift(d *outcome.Drift) {
	if d == nil {
		return
	}
	var names []string
	for _, c := range d.Resources {
		paths := map[string]bool{}
		for _, p := range c.Properties {
			paths[p.Path] = true
		}
		if len(paths) == 0 {
			for p := range c.DetailedDiff {
				paths[p] = true
			}
			for _, p := range c.Diffs {
				paths[p] = true
			}
		}
		dr := v1alpha1.DriftedResource{URN: c.URN, Type: c.Type, Properties: slices.Sorted(maps.Keys(paths))}
		res.drift = append(res.drift, dr)
		names = append(names, fmt.Sprintf("%s %s: %s", dr.Type, urnName(dr.URN), strings.Join(dr.Properties, ", ")))
	}
	if d.Remediated != nil {
		res.from(d.Remediated)
		res.remediated = d.Found()
	}
	switch {
	case !d.Found():
		res.message = "drift: none found"
	case res.remediated:
		res.message = fmt.Sprintf("drift: %d resource(s) drifted and were corrected (%s): %s", len(d.Resources), summary(res.changes), strings.Join(names, "; "))
	default:
		res.message = fmt.Sprintf("drift: %d resource(s) drifted: %s", len(d.Resources), strings.Join(names, "; "))
	}
}

// urnName is the resource name at the end of a URN.
func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

// changes are a summary's counts other than "same" and zero.
func changes(summary map[string]int) map[string]int {
	out := map[string]int{}
	for op, n := range summary {
		if n > 0 && op != "same" {
			out[op] = n
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// summary says the changes in words: "create 2, update 1" or "no changes".
func summary(c map[string]int) string {
	if len(c) == 0 {
		return "no changes"
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, c[op]))
	}
	return strings.Join(parts, ", ")
}

// findings converts policy findings for the status.
func findings(fs []policypacks.Finding) []v1alpha1.Finding {
	var out []v1alpha1.Finding
	for _, f := range fs {
		out = append(out, v1alpha1.Finding{Pack: f.Pack, Policy: f.Policy, Enforcement: string(f.Enforcement),
			URN: f.URN, Message: f.Message})
	}
	return out
}

// outputs are a stack's non-secret outputs as text (JSON for non-strings).
func outputs(m auto.OutputMap) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v.Secret {
			continue
		}
		if s, ok := v.Value.(string); ok {
			out[k] = s
			continue
		}
		b, err := json.Marshal(v.Value)
		if err != nil {
			continue
		}
		out[k] = string(b)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// describeRecovery says what was recovered before the Run: the takeover,
// and what the stack's opening repaired.
func describeRecovery(rec *recovery.Recovery, prev takeover) string {
	var parts []string
	if prev.from != "" {
		parts = append(parts, fmt.Sprintf("took over from %s on %s, whose lease expired", prev.from, prev.host))
	}
	if rec != nil {
		for _, l := range rec.StaleLocks {
			parts = append(parts, "removed stale lock "+l.String())
		}
		if rec.Refreshed {
			parts = append(parts, fmt.Sprintf("reconciled %d pending operation(s) with a refresh", len(rec.PendingOperations)))
		}
		if rec.RestoredCheckpoint != "" {
			from := "rewrote its metadata"
			if rec.CheckpointFromBackup {
				from = "restored it from its backup"
			}
			parts = append(parts, "the checkpoint did not load: "+from)
		}
	}
	if prev.from != "" && (rec == nil || !rec.Repaired()) {
		parts = append(parts, "nothing to recover")
	}
	return strings.Join(parts, "; ")
}

// reason is the status reason of a failure.
func reason(err error) string {
	var fe *fleet.FieldError
	var inv *stacks.InvalidError
	switch {
	case automation.IsPolicyBlocked(err):
		return v1alpha1.ReasonPolicyBlocked
	case automation.IsStackLocked(err):
		return v1alpha1.ReasonLocked
	case errors.As(err, &fe), errors.As(err, &inv):
		return v1alpha1.ReasonInvalidSpec
	default:
		return v1alpha1.ReasonFailed
	}
}

// Message limits: the error's first lines, never its whole output.
const (
	maxMessageLines = 8
	maxMessageBytes = 1024
)

// message is an error's first non-empty lines, at most maxMessageBytes,
// with every secret value replaced.
func message(err error, secrets []string) string {
	var lines []string
	for l := range strings.SplitSeq(mask.New(secrets...).String(err.Error()), "\n") {
		l = strings.TrimRight(l, " \t\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		lines = append(lines, l)
		if len(lines) == maxMessageLines {
			break
		}
	}
	s := strings.Join(lines, "\n")
	if len(s) > maxMessageBytes {
		cut := maxMessageBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// splitStack splits "project/stack".
func splitStack(s string) (project, stack string, ok bool) {
	project, stack, ok = strings.Cut(s, "/")
	return project, stack, ok && project != "" && stack != "" && !strings.Contains(stack, "/")
}
