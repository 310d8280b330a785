package report

import (
	"fmt"
	"io"
	"strings"
)

// writeText prints what the CLI prints for people: per environment, the
// outcome, policy findings, changed resources, drifted properties, outputs
// and the error. Control characters in untrusted strings are shown escaped.
func writeText(w io.Writer, views []view) error {
	var b strings.Builder
	for _, v := range views {
		fmt.Fprintf(&b, "%s of %s", v.label(), plain(v.env))
		if v.duration > 0 {
			fmt.Fprintf(&b, " in %s", v.duration.Round(1e6))
		}
		fmt.Fprintf(&b, ": %s\n", plain(v.outcome()))
		for _, f := range v.findings {
			level := f.enforcement
			if f.unverified {
				level = "unverified"
			}
			fmt.Fprintf(&b, "  policy   %-10s %s: %s (%s)\n", plain(level), plain(f.rule()), plain(f.summary), plain(shortURN(f.urn)))
		}
		for _, r := range v.rows {
			diff := ""
			if len(r.diffs) > 0 {
				diff = " (" + strings.Join(r.diffs, ", ") + ")"
			}
			fmt.Fprintf(&b, "  %-8s %s%s\n", r.op, plain(r.urn), plain(diff))
		}
		if d := v.drift; d != nil {
			for _, r := range d.resources {
				fmt.Fprintf(&b, "  drifted  %s\n", plain(r.urn))
				for _, p := range r.props {
					fmt.Fprintf(&b, "    %s: expected %s, live %s\n", plain(p.path), plain(p.expected), plain(p.actual))
				}
			}
		}
		for _, o := range v.outputs {
			fmt.Fprintf(&b, "  output %s = %s\n", plain(o.key), plain(o.value))
		}
		if v.err != "" {
			for _, l := range strings.Split(v.err, "\n") {
				fmt.Fprintf(&b, "  error: %s\n", plain(l))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plain makes s one line of printable text: newlines become spaces and other
// control characters (terminal escapes) are quoted.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return '�'
		}
		return r
	}, s)
}
