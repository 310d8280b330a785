package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Docs writes the command reference, one markdown page per command
// (<name>.md, <name>_<verb>.md, ...), into dir, which it creates. The pages
// come from the command tree the options build, so they say what the binary
// does; they carry no date, so the same tree gives the same bytes.
func Docs(dir string, opts ...Option) error {
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	root, _ := newRoot(c, io.Discard, io.Discard)
	var noTag func(*cobra.Command)
	noTag = func(cmd *cobra.Command) {
		cmd.DisableAutoGenTag = true
		for _, sub := range cmd.Commands() {
			noTag(sub)
		}
	}
	noTag(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cli reference: %w", err)
	}
	return doc.GenMarkdownTree(root, dir)
}
