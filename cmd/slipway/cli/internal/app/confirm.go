package app

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slipwayhq/slipway/automation"
)

// ConfirmFlags are the flags of a destructive verb (destroy, gc, ephemeral
// destroy): as with `pulumi destroy`, it asks on a terminal and needs --yes
// without one.
type ConfirmFlags struct {
	Yes bool
}

// Register adds --yes to cmd.
func (c *ConfirmFlags) Register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&c.Yes, "yes", "y", false, "act without asking (required when stdin is not a terminal, e.g. in CI)")
}

// stdinIsTerminal reports whether the process can ask its user; a variable
// so that in-process tests can stand in for a terminal.
var stdinIsTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// Early refuses a destructive verb without --yes when there is no terminal
// to ask on, before anything is opened or read.
func (c *ConfirmFlags) Early(verb string) error {
	if c.Yes || stdinIsTerminal() {
		return nil
	}
	return BadInput("%s destroys without asking only with --yes: stdin is not a terminal, so nobody can be asked; "+
		"pass --yes (nothing was destroyed)", verb)
}

// Ask shows what verb will destroy and waits for "yes" on the terminal;
// anything else refuses. It asks nothing with --yes or when there is
// nothing to destroy.
func (c *ConfirmFlags) Ask(ctx context.Context, g *Globals, verb string, what []string) error {
	if c.Yes || len(what) == 0 {
		return nil
	}
	if err := c.Early(verb); err != nil {
		return err
	}
	fmt.Fprintf(g.Errw, "%s will destroy every resource of:\n", verb)
	for _, w := range what {
		fmt.Fprintf(g.Errw, "  - %s\n", w)
	}
	fmt.Fprintf(g.Errw, "Do you want to perform this destroy? Type yes to confirm: ")
	type answer struct {
		line string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(g.In).ReadString('\n')
		got <- answer{line, err}
	}()
	var line string
	var err error
	select {
	case a := <-got:
		line, err = a.line, a.err
	case <-ctx.Done():
		return fmt.Errorf("%s: interrupted while asking (%w); nothing was destroyed", verb, context.Cause(ctx))
	}
	if err != nil && line == "" {
		return BadInput("%s: no answer on the terminal (%v); nothing was destroyed (pass --yes to act without asking)", verb, err)
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
		return BadInput("%s: not confirmed (answered %q); nothing was destroyed", verb, strings.TrimSpace(line))
	}
	return nil
}

// ExpiredEphemerals lists the ephemeral environments of project that GC
// would collect at now.
func ExpiredEphemerals(ctx context.Context, e *automation.Engine, project string, now time.Time) ([]automation.Ephemeral, error) {
	all, err := e.Ephemerals(ctx, project)
	if err != nil {
		return nil, err
	}
	var out []automation.Ephemeral
	for _, eph := range all {
		if eph.Expires.Before(now) {
			out = append(out, eph)
		}
	}
	return out, nil
}

// ReportExpired prints what `gc --dry-run` would collect: one item per
// environment (operation "gc dry-run") and nothing destroyed.
func (g *Globals) ReportExpired(expired []automation.Ephemeral) error {
	for _, eph := range expired {
		g.Add(Item{Environment: eph.Stack, Operation: "gc dry-run", Status: StatusOf(nil), Ephemeral: &eph})
		if !g.JSON {
			fmt.Fprintf(g.Out, "%s (key %s, expired %s): would be destroyed\n", eph.Stack, eph.Key, eph.Expires.Format(time.RFC3339))
		}
	}
	if !g.JSON {
		fmt.Fprintf(g.Out, "%d expired environment(s) would be collected (dry run: nothing destroyed)\n", len(expired))
	}
	return nil
}
