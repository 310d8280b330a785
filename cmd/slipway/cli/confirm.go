package cli

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

// confirmFlags are the flags of a destructive verb (destroy, gc, ephemeral
// destroy): as with `pulumi destroy`, it asks on a terminal and needs --yes
// without one.
type confirmFlags struct {
	yes bool
}

func (c *confirmFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&c.yes, "yes", "y", false, "act without asking (required when stdin is not a terminal, e.g. in CI)")
}

// stdinIsTerminal reports whether the process can ask its user; a variable
// so that in-process tests can stand in for a terminal.
var stdinIsTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// early refuses a destructive verb without --yes when there is no terminal
// to ask on, before anything is opened or read.
func (c *confirmFlags) early(verb string) error {
	if c.yes || stdinIsTerminal() {
		return nil
	}
	return badInput("%s destroys without asking only with --yes: stdin is not a terminal, so nobody can be asked; "+
		"pass --yes (nothing was destroyed)", verb)
}

// ask shows what verb will destroy and waits for "yes" on the terminal;
// anything else refuses. It asks nothing with --yes or when there is
// nothing to destroy.
func (c *confirmFlags) ask(ctx context.Context, g *globals, verb string, what []string) error {
	if c.yes || len(what) == 0 {
		return nil
	}
	if err := c.early(verb); err != nil {
		return err
	}
	fmt.Fprintf(g.errw, "%s will destroy every resource of:\n", verb)
	for _, w := range what {
		fmt.Fprintf(g.errw, "  - %s\n", w)
	}
	fmt.Fprintf(g.errw, "Do you want to perform this destroy? Type yes to confirm: ")
	type answer struct {
		line string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(g.in).ReadString('\n')
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
		return badInput("%s: no answer on the terminal (%v); nothing was destroyed (pass --yes to act without asking)", verb, err)
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
		return badInput("%s: not confirmed (answered %q); nothing was destroyed", verb, strings.TrimSpace(line))
	}
	return nil
}

// expiredEphemerals lists the ephemeral environments of project that GC
// would collect at now.
func expiredEphemerals(ctx context.Context, e *automation.Engine, project string, now time.Time) ([]automation.Ephemeral, error) {
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

// reportExpired prints what `gc --dry-run` would collect: one item per
// environment (operation "gc dry-run") and nothing destroyed.
func (g *globals) reportExpired(expired []automation.Ephemeral) error {
	for _, eph := range expired {
		g.add(item{Environment: eph.Stack, Operation: "gc dry-run", Status: statusOf(nil), Ephemeral: &eph})
		if !g.json {
			fmt.Fprintf(g.out, "%s (key %s, expired %s): would be destroyed\n", eph.Stack, eph.Key, eph.Expires.Format(time.RFC3339))
		}
	}
	if !g.json {
		fmt.Fprintf(g.out, "%d expired environment(s) would be collected (dry run: nothing destroyed)\n", len(expired))
	}
	return nil
}
