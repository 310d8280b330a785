package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/policypacks"
)

// Analyzer returns the analyzer binary the engine uses for policy packs.
func (e *Engine) Analyzer() string { return e.analyzer }

// PolicyDir writes a policy pack directory under the engine's directory for
// the given settings and packs, linked to the engine's analyzer, and returns
// it for Policies.
func (e *Engine) PolicyDir(name string, s policypacks.Settings, packs ...*policypacks.Pack) (string, error) {
	if err := e.checkAnalyzer(e.analyzer); err != nil {
		return "", err
	}
	dir := filepath.Join(e.dir, "policy", name)
	return dir, policypacks.WriteDir(dir, e.analyzer, s, packs...)
}

// ErrAnalyzerNotServed is returned before any engine run when policies would
// be served by the running binary but it never called ServeIfAnalyzer: the
// engine would start the whole binary (its main) as a policy plugin.
var ErrAnalyzerNotServed = errors.New("automation: policy packs are served by this binary, but it never called " +
	"policypacks/all.ServeIfAnalyzer(); call it first thing in main (or in TestMain for tests), " +
	"or point WithAnalyzer at a binary that does")

// checkAnalyzer refuses the running binary as analyzer when it did not call
// ServeIfAnalyzer. Another binary (WithAnalyzer) cannot be checked here.
func (e *Engine) checkAnalyzer(analyzer string) error {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	a, err1 := filepath.EvalSymlinks(analyzer)
	me, err2 := filepath.EvalSymlinks(self)
	if err1 == nil && err2 == nil && a == me && !policypacks.AnalyzerReady() {
		return ErrAnalyzerNotServed
	}
	return nil
}

// checkPolicyDir checks a policy pack directory before a run uses it.
func (e *Engine) CheckPolicyDir(dir string) error {
	target, err := os.Readlink(policypacks.Entry(dir))
	if err != nil {
		return fmt.Errorf("automation: %s is not a policy pack directory (no %s link); create it with Engine.PolicyDir", dir, policypacks.AnalyzerBinary)
	}
	return e.checkAnalyzer(target)
}

// PolicyBlockedError is returned when mandatory policy violations stop an operation.
type PolicyBlockedError struct {
	Op string
	// Violations are the blocking findings.
	Violations []policypacks.Finding
}

// Error implements error.
func (e *PolicyBlockedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "automation: %s blocked by %d mandatory policy violation(s):", e.Op, len(e.Violations))
	for _, v := range e.Violations {
		fmt.Fprintf(&b, "\n  %s: %s (%s)", v.Policy, outcome.MessageLine(v.Message), v.URN)
	}
	return b.String()
}

// IsPolicyBlocked reports whether err is (or wraps) a PolicyBlockedError.
func IsPolicyBlocked(err error) bool {
	var pe *PolicyBlockedError
	return errors.As(err, &pe)
}
