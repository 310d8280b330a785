package gitsource_test

import (
	"context"
	"fmt"

	"github.com/slipwayhq/slipway/automation/fleet/gitsource"
)

func ExampleAuthFromSecret() {
	// The data of the Secret that spec.source.secretRef names.
	auth, err := gitsource.AuthFromSecret(map[string][]byte{
		"username": []byte("fleet-bot"),
		"password": []byte("ghp_example-token"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(auth) // the password is masked

	_, err = gitsource.AuthFromSecret(map[string][]byte{"identity": []byte("-----BEGIN OPENSSH PRIVATE KEY-----...")})
	fmt.Println(err)
	// Output:
	// http-basic-auth - fleet-bot:*******
	// the credentials Secret has an SSH identity but no known_hosts: add known_hosts with the server's host key (ssh-keyscan <host> prints it); host keys are never accepted unchecked
}

func ExampleFetch() {
	ctx := context.Background()
	src := gitsource.Source{
		URL:    "https://git.example.com/platform/environments.git",
		Branch: "main",
		Path:   "envs/prod/params.yaml",
	}
	// A poll: Resolve costs one round trip; clone only when the commit moved.
	commit, err := gitsource.Resolve(ctx, src)
	if err != nil {
		fmt.Println(err) // names the branch, the URL or the credentials to fix
		return
	}
	if commit == "the commit applied last time" {
		return
	}
	res, err := gitsource.Fetch(ctx, src)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s at %s: %d bytes\n", src.Path, res.Commit, len(res.Content))
}
