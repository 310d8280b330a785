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
