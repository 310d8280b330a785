package envcmd

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
	"github.com/slipwayhq/slipway/stacks"
)

// newParamsCmd is the params verb: the registered definitions, their parameter paths and a kind's defaults.
func newParamsCmd(g *app.Globals) *cobra.Command {
	var definition, kind, name string
	cmd := &cobra.Command{
		Use:     "params",
		Aliases: []string{"definitions"},
		Short:   "Print the registered definitions, their parameter paths (--param) and a kind's defaulted parameters as JSON",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := g.Config.Definition(definition)
			if err != nil {
				return err
			}
			if kind != "" && !stacks.Kind(kind).Valid() {
				return app.BadInput("--kind %q is not a kind; use dev, qa, staging, prod or ephemeral", kind)
			}
			if name == "" {
				name = kind
				if name == "" {
					name = string(stacks.Dev)
				}
			}
			if !input.EnvNameRE.MatchString(name) || len(name) > 40 {
				return app.BadInput("--env %q must be a lower-case DNS label of at most 40 characters (a-z, 0-9, '-'), e.g. pr-42", name)
			}
			k := stacks.Kind(kind)
			if k == "" {
				if k, err = b.KindFor(name); err != nil {
					return app.BadInput("--env %s: %v", name, err)
				}
			}
			params, err := b.DefaultParams(name, k)
			if err != nil {
				return app.BadInput("%v", err)
			}
			doc := app.ParamsDoc{Definition: b.Info().Name, Kind: k, Params: params}
			for _, p := range g.Config.Definitions {
				i := p.Info()
				flags := []app.FlagInfo{}
				for _, f := range i.Flags {
					flags = append(flags, app.FlagInfo{Name: f.Name, Path: f.Path, Usage: f.Usage})
				}
				plugins := []app.PluginInfo{}
				for _, pl := range i.Plugins {
					plugins = append(plugins, app.PluginInfo{Name: pl.Name, Version: pl.Version})
				}
				doc.Definitions = append(doc.Definitions, app.DefinitionInfo{Name: i.Name, Project: i.Project, Description: i.Description, Flags: flags, Paths: i.Paths, Plugins: plugins})
			}
			g.Add(app.Item{Environment: name, Operation: "params", Status: "succeeded", Params: &doc})
			if g.JSON {
				return nil
			}
			enc := json.NewEncoder(g.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		},
	}
	cmd.Flags().StringVar(&definition, "definition", "", fmt.Sprintf("the definition whose defaults to print: %s (default %s)", strings.Join(g.Config.DefinitionNames(), ", "), g.Config.DefinitionNames()[0]))
	cmd.Flags().StringVar(&kind, "kind", "", "environment kind: dev, qa, staging, prod, ephemeral (default: the name when it is one or the definition maps it; any other name needs --kind)")
	cmd.Flags().StringVar(&name, "env", "", "environment name the defaults are computed for (default: the kind)")
	return cmd
}
