package fleetcmd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet/image"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// newImageCmd is the image verb: a container image of this binary for the fleet.
func newImageCmd(g *app.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Build the fleet's container image (no Docker needed)"}
	var o image.Options
	var binaries []string
	var layoutDir, tarPath, tag, push, created string
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the operator's and runners' OCI image: your binary, the pulumi CLI and providers, CA certificates, a non-root user",
		Long: `Build the container image the fleet's Deployments run, without Docker:

  /usr/local/bin/slipway    your binary (--main, built with CGO_ENABLED=0 for each
                            --platform; or --binary PLATFORM=PATH, prebuilt)
  /opt/slipway/toolchain    the pulumi CLI and the Kubernetes provider plugin,
                            Slipway's own builds (SLIPWAY_CACHE_DIR), taken from
                            the toolchain cache or built there (cross-compiled for
                            another platform)
  /opt/slipway/plugins      the other plugins your programs list (the AWS
                            provider, say), from the global --plugin
                            NAME@VERSION=PATH (and $SLIPWAY_PLUGINS): Linux
                            binaries of the image's one platform, named in the
                            image's $SLIPWAY_PLUGINS, which the binary reads as
                            --plugin values
  /etc/ssl/certs            the host's CA bundle (--ca-certificates)
  /etc/passwd, /etc/group   user and group nonroot (65532), HOME /home/nonroot

It runs as 65532:65532 with the entrypoint /usr/local/bin/slipway, and is
labelled org.opencontainers.image.source, .revision and .version. It is
reproducible: every file carries one time (--created, else $SOURCE_DATE_EPOCH,
else the Unix epoch), so the same inputs give the same digest. Two or more
platforms make an image index.

Before anything is built it checks the plugins that the definitions of the
binary running it list (with each kind's defaults; see ` + "`params --json`" + `):
each must be Slipway's Kubernetes provider or given with --plugin, else the
build is refused naming it. So run the image build of the binary the image
packages (` + "`<your binary> image build --main ./cmd/yours`" + `), whose
definitions and Slipway version are the image's.

Give at least one output: --oci-layout DIR, --tarball FILE (one platform;
docker load reads it) or --push REPOSITORY[:TAG] (credentials from Docker's
config and credential helpers). The digest is printed on stdout; name the
image by it in the manifests:

  ` + "`<binary> image build --main ./cmd/platform --push registry.example/team/slipway:v1`" + `
  ` + "`<binary> operator install --print --image registry.example/team/slipway@sha256:...`",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if layoutDir == "" && tarPath == "" && push == "" {
				return app.BadInput("image build writes nothing without an output; give --oci-layout DIR, --tarball FILE or --push REPOSITORY[:TAG]")
			}
			o.Binaries = map[string]string{}
			for _, b := range binaries {
				p, path, ok := strings.Cut(b, "=")
				if !ok || p == "" || path == "" {
					return app.BadInput("--binary %q is not PLATFORM=PATH; use e.g. --binary linux/amd64=./bin/platform", b)
				}
				if _, dup := o.Binaries[p]; dup {
					return app.BadInput("--binary gives %s twice; give one binary per platform", p)
				}
				o.Binaries[p] = path
			}
			var err error
			if o.Created, err = createdTime(created); err != nil {
				return err
			}
			if tarPath != "" && len(o.Platforms) > 1 {
				return app.BadInput("--tarball holds one platform and %d are asked (--platform); write --oci-layout or --push instead", len(o.Platforms))
			}
			if o.Plugins, err = imagePlugins(g); err != nil {
				return err
			}
			o.CacheDir, o.Log = g.CacheDir, g.Errw
			start := time.Now()
			res, err := image.Build(cmd.Context(), o)
			if err != nil {
				if ie := (*image.InputError)(nil); errors.As(err, &ie) {
					return app.BadInput("%v", err)
				}
				return err
			}
			defer res.Close()
			d, err := res.Digest()
			if err != nil {
				return err
			}
			out := app.ImageJSON{Digest: d.String(), Layout: layoutDir, Tarball: tarPath}
			for _, p := range res.Platforms {
				out.Platforms = append(out.Platforms, p.String())
			}
			if layoutDir != "" {
				if err := res.WriteLayout(layoutDir); err != nil {
					return err
				}
			}
			if tarPath != "" {
				if err := res.WriteTarball(tarPath, tag); err != nil {
					return err
				}
			}
			if push != "" {
				ref, err := res.Push(cmd.Context(), push)
				if err != nil {
					return err
				}
				out.Reference = ref.String()
			}
			out.Seconds = time.Since(start).Seconds()
			g.Add(app.Item{Operation: "image build", Status: "succeeded", Image: &out})
			if g.JSON {
				return nil
			}
			if out.Reference != "" {
				fmt.Fprintln(g.Out, out.Reference)
				fmt.Fprintf(g.Errw, "%s: built and pushed in %s; install it with `%s operator install --print --image %s`\n",
					g.Config.Name, time.Since(start).Round(time.Second), g.Config.Name, out.Reference)
			} else {
				fmt.Fprintln(g.Out, out.Digest)
				fmt.Fprintf(g.Errw, "%s: built in %s\n", g.Config.Name, time.Since(start).Round(time.Second))
			}
			return nil
		},
	}
	f := build.Flags()
	f.StringVar(&o.Main, "main", "", "Go package of your binary (its main calls Slipway's cli.Main), built for each platform, e.g. ./cmd/platform")
	f.StringVar(&o.ModuleDir, "module-dir", ".", "directory of your Go module, where --main is built")
	f.StringArrayVar(&binaries, "binary", nil, "prebuilt binary for a platform, PLATFORM=PATH (e.g. linux/amd64=./bin/platform); repeatable; wins over --main for its platform")
	f.StringSliceVar(&o.Platforms, "platform", []string{image.DefaultPlatform}, "platforms to build: "+strings.Join(image.Platforms, ", ")+" (two or more make an image index)")
	f.StringVar(&layoutDir, "oci-layout", "", "write the image into this OCI image layout directory")
	f.StringVar(&tarPath, "tarball", "", "write the image as a tarball for docker load (one platform)")
	f.StringVar(&tag, "tag", "slipway:latest", "the tarball's tag")
	f.StringVar(&push, "push", "", "push the image to this repository or tag, e.g. registry.example/team/slipway:v1")
	f.StringVar(&o.Source, "source", "", "label org.opencontainers.image.source, e.g. https://github.com/team/platform")
	f.StringVar(&o.Revision, "revision", "", "label org.opencontainers.image.revision (default the binary's VCS revision)")
	f.StringVar(&o.Version, "version", "", "label org.opencontainers.image.version (default the binary's module version)")
	f.StringVar(&created, "created", "", "time of every file and of the image, RFC 3339 (default $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z)")
	f.StringVar(&o.CACertificates, "ca-certificates", image.DefaultCACertificates, "CA bundle (PEM) copied into the image")
	cmd.AddCommand(build)
	return cmd
}

