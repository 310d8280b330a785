package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/slipwayhq/slipway/policypacks"
)

// writeMarkdown writes a pull-request summary: a heading, one line per
// environment, then per environment with something to show a collapsible
// table of changed resources, the policy findings (blocking first), the
// drifted properties and the error. Tables stop at MaxRows rows.
func writeMarkdown(w io.Writer, views []view) error {
	var b strings.Builder
	title := "Slipway"
	if op := commonOp(views); op != "" {
		title += " " + op
	}
	fmt.Fprintf(&b, "## %s\n\n", md(title))
	if len(views) == 0 {
		b.WriteString("No environments.\n")
	}
	for _, v := range views {
		fmt.Fprintf(&b, "- %s **%s** %s: %s\n", icon(v), md(v.env), md(v.label()), md(v.outcome()))
	}
	for _, v := range views {
		if len(v.rows) == 0 && len(v.findings) == 0 && (v.drift == nil || !v.drift.found) && v.err == "" && len(v.policies) == 0 &&
			v.rollout == nil && len(v.checks) == 0 {
			// Nothing beyond the summary line.
			continue
		}
		fmt.Fprintf(&b, "\n### %s — %s\n", md(v.env), md(v.label()))
		if len(v.rows) > 0 {
			fmt.Fprintf(&b, "\n<details><summary>%s: %s</summary>\n\n", plural(len(v.rows), "changed resource", "changed resources"), html(v.counts.String()))
			b.WriteString("| | resource | type | properties |\n|---|---|---|---|\n")
			for i, r := range v.rows {
				if i == MaxRows {
					more(&b, len(v.rows)-MaxRows, 4)
					break
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", sign(r.op), code(shortURN(r.urn)), code(r.typ), md(strings.Join(r.diffs, ", ")))
			}
			b.WriteString("\n</details>\n")
		}
		if len(v.findings) > 0 {
			fmt.Fprintf(&b, "\n**Policy findings:** %s\n\n", v.findingCounts())
			b.WriteString("| | enforcement | pack | policy | resource | message |\n|---|---|---|---|---|---|\n")
			for i, f := range v.findings {
				if i == MaxRows {
					more(&b, len(v.findings)-MaxRows, 6)
					break
				}
				level := f.enforcement
				if f.unverified {
					level += " (unverified)"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", map[string]string{"blocking": "❌", "advisory": "⚠️", "unverified": "❔"}[f.level()],
					md(level), md(f.pack), md(f.policy), code(shortURN(f.urn)), md(f.summary))
			}
		}
		if len(v.policies) > 0 {
			compliance(&b, v)
		}
		if d := v.drift; d != nil && d.found {
			fmt.Fprintf(&b, "\n**Drift:** %s", plural(len(d.resources), "resource", "resources"))
			if d.remediated != nil {
				fmt.Fprintf(&b, ", remediated (%s)", md(d.remediated.String()))
			}
			b.WriteString("\n\n| resource | property | expected | actual |\n|---|---|---|---|\n")
			n := 0
			total := 0
			for _, r := range d.resources {
				total += len(r.props)
			}
			for _, r := range d.resources {
				for _, p := range r.props {
					if n == MaxRows {
						break
					}
					fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(shortURN(r.urn)), code(p.path), code(p.expected), code(p.actual))
					n++
				}
			}
			if total > MaxRows {
				more(&b, total-MaxRows, 4)
			}
		}
		if v.rollout != nil || len(v.checks) > 0 {
			rolloutMarkdown(&b, v)
		}
		if v.err != "" && !v.policyBlocked() {
			b.WriteString("\n**Error**\n\n")
			lines := strings.Split(v.err, "\n")
			for i, l := range lines {
				lines[i] = plain(l)
			}
			if len(lines) > 30 {
				lines = append(lines[:30], fmt.Sprintf("… and %d more lines", len(lines)-30))
			}
			text := strings.Join(lines, "\n")
			fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
			fmt.Fprintf(&b, "%stext\n%s\n%s\n", fence, text, fence)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// compliance adds the policies run and, through policypacks' own
// Compliance, each framework's failed controls.
func compliance(b *strings.Builder, v view) {
	rep := policypacks.Report{Policies: v.policies}
	passed := 0
	for _, p := range v.policies {
		if p.Violations == 0 && p.Unverified == 0 {
			passed++
		}
	}
	fmt.Fprintf(b, "\n**Policies:** %d of %d passed", passed, len(v.policies))
	var fws []string
	for _, fs := range rep.Compliance() {
		s := fmt.Sprintf("%s %d/%d", fs.Framework, fs.Passed, len(fs.Controls))
		var failed []string
		for _, c := range fs.Controls {
			if c.Status == "failed" {
				failed = append(failed, c.ID)
			}
		}
		if len(failed) > 0 {
			s += " (failed " + strings.Join(failed, ", ") + ")"
		}
		fws = append(fws, s)
	}
	if len(fws) > 0 {
		fmt.Fprintf(b, "; controls passed: %s", md(strings.Join(fws, "; ")))
	}
	b.WriteString("\n")
}

// commonOp returns the operation all views share, or "".
func commonOp(views []view) string {
	op := ""
	for i, v := range views {
		if i > 0 && v.op != op {
			return ""
		}
		op = v.op
	}
	return op
}

func icon(v view) string {
	_, other := v.blocked()
	switch {
	case v.failed():
		return "❌"
	case other > 0 || (v.drift != nil && v.drift.found):
		return "⚠️"
	}
	return "✅"
}

func sign(op string) string {
	s, ok := map[string]string{"create": "+", "update": "~", "delete": "-", "replace": "±"}[op]
	if !ok {
		return md(op)
	}
	return s + " " + op
}

func more(b *strings.Builder, n, cols int) {
	fmt.Fprintf(b, "| … and %d more |%s\n", n, strings.Repeat(" |", cols-1))
}

func longestRun(s string, c rune) int {
	best, n := 0, 0
	for _, r := range s {
		if r == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// mdEscaper escapes Markdown emphasis, links, code, table cells and HTML.
var mdEscaper = strings.NewReplacer(
	"\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]", "|", "\\|", "~", "\\~",
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "\r\n", " ", "\n", " ", "\r", " ",
)

// md makes untrusted text one line of literal Markdown, safe in a table cell.
func md(s string) string { return mdEscaper.Replace(plain(s)) }

// code makes untrusted text a code span safe in a table cell (GFM reads
// "\|" as a pipe inside code spans in tables).
func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.NewReplacer("`", "'", "|", "\\|").Replace(plain(s)) + "`"
}

var htmlEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", "\"", "&quot;")

// html escapes text for an HTML element's content.
func html(s string) string { return htmlEscaper.Replace(plain(s)) }
