package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The JUnit document follows the Ant/Jenkins schema (testdata/JUnit.xsd):
// one testsuite per environment with the operation as a test case, one test
// case per policy finding (failure when blocking, skipped when advisory or
// unverified) and per policy that ran without findings (passed), and one per
// drifted resource (failure naming the properties) or a passing "no drift".
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  cdata           `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// cdata is element text written as CDATA, so multi-line text stays
// readable in the file.
type cdata struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func writeJUnit(w io.Writer, views []view) error {
	host, err := os.Hostname()
	if err != nil || strings.TrimSpace(host) == "" {
		host = "localhost"
	}
	doc := junitSuites{Suites: []junitSuite{}}
	for i, v := range views {
		doc.Suites = append(doc.Suites, suite(i, host, v))
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

func suite(id int, host string, v view) junitSuite {
	env := v.env
	if strings.TrimSpace(env) == "" {
		env = "(unnamed)"
	}
	class := "slipway." + token(env)
	s := junitSuite{Name: v.op + " " + env, Package: "slipway", ID: id, Hostname: host,
		Timestamp: v.timestamp.UTC().Format("2006-01-02T15:04:05"), Time: seconds(v.duration),
		Properties: []junitProperty{{"environment", env}, {"operation", v.op}}}
	opCase := junitCase{Name: v.label(), Classname: class, Time: seconds(v.duration)}
	if v.err != "" {
		opCase.Failure = &junitFailure{Message: firstLine(v.err), Type: v.errKind, Text: xmlText(v.err)}
	} else if r := v.rollout; r != nil && r.phase == "Aborted" {
		opCase.Failure = &junitFailure{Message: "rollout aborted: " + firstLine(r.cause), Type: "rollout", Text: xmlText(r.cause)}
	}
	s.Cases = append(s.Cases, opCase)
	for _, c := range v.checks {
		jc := junitCase{Name: fmt.Sprintf("step %d %s", c.step, c.gate), Classname: class + ".analysis", Time: "0"}
		switch c.verdict {
		case "Successful":
		case "Inconclusive":
			jc.Skipped = &junitSkipped{Message: "inconclusive: " + firstLine(c.message)}
		default:
			var t strings.Builder
			fmt.Fprintf(&t, "%s %s: %s", c.gate, c.verdict, c.message)
			for _, m := range c.measurements {
				fmt.Fprintf(&t, "\n%s %s %s %s", m.at.UTC().Format(time.RFC3339), m.text(), m.verdict, m.error)
			}
			jc.Failure = &junitFailure{Message: c.gate + " " + c.verdict, Type: "analysis", Text: xmlText(t.String())}
		}
		s.Cases = append(s.Cases, jc)
	}
	ruled := map[string]bool{}
	for _, f := range v.findings {
		ruled[f.rule()] = true
		c := junitCase{Name: f.rule() + " " + shortURN(f.urn), Classname: class + ".policy", Time: "0"}
		switch {
		case f.blocking:
			var t strings.Builder
			fmt.Fprintf(&t, "%s\nresource: %s\nenforcement: %s", f.message, f.urn, f.enforcement)
			if f.severity != "" {
				fmt.Fprintf(&t, "\nseverity: %s", f.severity)
			}
			if len(f.controls) > 0 {
				fmt.Fprintf(&t, "\ncontrols: %s", strings.Join(f.controls, ", "))
			}
			c.Failure = &junitFailure{Message: f.summary, Type: f.enforcement, Text: xmlText(t.String())}
		default:
			c.Skipped = &junitSkipped{Message: f.level() + ": " + f.summary}
		}
		s.Cases = append(s.Cases, c)
	}
	for _, p := range v.policies {
		if r := p.Pack + "/" + p.Policy; !ruled[r] {
			ruled[r] = true
			s.Cases = append(s.Cases, junitCase{Name: r, Classname: class + ".policy", Time: "0"})
		}
	}
	if d := v.drift; d != nil {
		if !d.found {
			s.Cases = append(s.Cases, junitCase{Name: "no drift", Classname: class + ".drift", Time: "0"})
		}
		for _, r := range d.resources {
			c := junitCase{Name: shortURN(r.urn), Classname: class + ".drift", Time: "0"}
			if d.remediated == nil {
				var paths, lines []string
				for _, p := range r.props {
					paths = append(paths, p.path)
					lines = append(lines, fmt.Sprintf("%s: expected %s, actual %s", p.path, p.expected, p.actual))
				}
				c.Failure = &junitFailure{Type: "drift",
					Message: fmt.Sprintf("%s drifted: %s", shortURN(r.urn), strings.Join(paths, ", ")),
					Text:    xmlText(r.urn + "\n" + strings.Join(lines, "\n"))}
			}
			s.Cases = append(s.Cases, c)
		}
	}
	for _, c := range s.Cases {
		switch {
		case c.Failure != nil:
			s.Failures++
		case c.Skipped != nil:
			s.Skipped++
		}
	}
	s.Tests = len(s.Cases)
	var out strings.Builder
	_ = writeText(&out, []view{v})
	s.SystemOut = cdata{xmlText(out.String())}
	return s
}

// xmlText replaces characters XML cannot hold (CDATA sections are not
// escaped) with U+FFFD.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || (r >= 0x10000 && r <= 0x10ffff) {
			return r
		}
		return '\ufffd'
	}, s)
}

// token makes s usable in a dotted class name.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' || r < 0x20 {
			return '_'
		}
		return r
	}, s)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