// imagePlugins are the plugins of the run (--plugin, $SLIPWAY_PLUGINS) as
// the image takes them, refused unless every plugin that the binary's
// definitions list with their kinds' defaults is either Slipway's
// Kubernetes provider or among them.
func imagePlugins(g *app.Globals) ([]image.Plugin, error) {
	given, err := g.PluginBinaries()
	if err != nil {
		return nil, err
	}
	var out []image.Plugin
	for _, p := range given {
		out = append(out, image.Plugin{Name: p.Name, Version: p.Version, Path: p.Path})
	}
	for _, d := range g.Config.Definitions {
		info := d.Info()
		for _, pl := range info.Plugins {
			if pl == automation.KubernetesPlugin || slices.ContainsFunc(out, func(p image.Plugin) bool { return p.Name == pl.Name && p.Version == pl.Version }) {
				continue
			}
			return nil, app.BadInput("definition %s lists the plugin %s v%s, which Slipway does not build and the image would lack; "+
				"give its Linux binary with --plugin %s@%s=PATH (e.g. pulumi-resource-%s from the provider's release)",
				info.Name, pl.Name, pl.Version, pl.Name, pl.Version, pl.Name)
		}
	}
	return out, nil
}

// createdTime reads --created, else $SOURCE_DATE_EPOCH; zero means the
// Unix epoch.
func createdTime(flag string) (time.Time, error) {
	if flag != "" {
		t, err := time.Parse(time.RFC3339, flag)
		if err != nil {
			return time.Time{}, app.BadInput("--created %q is not an RFC 3339 time; use e.g. 2026-01-02T15:04:05Z", flag)
		}
		return t, nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, app.BadInput("SOURCE_DATE_EPOCH %q is not a number of seconds since 1970; unset it or fix it", s)
		}
		return time.Unix(n, 0), nil
	}
	return time.Time{}, nil
}
