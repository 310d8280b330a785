package rolloutcmd

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// shower prints a running rollout's events on stderr, one line each; on
// a terminal it also keeps a live line (the step, a pause's time left)
// while the rollout pauses or analyses, when the engine prints nothing.
type shower struct {
	g    *app.Globals
	env  string
	mu   sync.Mutex
	last rollout.State
	live bool // a live line is drawn and must be cleared before a line
	stop chan struct{}
	done chan struct{}
}

// newShower returns the event printer of env's rollout; with a terminal
// on stderr it draws the live line until close.
func newShower(g *app.Globals, env string) *shower {
	s := &shower{g: g, env: env, stop: make(chan struct{}), done: make(chan struct{})}
	if !isTerminal(g.Errw) {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				s.draw()
			}
		}
	}()
	return s
}

// draw redraws the live line when the rollout is in a pause or analysis.
func (s *shower) draw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := stepName(s.last, s.last.Step)
	if s.last.Name == "" || s.last.Phase != rollout.Progressing || !(strings.HasPrefix(name, "pause") || strings.HasPrefix(name, "analysis")) {
		return
	}
	fmt.Fprintf(s.g.Errw, "\r\033[K%s", s.g.Mask(summary(s.last, time.Now())))
	s.live = true
}

// close stops the live line and clears it.
func (s *shower) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live {
		fmt.Fprint(s.g.Errw, "\r\033[K")
		s.live = false
	}
}

// event prints one change of the rollout (rollout.Options.OnEvent).
func (s *shower) event(ev rollout.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live {
		fmt.Fprint(s.g.Errw, "\r\033[K")
		s.live = false
	}
	s.last = ev.State
	st := ev.State
	var what string
	switch ev.What {
	case "step":
		what = fmt.Sprintf("step %d (%s): done", ev.Step, stepName(st, ev.Step))
		for _, c := range st.Checks {
			if c.Step == ev.Step {
				what += "; " + checkLine(c)
			}
		}
	case "promoted":
		what = "promoted: the release is deployed"
	case "paused", "aborted", "abort failed":
		what = fmt.Sprintf("%s at step %d (%s): %s", ev.What, ev.Step, stepName(st, ev.Step), st.Cause)
	case "resumed":
		what = fmt.Sprintf("resumed at step %d (%s)", st.Step, stepName(st, st.Step))
	default:
		what = ev.What
	}
	fmt.Fprintf(s.g.Errw, "%s: rollout %s: %s\n", s.g.Config.Name, s.env, s.g.Mask(what))
}

// stepName is step i of st's plan ("" past its end).
func stepName(st rollout.State, i int) string {
	if i < 0 || i >= len(st.Plan) {
		return ""
	}
	return st.Plan[i]
}

// version shortens a long version for a line of text (--json carries it
// whole): a definition's encoded environment (stacks.Definition.Version)
// shows its images and a digest, any other long version its beginning.
func version(v string) string {
	var doc any
	if len(v) <= 72 || json.Unmarshal([]byte(v), &doc) != nil {
		if len(v) > 72 {
			return v[:69] + "..."
		}
		return v
	}
	var images []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if s, ok := x[k].(string); ok && strings.EqualFold(k, "image") && s != "" {
					images = append(images, s)
				}
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	sum := sha256.Sum256([]byte(v))
	out := fmt.Sprintf("sha256:%x", sum[:6])
	if len(images) > 0 {
		out = "image " + strings.Join(images, ", ") + " (" + out + ")"
	}
	return out
}

// stepState says where step i of st is, with the time a pause has left
// at now (none when now is zero).
func stepState(st rollout.State, i int, now time.Time) string {
	switch {
	case i < st.Step || st.Phase == rollout.Promoted:
		return "done"
	case i > st.Step:
		return "pending"
	case st.Phase == rollout.Aborted:
		return "aborted"
	case st.Phase == rollout.Paused:
		return "paused"
	case st.PromoteRequested:
		return "promoted; waiting for `rollout start` to go on"
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(stepName(st, i), "pause ")); err == nil && !now.IsZero() {
		if left := d - now.Sub(st.StepStarted); left > 0 {
			return fmt.Sprintf("in progress, %s left", left.Round(time.Second))
		}
	}
	return "in progress"
}

