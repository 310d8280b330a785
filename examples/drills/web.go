// Package drills is the web workload of Slipway's self-healing drills
// (see README.md and drills_test.go): a namespace with its baseline and a
// canary workload of two replicas, rolled out in steps by the engine. The
// drills inject the faults the brief names — pods deleted, an object
// edited out of band, the engine killed mid-step, a metric turning bad
// mid-rollout — and assert that the environment is back within a stated
// bound; BenchmarkRollout_Overhead measures what the rollout machinery
// costs beyond its pauses and analyses.
package drills

import (
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/stacks"
)

// Name is the workload's name: its stable Deployment is Name, its canary
// Name-canary, and their pods carry app.kubernetes.io/name=Name.
const Name = "web"

// Replicas is stable's size.
const Replicas = 2

// Selector selects the workload's pods (stable and canary).
const Selector = "app.kubernetes.io/name=" + Name

// Args is the workload running stable, with a canary of image at weight
// percent of the pods (no canary when image is stable).
func Args(stable, image string, weight int) workload.Args {
	a := workload.Args{Name: Name, Image: image, Replicas: Replicas, Strategy: workload.Canary,
		Canary: workload.CanaryArgs{StableImage: stable}}
	if weight > 0 {
		a = a.CanaryAt(weight)
	}
	return a
}

// Run is the program of a: a namespace named after the stack, with its
// baseline (quota, limits, network policies), and the workload in it,
// through the default Kubernetes provider. Its objects are force-applied
// (stacks.ForceApply, as every stacks.Definition's are), so the engine's
// drift repair wins over an out-of-band edit.
func Run(a workload.Args) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		if err := stacks.ForceApply(ctx); err != nil {
			return err
		}
		base, err := baseline.New(ctx, "base", baseline.Args{Namespace: ctx.Stack()})
		if err != nil {
			return err
		}
		a.Namespace = base.Namespace
		_, err = workload.New(ctx, "app", a, pulumi.DependsOn([]pulumi.Resource{base}))
		return err
	}
}

// With returns prog (its project, stack, configuration and plugins)
// running a instead.
func With(prog automation.Program, a workload.Args) automation.Program {
	prog.Run = Run(a)
	return prog
}

// Image is the image of a release version: the version itself, or what
// comes before a "#" (a benchmark rolls one image out under several
// versions: "nginx:1.28#3").
func Image(version string) string {
	image, _, _ := strings.Cut(version, "#")
	return image
}

// Lookup rebuilds a release of prog's stack from its version: stable runs
// Image(version), no canary.
func Lookup(prog automation.Program) func(version string) (automation.Program, error) {
	return func(version string) (automation.Program, error) {
		img := Image(version)
		return With(prog, Args(img, img, 0)), nil
	}
}

// Canary is the rollout of version over stable on prog's stack, in steps.
func Canary(prog automation.Program, stable, version string, steps []rollout.Step, onEvent func(rollout.Event)) automation.Canary {
	img := Image(version)
	return automation.Canary{
		Release: automation.Release{Version: version, Program: With(prog, Args(img, img, 0))},
		At: func(weight int) (automation.Program, error) {
			return With(prog, Args(stable, img, weight)), nil
		},
		Steps:   steps,
		OnEvent: onEvent,
	}
}
