package image_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/slipwayhq/slipway/automation/fleet/image"
)

// Build the fleet's image from a team's binary (./cmd/platform, whose main
// calls Slipway's cli.Main) for two platforms, push the index, and name it
// by digest in the manifests (`operator install --print --image ...`).
func Example() {
	ctx := context.Background()
	res, err := image.Build(ctx, image.Options{
		Main:      "./cmd/platform",
		Platforms: []string{"linux/amd64", "linux/arm64"},
		Source:    "https://github.com/team/platform",
		Log:       os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer res.Close()
	ref, err := res.Push(ctx, "registry.example/team/slipway:v1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("image:", ref) // registry.example/team/slipway@sha256:...
}

// Write a single-platform image as an OCI layout and as a tarball for
// `docker load`, from a prebuilt binary.
func ExampleResult_WriteLayout() {
	res, err := image.Build(context.Background(), image.Options{
		Binaries: map[string]string{"linux/amd64": "./bin/platform"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer res.Close()
	if err := res.WriteLayout("./image-layout"); err != nil {
		log.Fatal(err)
	}
	if err := res.WriteTarball("./image.tar", "registry.example/team/slipway:v1"); err != nil {
		log.Fatal(err)
	}
}
