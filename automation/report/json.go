package report

import (
	"encoding/json"
	"io"

	"github.com/slipwayhq/slipway/policypacks"
)

// jsonReport is the JSON format: what the other formats show, sanitised the
// same way, for tools that read JSON. It is not the CLI's --json envelope
// (cmd/slipway/cli/schema), which carries the engine's whole outcomes.
type jsonReport struct {
	Entries []jsonEntry `json:"entries"`
}

// jsonEntry is one environment's outcome.
type jsonEntry struct {
	Environment string                  `json:"environment"`
	Operation   string                  `json:"operation"`
	Outcome     string                  `json:"outcome"`
	Failed      bool                    `json:"failed"`
	DurationMS  int64                   `json:"durationMs,omitempty"`
	Changes     []jsonChange            `json:"changes,omitempty"`
	Counts      *jsonCounts             `json:"counts,omitempty"`
	Outputs     map[string]string       `json:"outputs,omitempty"`
	Findings    []jsonFinding           `json:"findings,omitempty"`
	Policies    []policypacks.PolicyRun `json:"policies,omitempty"`
	Drift       *jsonDrift              `json:"drift,omitempty"`
	Rollout     *jsonRollout            `json:"rollout,omitempty"`
	Checks      []jsonCheck             `json:"checks,omitempty"`
	Error       string                  `json:"error,omitempty"`
}

type jsonChange struct {
	Op    string   `json:"op"`
	URN   string   `json:"urn"`
	Type  string   `json:"type"`
	Diffs []string `json:"diffs,omitempty"`
}

type jsonCounts struct {
	Create  int `json:"create"`
	Update  int `json:"update"`
	Delete  int `json:"delete"`
	Replace int `json:"replace"`
	Other   int `json:"other"`
}

type jsonFinding struct {
	Pack        string   `json:"pack"`
	Policy      string   `json:"policy"`
	URN         string   `json:"urn,omitempty"`
	Type        string   `json:"type,omitempty"`
	Severity    string   `json:"severity"`
	Enforcement string   `json:"enforcement"`
	Level       string   `json:"level"`
	Message     string   `json:"message"`
	Controls    []string `json:"controls,omitempty"`
}

type jsonDrift struct {
	Found      bool           `json:"found"`
	Resources  []jsonDriftRes `json:"resources,omitempty"`
	Remediated *jsonCounts    `json:"remediated,omitempty"`
}

type jsonDriftRes struct {
	URN        string         `json:"urn"`
	Type       string         `json:"type"`
	Properties []jsonProperty `json:"properties,omitempty"`
}

type jsonProperty struct {
	Path     string `json:"path"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
}

func (c counts) json() *jsonCounts {
	return &jsonCounts{Create: c.create, Update: c.update, Delete: c.delete, Replace: c.replace, Other: c.other}
}

// writeJSON writes one JSON document, {"entries": [...]}, indented.
func writeJSON(w io.Writer, views []view) error {
	doc := jsonReport{Entries: make([]jsonEntry, 0, len(views))}
	for _, v := range views {
		e := jsonEntry{Environment: v.env, Operation: v.op, Outcome: v.outcome(), Failed: v.failed(),
			DurationMS: v.duration.Milliseconds(), Policies: v.policies, Error: v.err}
		if v.result {
			e.Counts = v.counts.json()
		}
		for _, r := range v.rows {
			e.Changes = append(e.Changes, jsonChange{Op: r.op, URN: r.urn, Type: r.typ, Diffs: r.diffs})
		}
		for _, o := range v.outputs {
			if e.Outputs == nil {
				e.Outputs = map[string]string{}
			}
			e.Outputs[o.key] = o.value
		}
		for _, f := range v.findings {
			e.Findings = append(e.Findings, jsonFinding{Pack: f.pack, Policy: f.policy, URN: f.urn, Type: f.typ, Severity: f.severity,
				Enforcement: f.enforcement, Level: f.level(), Message: f.message, Controls: f.controls})
		}
		if d := v.drift; d != nil {
			jd := &jsonDrift{Found: d.found}
			if d.remediated != nil {
				jd.Remediated = d.remediated.json()
			}
			for _, r := range d.resources {
				jr := jsonDriftRes{URN: r.urn, Type: r.typ}
				for _, p := range r.props {
					jr.Properties = append(jr.Properties, jsonProperty{Path: p.path, Expected: p.expected, Actual: p.actual})
				}
				jd.Resources = append(jd.Resources, jr)
			}
			e.Drift = jd
		}
		rolloutJSON(&e, v)
		doc.Entries = append(doc.Entries, e)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}
