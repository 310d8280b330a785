package report

import (
	"fmt"
	"io"
	"strings"
)

// writeGitHub writes GitHub Actions workflow commands and nothing else:
// ::error for blocking findings, unremediated drift and operation errors,
// ::warning for advisory findings, ::notice for unverified findings and
// remediated drift. Titles name the environment; messages carry the
// resource and what is wrong. An error that is the engine's policy block is
// not annotated again: its blocking findings are.
func writeGitHub(w io.Writer, views []view) error {
	var b strings.Builder
	cmd := func(level, title, msg string) {
		fmt.Fprintf(&b, "::%s title=%s::%s\n", level, ghProperty(title), ghData(msg))
	}
	for _, v := range views {
		for _, f := range v.findings {
			level := map[string]string{"blocking": "error", "advisory": "warning", "unverified": "notice"}[f.level()]
			msg := fmt.Sprintf("%s: %s (%s", shortURN(f.urn), f.summary, f.enforcement)
			if f.severity != "" {
				msg += ", " + f.severity
			}
			if f.unverified {
				msg += ", unverified"
			}
			cmd(level, fmt.Sprintf("%s: policy %s", v.env, f.rule()), msg+")")
		}
		if d := v.drift; d != nil {
			level := "error"
			if d.remediated != nil {
				level = "notice"
			}
			for _, r := range d.resources {
				var parts []string
				for _, p := range r.props {
					parts = append(parts, fmt.Sprintf("%s expected %s, actual %s", p.path, p.expected, p.actual))
				}
				cmd(level, fmt.Sprintf("%s: drift in %s", v.env, shortURN(r.urn)), r.urn+": "+strings.Join(parts, "; "))
			}
		}
		if v.err != "" && !v.policyBlocked() {
			cmd("error", fmt.Sprintf("%s: %s failed", v.env, v.label()), v.err)
		} else if r := v.rollout; r != nil && r.phase == "Aborted" {
			cmd("error", fmt.Sprintf("%s: rollout of %s aborted", v.env, r.version), r.cause)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes a workflow command's message.
var ghDataEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")

// ghPropertyEscaper escapes a workflow command's property value.
var ghPropertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")

func ghData(s string) string     { return ghDataEscaper.Replace(s) }
func ghProperty(s string) string { return ghPropertyEscaper.Replace(s) }