// printState prints st as text: the phase, each step's state and every
// analysis with its measurements.
func printState(w io.Writer, g *app.Globals, st rollout.State, now time.Time) {
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %s: %s", st.Name, st.Phase)
	if !st.Phase.Final() {
		fmt.Fprintf(&b, " at step %d (%s), canary weight %d %%", st.Step, stepName(st, st.Step), st.Weight)
	}
	fmt.Fprintf(&b, "\n  version  %s\n  started  %s, updated %s\n", version(st.Version), st.Started.Format(time.RFC3339), st.Updated.Format(time.RFC3339))
	if st.Cause != "" {
		fmt.Fprintf(&b, "  cause    %s\n", st.Cause)
	}
	b.WriteString("  steps\n")
	for i, name := range st.Plan {
		fmt.Fprintf(&b, "    step %d  %-28s %s\n", i, name, stepState(st, i, now))
		for _, c := range st.Checks {
			if c.Step == i {
				fmt.Fprintf(&b, "            %s\n", checkLine(c))
				for _, m := range measurements(c) {
					fmt.Fprintf(&b, "              %s\n", m)
				}
			}
		}
	}
	_, _ = io.WriteString(w, g.Mask(b.String()))
}

// resultOf decodes a check's detail as an analysis result (the record
// holds it as JSON); ok is false for other gates' details.
func resultOf(c rollout.Check) (analysis.Result, bool) {
	var r analysis.Result
	b, err := json.Marshal(c.Detail)
	if err != nil || json.Unmarshal(b, &r) != nil || r.Metric == "" {
		return r, false
	}
	return r, true
}

// checkLine is one analysis' verdict and message.
func checkLine(c rollout.Check) string {
	s := fmt.Sprintf("analysis %s: %s", c.Gate, c.Verdict)
	if r, ok := resultOf(c); ok {
		s += fmt.Sprintf(" (%s, %s): %s", r.Provider, r.Condition, r.Message)
	}
	if c.Error != "" {
		s += ": " + c.Error
	}
	return s
}

// measurements are an analysis' measurements, one line each.
func measurements(c rollout.Check) []string {
	r, ok := resultOf(c)
	if !ok {
		return nil
	}
	var out []string
	for _, m := range r.Measurements {
		v := "no value"
		if m.Value != nil {
			v = strconv.FormatFloat(*m.Value, 'g', 6, 64)
		}
		line := fmt.Sprintf("%s  %-12s %s", m.Time.Format(time.TimeOnly), v, m.Phase)
		if m.Error != "" {
			line += ": " + m.Error
		}
		out = append(out, line)
	}
	return out
}

// summary is st in one line, for --watch (with a pause's time left at
// now unless now is zero).
func summary(st rollout.State, now time.Time) string {
	if st.Phase.Final() {
		s := fmt.Sprintf("%s: %s", st.Name, st.Phase)
		if st.Cause != "" {
			s += ": " + st.Cause
		}
		return s
	}
	s := fmt.Sprintf("%s: %s at step %d of 0-%d (%s: %s), canary weight %d %%", st.Name, st.Phase, st.Step, len(st.Plan)-1,
		stepName(st, st.Step), stepState(st, st.Step, now), st.Weight)
	if st.Phase == rollout.Paused && st.Cause != "" {
		s += ": " + st.Cause
	}
	return s
}

// isTerminal reports whether w is a terminal (live redrawing).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// follow reads the record every interval until its phase is final and
// shows each change: redrawn in place on a terminal, a line per change
// otherwise (nothing with --json: the envelope carries the last state).
func follow(ctx context.Context, g *app.Globals, st rollout.State, get func() (rollout.State, error), interval time.Duration) (rollout.State, error) {
	live := !g.JSON && isTerminal(g.Out)
	last := ""
	show := func(st rollout.State) {
		now := time.Time{} // a line per change: no countdown
		if live {
			now = time.Now()
		}
		line := g.Mask(summary(st, now))
		switch {
		case g.JSON:
		case live:
			fmt.Fprintf(g.Out, "\r\033[K%s", line)
		case line != last:
			fmt.Fprintln(g.Out, line)
		}
		last = line
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		show(st)
		if st.Phase.Final() {
			break
		}
		select {
		case <-ctx.Done():
			if live {
				fmt.Fprintln(g.Out)
			}
			return st, ctx.Err()
		case <-tick.C:
		}
		next, err := get()
		if err != nil {
			return st, err
		}
		st = next
	}
	if live {
		fmt.Fprintln(g.Out)
	}
	if !g.JSON {
		printState(g.Out, g, st, time.Now())
	}
	return st, nil
}
